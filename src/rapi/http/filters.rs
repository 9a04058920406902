//! `/2/filters`: reading the job filters and placing or removing the freeze's rules. Kept
//! apart from the job calls; filters are changed at once, with no job.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;

use super::{HttpRapi, Request, bulk, segment};
use crate::rapi::RapiError;
use crate::rapi::filter::{FreezeRule, JobFilter};

impl HttpRapi {
    pub(super) async fn list_filters(&self) -> Result<Option<Vec<JobFilter>>, RapiError> {
        match self
            .call::<Vec<JobFilter>>(bulk(Request::get("/2/filters", "/2/filters")))
            .await
        {
            Ok(filters) => Ok(Some(filters)),
            // Before Ganeti 2.13 there is no such resource.
            Err(RapiError::Api {
                status: 404 | 501, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn replace_freeze(
        &self,
        rule: FreezeRule,
        why: &str,
    ) -> Result<(), RapiError> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Ganeti's reason timestamps are nanoseconds; u64 holds them until 2554.
        let now_ns = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
        let mut request = Request::write(
            Method::PUT,
            "/2/filters/{uuid}",
            format!("/2/filters/{}", segment(rule.uuid())),
            Some(rule.body(why, now_ns)),
        );
        // Replacing a filter by its UUID twice leaves one filter: safe to send again.
        request.idempotent = true;
        self.call::<serde_json::Value>(request).await.map(|_| ())
    }

    pub(super) async fn remove_filter(&self, uuid: &str) -> Result<(), RapiError> {
        let mut request = Request::write(
            Method::DELETE,
            "/2/filters/{uuid}",
            format!("/2/filters/{}", segment(uuid)),
            None,
        );
        request.idempotent = true;
        match self.call::<serde_json::Value>(request).await {
            Ok(_) => Ok(()),
            // luxid: "Filter rule with UUID … does not exist".
            Err(RapiError::Api { status: 404, .. }) => Ok(()),
            Err(RapiError::Api { ref message, .. }) if message.contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
