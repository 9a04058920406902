//! The seam between the store's layout and where it lives: the few file operations the
//! catalog, import, gc and the secrets publisher need, on a local directory or on WebDAV.
//!
//! Paths are relative to the store's root, `/`-separated, and built only from fixed names,
//! image ids and checked host and secret names, never from what a listing returned
//! unchecked. Each operation is whole: `put` replaces a file atomically on both backends
//! (locally by write-to-temp and rename, on nginx by its temp file and rename).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::dav::Dav;
use super::{DIR_MODE, FILE_MODE, Store, StoreError};
use crate::atomic_file;

#[derive(Debug, Clone)]
pub(super) enum Backend {
    Dir(PathBuf),
    Dav(Dav),
}

/// One entry of a directory listing. Names starting with a dot (staging, temp files) are
/// never listed: nginx's autoindex hides them, and the local listing does the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

impl Store {
    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The full path or URL of `path`, for messages.
    pub fn describe(&self, path: &str) -> String {
        match &self.backend {
            Backend::Dir(root) => root.join(path).display().to_string(),
            Backend::Dav(dav) => dav.url(path, false).to_string(),
        }
    }

    /// A directory's entries; `None` when it does not exist.
    pub fn list(&self, dir: &str) -> Result<Option<Vec<Entry>>, StoreError> {
        match &self.backend {
            Backend::Dir(root) => list_local(&root.join(dir)),
            Backend::Dav(dav) => dav.list(dir),
        }
    }

    /// At most `max` bytes of a file; `None` when it does not exist.
    pub fn read(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Dir(root) => {
                let full = root.join(path);
                let mut bytes = Vec::new();
                match std::fs::File::open(&full).and_then(|f| f.take(max).read_to_end(&mut bytes)) {
                    Ok(_) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::File { path: full, source }),
                }
            }
            Backend::Dav(dav) => dav.read(path, max),
        }
    }

    pub fn is_file(&self, path: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Dir(root) => Ok(root.join(path).is_file()),
            Backend::Dav(dav) => Ok(dav.size(path)?.is_some()),
        }
    }

    /// A file to read in a stream (image files, for hashing).
    pub fn reader(&self, path: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        match &self.backend {
            Backend::Dir(root) => {
                let full = root.join(path);
                match std::fs::File::open(&full) {
                    Ok(file) => Ok(Box::new(file)),
                    Err(source) => Err(StoreError::File { path: full, source }),
                }
            }
            Backend::Dav(dav) => dav.reader(path),
        }
    }

    /// Replaces a file whole, creating its directories. Not under the store's lock: the
    /// caller holds it when it must.
    pub fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Dir(root) => {
                let full = root.join(path);
                let failed = |source| StoreError::File {
                    path: full.clone(),
                    source,
                };
                atomic_file::create_dir_all(atomic_file::parent_of(&full), DIR_MODE)
                    .map_err(failed)?;
                atomic_file::write_atomic(&full, bytes, FILE_MODE).map_err(failed)
            }
            Backend::Dav(dav) => dav.put(path, bytes),
        }
    }

    /// Removes a file; one already gone is fine.
    pub fn remove(&self, path: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Dir(root) => {
                let full = root.join(path);
                atomic_file::remove_durably(&full)
                    .map_err(|source| StoreError::File { path: full, source })
            }
            Backend::Dav(dav) => dav.remove(path, false),
        }
    }

    /// Removes a directory and everything in it; one already gone is fine.
    pub fn remove_dir(&self, path: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Dir(root) => {
                let full = root.join(path);
                let failed = |source| StoreError::File {
                    path: full.clone(),
                    source,
                };
                match std::fs::remove_dir_all(&full) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(failed(e)),
                }
                atomic_file::sync_dir(atomic_file::parent_of(&full)).map_err(failed)
            }
            Backend::Dav(dav) => dav.remove(path, true),
        }
    }
}

fn list_local(dir: &Path) -> Result<Option<Vec<Entry>>, StoreError> {
    let failed = |source| StoreError::File {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let mut listed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(failed)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Not following symlinks, as before: a link in the store is not the operator's.
        let kind = entry.file_type().map_err(failed)?;
        if kind.is_dir() || kind.is_file() {
            listed.push(Entry {
                name,
                is_dir: kind.is_dir(),
            });
        }
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(listed))
}
