//! Bytes → what the RAPI client does with a response body: the JSON parse, the typed
//! decoding of every answer it reads, the job helpers, and the decoders of the wait,
//! query, submit and error answers.

#![no_main]

use ganeti_operator::rapi::http::{error_text, job_change, job_id, job_rows};
use ganeti_operator::rapi::types::{
    ClusterInfo, Group, Instance, Job, JobFailure, Node, html_unescape,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn job_helpers(job: &Job) {
    let _ = job.reasons();
    let _ = job.child_jobs();
    let _ = job.failure();
    let _ = job.status.map(|s| s.is_finished());
}

fuzz_target!(|data: &[u8]| {
    // An error status: the client reads the body as an envelope or as text.
    let _ = error_text(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = html_unescape(text);
    }

    // A success status: the client parses a `Value` first, then decodes it.
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let decode = |v: &Value| v.clone();
    let _ = serde_json::from_value::<ClusterInfo>(decode(&value));
    let _ = serde_json::from_value::<Vec<String>>(decode(&value));
    let _ = serde_json::from_value::<Vec<Node>>(decode(&value));
    let _ = serde_json::from_value::<Vec<Instance>>(decode(&value));
    let _ = serde_json::from_value::<Vec<Group>>(decode(&value));
    if let Ok(jobs) = serde_json::from_value::<Vec<Job>>(decode(&value)) {
        jobs.iter().for_each(job_helpers);
    }
    if let Ok(job) = serde_json::from_value::<Job>(decode(&value)) {
        job_helpers(&job);
    }
    job_rows(&value).iter().for_each(job_helpers);
    let _ = job_change(&value);
    let _ = job_id(&value);
    let _ = JobFailure::from_opresult(&value);
});
