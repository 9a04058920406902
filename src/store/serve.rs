//! The store served read-only over HTTP: what `run --serve-store` and `store serve` run,
//! for the hosts' iPXE and stage-1 fetches.
//!
//! It serves regular files only: no listing, nothing hidden (the lock, import staging),
//! nothing outside the root however the path is spelt or linked. It answers `Range`
//! (iPXE and stage-1 resume), `If-None-Match` against a strong `ETag` and
//! `If-Modified-Since`, so a host can check its squashfs cache's freshness cheaply.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

struct Served {
    root: PathBuf,
}

/// The router; its server must give each request `ConnectInfo<SocketAddr>`, as
/// `http_listener::serve` does.
pub fn router(root: &Path) -> Result<axum::Router, std::io::Error> {
    let root = std::fs::canonicalize(root)?;
    Ok(axum::Router::new()
        .fallback(serve_file)
        .with_state(Arc::new(Served { root })))
}

/// Serves the store on `listener` until `shutdown`, with the daemon's listener bounds
/// (header and request timeouts, a connection cap).
pub async fn serve(
    listener: tokio::net::TcpListener,
    root: &Path,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    let app = router(root)?;
    crate::http_listener::serve(listener, app, Default::default(), shutdown).await;
    Ok(())
}

async fn serve_file(
    State(served): State<Arc<Served>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let response = respond(&served.root, &method, &uri, &headers).await;
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    // The access log: tests and people watching a boot read it.
    tracing::info!(
        target: "ganeti_operator::store::access",
        "{peer} {method} {} {} {bytes}",
        uri.path(),
        response.status().as_u16()
    );
    response
}

async fn respond(root: &Path, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(path) = resolve(root, uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(meta) = file.metadata().await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !meta.is_file() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let size = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.ino(),
        size,
        meta.mtime_nsec() as u64 ^ (meta.mtime() as u64) << 30
    );
    let last_modified = httpdate::fmt_http_date(modified);
    let mut response_headers = HeaderMap::new();
    let set = |h: &mut HeaderMap, name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(&mut response_headers, header::ETAG, &etag);
    set(&mut response_headers, header::LAST_MODIFIED, &last_modified);
    set(&mut response_headers, header::ACCEPT_RANGES, "bytes");
    set(
        &mut response_headers,
        header::CACHE_CONTROL,
        cache_control(uri.path()),
    );
    set(
        &mut response_headers,
        header::CONTENT_TYPE,
        content_type(&path),
    );
    if not_modified(headers, &etag, modified) {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let range = match requested_range(headers, &etag, size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(start, end) => Some((start, end)),
        RangeRequest::Unsatisfiable => {
            set(
                &mut response_headers,
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
        }
    };
    let (status, start, length) = match range {
        Some((start, end)) => {
            set(
                &mut response_headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{size}"),
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    set(
        &mut response_headers,
        header::CONTENT_LENGTH,
        &length.to_string(),
    );
    if method == Method::HEAD {
        return (status, response_headers).into_response();
    }
    let mut file = file;
    if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(length)));
    (status, response_headers, body).into_response()
}

/// The file a request path names, or `None`. Percent-decoding comes first, so `%2e%2e`
/// and `..%2f` are caught like `..`; a symlink that leads out of the root is refused
/// after resolving it.
fn resolve(root: &Path, raw_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .ok()?;
    if decoded.contains(['\0', '\\']) {
        return None;
    }
    let relative = decoded.strip_prefix('/')?;
    let mut path = root.to_path_buf();
    for part in relative.split('/') {
        // Hidden names are the store's own: its lock, import staging, temporary files.
        if part.is_empty() || part.starts_with('.') {
            return None;
        }
        let component = Path::new(part).components().next()?;
        if !matches!(component, Component::Normal(_)) || Path::new(part).components().count() != 1 {
            return None;
        }
        path.push(part);
    }
    let real = std::fs::canonicalize(&path).ok()?;
    real.starts_with(root).then_some(real)
}

fn cache_control(path: &str) -> &'static str {
    // An image id names its content, so an image file never changes; pointers do.
    if path.starts_with("/images/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ipxe") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified.duration_since(SystemTime::UNIX_EPOCH)) {
        (Some(since), Ok(m)) => since
            .duration_since(SystemTime::UNIX_EPOCH)
            .is_ok_and(|s| m.as_secs() <= s.as_secs()),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    /// Inclusive byte offsets.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; several ranges, or a stale `If-Range`, get the whole file, which
/// RFC 9110 allows.
fn requested_range(headers: &HeaderMap, etag: &str, size: u64) -> RangeRequest {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Whole;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && if_range.trim() != etag
    {
        return RangeRequest::Whole;
    }
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if set.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) | None => return RangeRequest::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
        },
        (false, true) => match parse(first) {
            Some(s) => (s, size.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(s), Some(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
            _ => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if size == 0 || start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(spec: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(spec).unwrap());
        h
    }

    #[test]
    fn ranges() {
        let e = "\"x\"";
        assert_eq!(
            requested_range(&with_range("bytes=0-9"), e, 100),
            RangeRequest::Part(0, 9)
        );
        assert_eq!(
            requested_range(&with_range("bytes=90-"), e, 100),
            RangeRequest::Part(90, 99)
        );
        assert_eq!(
            requested_range(&with_range("bytes=-10"), e, 100),
            RangeRequest::Part(90, 99)
        );
        assert_eq!(
            requested_range(&with_range("bytes=50-500"), e, 100),
            RangeRequest::Part(50, 99)
        );
        assert_eq!(
            requested_range(&with_range("bytes=100-"), e, 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            requested_range(&with_range("bytes=0-1,5-6"), e, 100),
            RangeRequest::Whole
        );
        assert_eq!(
            requested_range(&with_range("items=0-1"), e, 100),
            RangeRequest::Whole
        );
        let mut stale = with_range("bytes=0-9");
        stale.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert_eq!(requested_range(&stale, e, 100), RangeRequest::Whole);
    }

    #[test]
    fn traversal_is_refused_however_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/a.ipxe"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("boot/out.ipxe")).unwrap();
        assert_eq!(
            resolve(&root, "/boot/a.ipxe"),
            Some(root.join("boot/a.ipxe"))
        );
        for bad in [
            "/../etc/passwd",
            "/boot/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/boot/..%2f..%2fetc%2fpasswd",
            "//etc/passwd",
            "/boot/out.ipxe",
            "/.lock",
            "/boot/a.ipxe%00",
            "/boot\\..\\..\\etc\\passwd",
            "etc/passwd",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
    }
}
