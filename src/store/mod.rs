//! The artifact store: a directory tree on the operator's machine that the hosts fetch
//! over HTTP. `images/<id>/` holds content-addressed images with their manifest,
//! `boot/` the per-host iPXE pointers, `secrets/` what the secrets publisher writes.
//!
//! The store is a local directory or a WebDAV-enabled nginx ([`dav`]); either way a host
//! fetching a pointer or an image file while the operator writes it sees the old bytes
//! or the new: locally every write goes through `atomic_file` under the store's lock,
//! and nginx writes a PUT's body to a temp file that it renames into place.
//!
//! Every operation blocks (file I/O, or reqwest's blocking client for WebDAV): call the
//! store from a blocking thread (`spawn_blocking`, or the command line before its
//! runtime starts), never on an async worker, where the blocking client panics.

mod backend;
pub mod catalog;
pub mod dav;
mod dav_import;
pub mod import;
pub mod manifest;
pub mod pointer;
pub mod serve;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::atomic_file;
pub use backend::Entry;
use manifest::Manifest;

/// Store files are served to every host, so they are world-readable; nothing secret
/// is written here in plaintext.
pub const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {root}: {source}")]
    Io {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a manifest this operator wrote: {message}")]
    BadManifest { path: PathBuf, message: String },
    #[error("no image `{id}` in the store {store}")]
    NoSuchImage { id: String, store: String },
    #[error("{0}")]
    Import(String),
    #[error("cannot take the store's lock: {0}")]
    Lock(#[from] std::io::Error),
    #[error("the store {url}: {message}")]
    Remote { url: String, message: String },
}

/// A file the planner may ask to be written or removed, named by what it is, so a step
/// can never name a path outside the store.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum StoreFile {
    /// `boot/<mac>.ipxe`, the MAC as iPXE's `${net0/mac:hexhyp}` writes it.
    MacPointer(pointer::Mac),
    /// `boot/by-name/<host>.ipxe`.
    NamedPointer(String),
    /// `boot/chain.ipxe`, the script hosts run first.
    Chain,
}

impl StoreFile {
    pub fn relative_path(&self) -> PathBuf {
        match self {
            StoreFile::MacPointer(mac) => PathBuf::from(format!("boot/{}.ipxe", mac.hexhyp())),
            StoreFile::NamedPointer(host) => PathBuf::from(format!("boot/by-name/{host}.ipxe")),
            StoreFile::Chain => PathBuf::from("boot/chain.ipxe"),
        }
    }
}

impl std::fmt::Display for StoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.relative_path().display())
    }
}

/// Where the store lives: a local directory (the embedded default), or a WebDAV-enabled
/// nginx that the operator writes through an authenticated location. Both hold the same
/// layout; [`backend`] gives both the same small set of file operations.
#[derive(Debug, Clone)]
pub struct Store {
    backend: backend::Backend,
}

impl Store {
    /// Opens the store at `root`, creating its layout where missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in ["images", "boot/by-name", "secrets"] {
            atomic_file::create_dir_all(&root.join(dir), DIR_MODE).map_err(|source| {
                StoreError::Io {
                    root: root.clone(),
                    source,
                }
            })?;
        }
        Ok(Store {
            backend: backend::Backend::Dir(root),
        })
    }

    /// Opens the store on a WebDAV server, checking the credentials with one listing.
    pub fn open_dav(config: dav::DavConfig) -> Result<Store, StoreError> {
        let dav = dav::Dav::connect(config)?;
        dav.list("")?;
        Ok(Store {
            backend: backend::Backend::Dav(dav),
        })
    }

    /// The local directory, when the store is one: what the built-in server serves.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.backend {
            backend::Backend::Dir(root) => Some(root),
            backend::Backend::Dav(_) => None,
        }
    }

    /// The store's directory or URL, for messages.
    pub fn location(&self) -> String {
        self.describe("")
    }

    /// The ids of the complete images: those whose manifest has been written, which
    /// import does last.
    pub fn image_ids(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut ids = BTreeSet::new();
        for entry in self.list("images")?.unwrap_or_default() {
            if entry.is_dir
                && manifest::is_image_id(&entry.name)
                && self.is_file(&manifest_path(&entry.name))?
            {
                ids.insert(entry.name);
            }
        }
        Ok(ids)
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        let missing = || StoreError::NoSuchImage {
            id: id.to_owned(),
            store: self.location(),
        };
        if !manifest::is_image_id(id) {
            return Err(missing());
        }
        let path = manifest_path(id);
        match self.read(&path, MAX_MANIFEST_BYTES)? {
            Some(bytes) => Manifest::from_json(&bytes).map_err(|message| StoreError::BadManifest {
                path: PathBuf::from(self.describe(&path)),
                message,
            }),
            None => Err(missing()),
        }
    }

    /// Writes (`Some`) or removes (`None`) one file, under the store's lock.
    pub fn write(&self, file: &StoreFile, contents: Option<&[u8]>) -> Result<(), StoreError> {
        let path = file.relative_path().display().to_string();
        self.locked(|| match contents {
            Some(bytes) => self.put(&path, bytes),
            None => self.remove(&path),
        })
    }

    /// Runs `f` holding the store's lock: for multi-file work such as an import or gc.
    /// A WebDAV store has no lock (nginx has no conditional write): only the leader
    /// writes it.
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.backend {
            backend::Backend::Dir(root) => atomic_file::with_dir_lock(root, f),
            backend::Backend::Dav(_) => f(),
        }
    }
}

/// Larger than any manifest the operator writes.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// `images/<id>/manifest.json`.
pub fn manifest_path(id: &str) -> String {
    format!("images/{id}/{}", manifest::FILE_NAME)
}
