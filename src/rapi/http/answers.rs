//! Reading Ganeti's answers: query rows, error bodies, pending jobs, job changes and
//! job ids. Public for the fuzz target, which feeds them arbitrary bytes.

use super::*;

/// The values of a `/2/query` answer, row by row: each cell is `[status, value]`, and a
/// cell whose status is not 0 (no data, unavailable) becomes null.
fn query_rows(answer: &Value) -> Vec<Vec<Value>> {
    answer
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .map(|row| {
            row.iter()
                .map(|cell| match cell.as_array().map(Vec::as_slice) {
                    Some([status, value]) if status.as_u64() == Some(0) => value.clone(),
                    _ => Value::Null,
                })
                .collect()
        })
        .collect()
}

// What the client makes of a response body, apart from typed decoding. Public so that
// the fuzz targets run exactly this code.

/// The message and explanation of a failed request: Ganeti's JSON envelope
/// (`{"message": …, "explain": …}`), or the body itself as text.
pub fn error_text(body: &[u8]) -> (String, Option<String>) {
    let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| envelope.get(key).and_then(Value::as_str).map(html_unescape);
    let message =
        text("message").unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    (message, text("explain"))
}

/// The jobs of a `/2/query/job` answer for the fields id, status, summary, ops,
/// received_ts and end_ts; a row without an id is skipped.
pub fn job_rows(answer: &Value) -> Vec<Job> {
    query_rows(answer)
        .into_iter()
        .filter_map(|row| {
            let mut cells = row.into_iter();
            Some(Job {
                id: cells.next()?.as_u64()?,
                status: serde_json::from_value(cells.next()?).ok(),
                summary: serde_json::from_value(cells.next()?).unwrap_or_default(),
                ops: serde_json::from_value(cells.next()?).unwrap_or_default(),
                received_ts: cells.next().and_then(|c| serde_json::from_value(c).ok()),
                end_ts: cells.next().and_then(|c| serde_json::from_value(c).ok()),
                ..Job::default()
            })
        })
        .collect()
}

/// A `/2/jobs/<id>/wait` answer: `None` (null) when nothing changed in time.
pub fn job_change(answer: &Value) -> Option<JobChange> {
    if answer.is_null() {
        return None;
    }
    let status = answer
        .get("job_info")
        .and_then(|i| i.get(0))
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let log = answer
        .get("log_entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get(0)?.as_u64()?,
                e.get(3)
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))?,
            ))
        })
        .collect();
    Some(JobChange { status, log })
}

/// The answer to a write: a bare job id; a numeric string is accepted too.
pub fn job_id(answer: &Value) -> Option<JobId> {
    answer
        .as_u64()
        .or_else(|| answer.as_str().and_then(|s| s.parse().ok()))
}
