//! The store on a WebDAV-enabled nginx: GET (directories as `autoindex_format json`), PUT,
//! DELETE and MOVE on the location the operator writes through, with basic auth from a
//! file and TLS verified against a CA file or a pinned certificate ([`crate::rapi::tls`]).
//!
//! What nginx does with each request was measured (the store chapter of the guide has the
//! table): a PUT is written to a temp file and renamed, so readers never see half a file;
//! preconditions on PUT are ignored, so nothing here relies on them; a `MOVE` with
//! `Overwrite: F` onto an existing directory answers 412.
//!
//! The client is reqwest's blocking one: the store's callers are synchronous (they run on
//! blocking threads, like the local store's file I/O) and an image is streamed from its
//! file as the request's body, never held whole.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret as _, SecretString};

use super::{Entry, StoreError};

mod connect;
pub use connect::DavConfig;

/// Small requests (listings, pointers, manifests) finish within this; uploads and image
/// reads have no overall limit, only the connect timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A listing larger than this is not the store's.
const MAX_LISTING_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct Dav {
    base: Url,
    client: Client,
    user: String,
    password: Arc<SecretString>,
    credentials_file: PathBuf,
}

impl std::fmt::Debug for Dav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dav({})", self.base)
    }
}

/// What a `MOVE` with `Overwrite: F` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    Moved,
    /// The destination exists (412): for a content-addressed image, it is already there.
    DestinationExists,
}

#[derive(serde::Deserialize)]
struct ListedEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

impl Dav {
    /// The URL of a store path; directories end with `/`, as nginx wants them.
    pub fn url(&self, path: &str, dir: bool) -> Url {
        let mut relative = path.trim_matches('/').to_owned();
        if dir && !relative.is_empty() {
            relative.push('/');
        }
        // Store paths are plain names (see `backend`); joining cannot leave the base.
        self.base
            .join(&relative)
            .unwrap_or_else(|_| self.base.clone())
    }

    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        self.client
            .request(method, url.clone())
            .basic_auth(&self.user, Some(self.password.expose_secret()))
    }

    /// Sends, and turns a transport failure or a refused login into an error naming the
    /// URL (never the password).
    fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response, StoreError> {
        let response = request.send().map_err(|e| self.transport_error(url, &e))?;
        match response.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(StoreError::Remote {
                url: url.to_string(),
                message: format!(
                    "HTTP {}: the server refused the credentials in {} for this location",
                    response.status().as_u16(),
                    self.credentials_file.display()
                ),
            }),
            _ => Ok(response),
        }
    }

    fn transport_error(&self, url: &Url, error: &reqwest::Error) -> StoreError {
        let mut message = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        StoreError::Remote {
            url: url.to_string(),
            message,
        }
    }

    fn unexpected(&self, url: &Url, what: &str, response: Response) -> StoreError {
        StoreError::Remote {
            url: url.to_string(),
            message: format!("{what}: HTTP {}", response.status().as_u16()),
        }
    }

    pub fn list(&self, dir: &str) -> Result<Option<Vec<Entry>>, StoreError> {
        let url = self.url(dir, true);
        let response = self.send(
            self.request(Method::GET, &url).timeout(REQUEST_TIMEOUT),
            &url,
        )?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            _ => return Err(self.unexpected(&url, "listing", response)),
        }
        let mut body = Vec::new();
        response
            .take(MAX_LISTING_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| self.io_error(&url, &e))?;
        let listed: Vec<ListedEntry> =
            serde_json::from_slice(&body).map_err(|e| StoreError::Remote {
                url: url.to_string(),
                message: format!(
                    "the listing is not nginx's `autoindex_format json` ({e}); \
                     enable `autoindex on; autoindex_format json;` on the write location"
                ),
            })?;
        let mut entries: Vec<Entry> = listed
            .into_iter()
            .filter(|e| !e.name.starts_with('.') && (e.kind == "directory" || e.kind == "file"))
            .map(|e| Entry {
                is_dir: e.kind == "directory",
                name: e.name,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(entries))
    }

    fn io_error(&self, url: &Url, e: &std::io::Error) -> StoreError {
        StoreError::Remote {
            url: url.to_string(),
            message: format!("reading the answer: {e}"),
        }
    }

    pub fn read(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let url = self.url(path, false);
        let response = self.send(
            self.request(Method::GET, &url).timeout(REQUEST_TIMEOUT),
            &url,
        )?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let mut bytes = Vec::new();
                response
                    .take(max)
                    .read_to_end(&mut bytes)
                    .map_err(|e| self.io_error(&url, &e))?;
                Ok(Some(bytes))
            }
            _ => Err(self.unexpected(&url, "reading", response)),
        }
    }

    /// The size of a file (HEAD); `None` when it is not there.
    pub fn size(&self, path: &str) -> Result<Option<u64>, StoreError> {
        let url = self.url(path, false);
        let response = self.send(
            self.request(Method::HEAD, &url).timeout(REQUEST_TIMEOUT),
            &url,
        )?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // The header, not `content_length()`: a HEAD's body is empty.
            s if s.is_success() => Ok(Some(
                response
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            _ => Err(self.unexpected(&url, "looking up", response)),
        }
    }

    pub fn reader(&self, path: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let url = self.url(path, false);
        let response = self.send(self.request(Method::GET, &url), &url)?;
        if !response.status().is_success() {
            return Err(self.unexpected(&url, "reading", response));
        }
        Ok(Box::new(response))
    }

    pub fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let url = self.url(path, false);
        let request = self
            .request(Method::PUT, &url)
            .timeout(REQUEST_TIMEOUT)
            .body(bytes.to_vec());
        self.expect_written(&url, request)
    }

    /// Uploads `len` bytes read from `body` as they are sent: a large image is never held
    /// in memory.
    pub fn put_stream(
        &self,
        path: &str,
        body: impl Read + Send + 'static,
        len: u64,
    ) -> Result<(), StoreError> {
        let url = self.url(path, false);
        let request = self
            .request(Method::PUT, &url)
            .body(reqwest::blocking::Body::sized(body, len));
        self.expect_written(&url, request)
    }

    fn expect_written(&self, url: &Url, request: RequestBuilder) -> Result<(), StoreError> {
        let response = self.send(request, url)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.unexpected(url, "writing", response))
        }
    }

    /// Deletes a file or (with `dir`) a directory and its content; a missing one is fine.
    pub fn remove(&self, path: &str, dir: bool) -> Result<(), StoreError> {
        let url = self.url(path, dir);
        let response = self.send(
            self.request(Method::DELETE, &url).timeout(REQUEST_TIMEOUT),
            &url,
        )?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(self.unexpected(&url, "removing", response)),
        }
    }

    /// Moves a directory into place unless its destination exists (`Overwrite: F`).
    pub fn move_dir(&self, from: &str, to: &str) -> Result<Moved, StoreError> {
        let url = self.url(from, true);
        let destination = self.url(to, true);
        let method = Method::from_bytes(b"MOVE").expect("a valid method name");
        let request = self
            .request(method, &url)
            .timeout(REQUEST_TIMEOUT)
            .header("Destination", destination.as_str())
            .header("Overwrite", "F");
        let response = self.send(request, &url)?;
        match response.status() {
            StatusCode::PRECONDITION_FAILED => Ok(Moved::DestinationExists),
            s if s.is_success() => Ok(Moved::Moved),
            _ => Err(self.unexpected(&url, &format!("moving it to {destination}"), response)),
        }
    }
}
