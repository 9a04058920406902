//! One instance as the inference reads it: its kind, its resources as the desired state
//! writes them, and which of its tags are the operator's.

use crate::desired::names::{
    CLASS_TAG_PREFIX, IMAGE_TAG_PREFIX, MANAGED_TAG, PROTECTED_TAG, TAG_PREFIX, is_short_name,
    is_valid_tag,
};
use crate::desired::units::Size;
use crate::rapi::Instance;
use crate::store::manifest::is_image_id;

use super::model::{DiskDoc, NicDoc};

/// What the inference needs of one instance, read once.
#[derive(Debug, Clone)]
pub(super) struct SeenInstance<'a> {
    pub name: &'a str,
    pub raw: &'a Instance,
    /// The class its operator class tag names, when that is a valid class name.
    pub class_tag: Option<&'a str>,
    pub managed: bool,
    pub protected: bool,
    /// The image its operator image tag records.
    pub image: Option<&'a str>,
    pub os: String,
    pub disk_template: String,
    pub hypervisor: String,
    pub memory: Option<Size>,
    pub vcpus: Option<u32>,
    pub disks: Vec<DiskDoc>,
    pub nics: Vec<NicDoc>,
    /// The user's own tags, which the desired state must list or adoption removes them.
    pub user_tags: Vec<String>,
    /// Tags it carries that no desired state can list (Ganeti allows more than we write).
    pub unlisted_tags: Vec<String>,
}

impl<'a> SeenInstance<'a> {
    /// `cluster_hypervisor` stands in when Ganeti does not report the instance's own.
    pub fn read(raw: &'a Instance, cluster_hypervisor: &str) -> SeenInstance<'a> {
        let tags = &raw.tags;
        let class_tag = tags
            .iter()
            .filter_map(|t| t.strip_prefix(CLASS_TAG_PREFIX))
            .find(|c| is_short_name(c));
        // An image tag that is no id (written by hand, or before ids were checked) would
        // make the written state invalid: the placeholder stands in for it instead.
        let image = tags
            .iter()
            .filter_map(|t| t.strip_prefix(IMAGE_TAG_PREFIX))
            .find(|i| is_image_id(i));
        let mut user_tags: Vec<String> = Vec::new();
        let mut unlisted_tags = Vec::new();
        for tag in tags.iter().filter(|t| !t.starts_with(TAG_PREFIX)) {
            if is_valid_tag(tag) {
                user_tags.push(tag.clone());
            } else {
                unlisted_tags.push(tag.clone());
            }
        }
        user_tags.sort();
        user_tags.dedup();
        SeenInstance {
            name: &raw.name,
            raw,
            class_tag,
            managed: tags.iter().any(|t| t == MANAGED_TAG),
            protected: tags.iter().any(|t| t == PROTECTED_TAG),
            image,
            os: raw.os.clone().unwrap_or_default(),
            disk_template: raw.disk_template.clone().unwrap_or_default(),
            hypervisor: raw
                .hypervisor
                .clone()
                .unwrap_or_else(|| cluster_hypervisor.to_owned()),
            memory: raw.beparams.maxmem.map(Size::from_mib),
            vcpus: raw.beparams.vcpus,
            disks: disks_of(raw),
            nics: nics_of(raw),
            user_tags,
            unlisted_tags,
        }
    }
}

fn disks_of(raw: &Instance) -> Vec<DiskDoc> {
    raw.disk_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| DiskDoc {
            // A disk Ganeti reports without a size is written as 0M, which validation
            // refuses: init then writes nothing, and the error points at that disk,
            // rather than guessing a size the plan would act on.
            size: Size::from_mib(size.unwrap_or(0)),
            name: raw
                .disk_names
                .get(i)
                .cloned()
                .flatten()
                .filter(|n| !n.is_empty()),
        })
        .collect()
}

/// Ganeti lists NICs as parallel lists of links and modes; either may be shorter.
fn nics_of(raw: &Instance) -> Vec<NicDoc> {
    let count = raw.nic_links.len().max(raw.nic_modes.len());
    (0..count)
        .map(|i| NicDoc {
            link: raw
                .nic_links
                .get(i)
                .cloned()
                .flatten()
                .filter(|l| !l.is_empty()),
            mode: raw
                .nic_modes
                .get(i)
                .cloned()
                .flatten()
                .filter(|m| is_nic_mode(m)),
        })
        .collect()
}

pub(super) fn is_nic_mode(mode: &str) -> bool {
    matches!(mode, "bridged" | "routed" | "openvswitch")
}
