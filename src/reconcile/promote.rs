//! `rollout promote`: lets a `promote: manual` rollout go on past its canary. The
//! promotion is a cluster tag naming the class and its image, so every operator process
//! (and one started after a restart) sees it; the planner reads it from what it observes.
//! A promotion to an earlier image of the class is replaced.

use crate::desired::model::{ObjectKind, ObjectRef};
use std::collections::BTreeSet;

use crate::desired::names::{IMAGE_TAG_PREFIX, PROMOTED_TAG_PREFIX, is_valid_tag, promotion_tag};
use crate::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use crate::rapi::operation::{Operation, TagTarget, WriteOptions};
use crate::rapi::{Rapi, RapiError};

use super::reason::{JobReason, RunId};

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("the promotion tag `{0}` is not a valid Ganeti tag (at most 128 characters)")]
    Tag(String),
    #[error(
        "no member of class `{class}` is proven on {image} yet: the canary has not finished; nothing was promoted"
    )]
    NoCanary { class: String, image: String },
    #[error("recording the promotion in the cluster")]
    Rapi(#[from] RapiError),
}

/// What `promote` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Promoted {
    /// The cluster carried the tag already.
    Already,
    /// The tag was added; `replaced` are the class's promotions to other images, removed.
    Recorded { tag: String, replaced: Vec<String> },
}

/// Records that `class`'s rollout to `image` is promoted, once one of `members` (the
/// class's instances and nodes) carries the image's tag: a promotion before the canary
/// finished would skip it.
pub async fn promote<R: Rapi + ?Sized>(
    rapi: &R,
    class: &str,
    image: &str,
    members: &BTreeSet<String>,
    run: &RunId,
    wait: WaitOptions,
) -> Result<Promoted, PromoteError> {
    let tag = promotion_tag(class, image);
    if !is_valid_tag(&tag) {
        return Err(PromoteError::Tag(tag));
    }
    let proven = format!("{IMAGE_TAG_PREFIX}{image}");
    let instances = rapi.instances().await?;
    let nodes = rapi.nodes().await?;
    let canary = instances
        .iter()
        .map(|i| (&i.name, &i.tags))
        .chain(nodes.iter().map(|n| (&n.name, &n.tags)))
        .any(|(name, tags)| members.contains(name) && tags.contains(&proven));
    if !canary {
        return Err(PromoteError::NoCanary {
            class: class.to_owned(),
            image: image.to_owned(),
        });
    }
    let tags = rapi.info().await?.tags;
    let class_prefix = format!("{PROMOTED_TAG_PREFIX}{class}:");
    let replaced: Vec<String> = tags
        .iter()
        .filter(|t| t.starts_with(&class_prefix) && **t != tag)
        .cloned()
        .collect();
    let present = tags.contains(&tag);
    if present && replaced.is_empty() {
        return Ok(Promoted::Already);
    }
    let reason = JobReason::new(
        run,
        &ObjectRef {
            kind: ObjectKind::Class,
            name: class.to_owned(),
        },
    )
    .to_string();
    let run_job = async |operation: Operation| -> Result<(), RapiError> {
        let id = rapi
            .submit(&operation, &WriteOptions::new(reason.clone()))
            .await?;
        wait_for_job(rapi, id, wait, &Quiet).await.map(|_| ())
    };
    // The new tag first: between the two jobs both promotions hold, never neither.
    if !present {
        run_job(Operation::AddTags {
            target: TagTarget::Cluster,
            tags: vec![tag.clone()],
        })
        .await?;
    }
    if !replaced.is_empty() {
        run_job(Operation::RemoveTags {
            target: TagTarget::Cluster,
            tags: replaced.clone(),
        })
        .await?;
    }
    Ok(Promoted::Recorded { tag, replaced })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::rapi::memory::MemoryRapi;

    const OLD: &str = "sha256-aaaaaaaaaaaaaaaaaaaaaaaa";
    const NEW: &str = "sha256-bbbbbbbbbbbbbbbbbbbbbbbb";

    /// `vm1` (the class's one member) proven on `images`.
    fn cluster(images: &[&str]) -> (MemoryRapi, BTreeSet<String>) {
        let rapi = MemoryRapi::new("cluster.mem.test", "node1.mem.test", Duration::ZERO);
        rapi.insert_instance(crate::rapi::Instance {
            name: "vm1".into(),
            tags: images
                .iter()
                .map(|i| format!("{IMAGE_TAG_PREFIX}{i}"))
                .collect(),
            ..Default::default()
        });
        (rapi, BTreeSet::from(["vm1".to_owned()]))
    }

    #[tokio::test]
    async fn a_promotion_is_a_cluster_tag_that_replaces_the_class_s_older_one() {
        let (rapi, members) = cluster(&[OLD, NEW]);
        let run = RunId::new(SystemTime::now());
        let wait = WaitOptions::default();
        let to = async |class: &str, image: &str| {
            promote(&rapi, class, image, &members, &run, wait)
                .await
                .unwrap()
        };
        assert_eq!(
            to("web", OLD).await,
            Promoted::Recorded {
                tag: "ganeti-operator:promoted:web:sha256-aaaaaaaaaaaaaaaa".into(),
                replaced: vec![]
            }
        );
        assert_eq!(to("web", OLD).await, Promoted::Already);
        // Another class's promotion stays.
        to("db", OLD).await;
        assert_eq!(
            to("web", NEW).await,
            Promoted::Recorded {
                tag: promotion_tag("web", NEW),
                replaced: vec![promotion_tag("web", OLD)]
            }
        );
        let tags = rapi.info().await.unwrap().tags;
        assert_eq!(tags, [promotion_tag("db", OLD), promotion_tag("web", NEW)]);
    }

    #[tokio::test]
    async fn a_class_name_too_long_for_a_tag_is_refused_before_any_job() {
        let (rapi, members) = cluster(&[OLD]);
        let run = RunId::new(SystemTime::now());
        let long = "c".repeat(100);
        let error = promote(&rapi, &long, OLD, &members, &run, WaitOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PromoteError::Tag(_)), "{error}");
        assert!(rapi.info().await.unwrap().tags.is_empty());
    }

    #[tokio::test]
    async fn no_promotion_before_a_member_of_the_class_is_proven_on_the_image() {
        let (rapi, members) = cluster(&[OLD]);
        let run = RunId::new(SystemTime::now());
        let wait = WaitOptions::default();
        let error = promote(&rapi, "web", NEW, &members, &run, wait)
            .await
            .unwrap_err();
        assert!(matches!(error, PromoteError::NoCanary { .. }), "{error}");
        assert!(
            error.to_string().contains("canary has not finished"),
            "{error}"
        );
        // A host of another class proven on the image does not count.
        let others = BTreeSet::from(["vm2".to_owned()]);
        let error = promote(&rapi, "web", OLD, &others, &run, wait)
            .await
            .unwrap_err();
        assert!(matches!(error, PromoteError::NoCanary { .. }), "{error}");
        assert!(rapi.info().await.unwrap().tags.is_empty());
    }
}
