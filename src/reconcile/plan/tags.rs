//! Ownership tags. Ganeti tags allow `[\w.+*/:@-]` and no `=`, so everything the operator
//! owns is marked with `ganeti-operator:`-prefixed tags.

use std::collections::BTreeSet;

use crate::desired::model::{Class, Instance};

pub use crate::desired::names::{
    CLASS_TAG_PREFIX, HOST_KEY_TAG_PREFIX, IMAGE_TAG_PREFIX, MANAGED_TAG, PROTECTED_TAG,
    REBOOTED_TAG_PREFIX, ROLLBACK_TAG_PREFIX, TAG_PREFIX, UPGRADE_FAILED_TAG_PREFIX,
    UPGRADING_TAG_PREFIX, rebooted_tag, rollback_tag, short_image, stall_tag, upgrade_failed_tag,
    upgrading_tag,
};

pub fn is_managed(tags: &[String]) -> bool {
    tags.iter().any(|t| t == MANAGED_TAG)
}

pub fn is_protected(tags: &[String]) -> bool {
    tags.iter().any(|t| t == PROTECTED_TAG)
}

/// Every tag a managed instance should carry except the image tag, which records what
/// the instance really boots and changes only when an image rotation completes.
pub fn desired_tags(instance: &Instance) -> BTreeSet<String> {
    let mut tags: BTreeSet<String> = instance.tags.iter().cloned().collect();
    tags.insert(MANAGED_TAG.to_owned());
    tags.insert(format!("{CLASS_TAG_PREFIX}{}", instance.class));
    if instance.protect {
        tags.insert(PROTECTED_TAG.to_owned());
    }
    tags
}

pub fn image_tag(class: &Class) -> String {
    format!("{IMAGE_TAG_PREFIX}{}", class.image)
}

pub fn is_image_tag(tag: &str) -> bool {
    tag.starts_with(IMAGE_TAG_PREFIX)
}

/// Tags that record a fact the desired state does not hold: the image a host was proven
/// healthy on, the public half of a host key generated at create, and a rollback under
/// way. Tag repair keeps them.
fn is_recorded_tag(tag: &str) -> bool {
    is_image_tag(tag)
        || tag.starts_with(HOST_KEY_TAG_PREFIX)
        || tag.starts_with(ROLLBACK_TAG_PREFIX)
}

/// The image a host's rollback tag says it failed on (cut), when it is going back.
pub fn rolling_back_from(tags: &[String]) -> Option<&str> {
    tags.iter()
        .find_map(|t| t.strip_prefix(ROLLBACK_TAG_PREFIX))
}

/// The tags to add and to remove so that a managed instance carries exactly `desired`
/// (recorded tags aside).
pub fn tag_repair(observed: &[String], desired: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let have: BTreeSet<&String> = observed.iter().collect();
    let add = desired
        .iter()
        .filter(|t| !have.contains(t))
        .cloned()
        .collect();
    let remove = have
        .into_iter()
        .filter(|t| !is_recorded_tag(t) && !desired.contains(*t))
        .cloned()
        .collect();
    (add, remove)
}

/// The node's upgrade tags: the image it is being upgraded to (cut), and the latest
/// reboot's start (Unix seconds), where there are any.
pub fn upgrade_tags(tags: &[String]) -> (Option<&str>, Option<u64>) {
    let upgrading = tags
        .iter()
        .find_map(|t| t.strip_prefix(UPGRADING_TAG_PREFIX));
    let rebooted = tags
        .iter()
        .filter_map(|t| t.strip_prefix(REBOOTED_TAG_PREFIX)?.parse().ok())
        .max();
    (upgrading, rebooted)
}

/// The node's upgrade failed: it carries a failed tag.
pub fn upgrade_failed(tags: &[String]) -> bool {
    tags.iter()
        .any(|t| t.starts_with(UPGRADE_FAILED_TAG_PREFIX))
}

/// Every upgrade tag a node carries, to remove once its upgrade ended.
pub fn upgrade_tags_of(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| {
            [
                UPGRADING_TAG_PREFIX,
                REBOOTED_TAG_PREFIX,
                UPGRADE_FAILED_TAG_PREFIX,
            ]
            .iter()
            .any(|p| t.starts_with(p))
        })
        .cloned()
        .collect()
}
