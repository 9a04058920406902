//! `rollout promote`: lets a `promote: manual` rollout go on past its canary. The
//! promotion is a cluster tag naming the class and its image, so every operator process
//! (and one started after a restart) sees it; the planner reads it from what it observes.
//! A promotion to an earlier image of the class is replaced.

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::desired::names::{PROMOTED_TAG_PREFIX, is_valid_tag, promotion_tag};
use crate::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use crate::rapi::operation::{Operation, TagTarget, WriteOptions};
use crate::rapi::{Rapi, RapiError};

use super::reason::{JobReason, RunId};

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("the promotion tag `{0}` is not a valid Ganeti tag (at most 128 characters)")]
    Tag(String),
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

/// Records that `class`'s rollout to `image` is promoted.
pub async fn promote<R: Rapi + ?Sized>(
    rapi: &R,
    class: &str,
    image: &str,
    run: &RunId,
    wait: WaitOptions,
) -> Result<Promoted, PromoteError> {
    let tag = promotion_tag(class, image);
    if !is_valid_tag(&tag) {
        return Err(PromoteError::Tag(tag));
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

    #[tokio::test]
    async fn a_promotion_is_a_cluster_tag_that_replaces_the_class_s_older_one() {
        let rapi = MemoryRapi::new("cluster.mem.test", "node1.mem.test", Duration::ZERO);
        let run = RunId::new(SystemTime::now());
        let wait = WaitOptions::default();
        let (old, new) = (
            "sha256-aaaaaaaaaaaaaaaaaaaaaaaa",
            "sha256-bbbbbbbbbbbbbbbbbbbbbbbb",
        );
        let first = promote(&rapi, "web", old, &run, wait).await.unwrap();
        assert_eq!(
            first,
            Promoted::Recorded {
                tag: "ganeti-operator:promoted:web:sha256-aaaaaaaaaaaaaaaa".into(),
                replaced: vec![]
            }
        );
        assert_eq!(
            promote(&rapi, "web", old, &run, wait).await.unwrap(),
            Promoted::Already
        );
        // Another class's promotion stays.
        promote(&rapi, "db", old, &run, wait).await.unwrap();
        let second = promote(&rapi, "web", new, &run, wait).await.unwrap();
        assert_eq!(
            second,
            Promoted::Recorded {
                tag: promotion_tag("web", new),
                replaced: vec![promotion_tag("web", old)]
            }
        );
        let tags = rapi.info().await.unwrap().tags;
        assert_eq!(tags, [promotion_tag("db", old), promotion_tag("web", new)]);
    }

    #[tokio::test]
    async fn a_class_name_too_long_for_a_tag_is_refused_before_any_job() {
        let rapi = MemoryRapi::new("cluster.mem.test", "node1.mem.test", Duration::ZERO);
        let run = RunId::new(SystemTime::now());
        let long = "c".repeat(100);
        let error = promote(&rapi, &long, "sha256-aa", &run, WaitOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PromoteError::Tag(_)), "{error}");
        assert!(rapi.info().await.unwrap().tags.is_empty());
    }
}
