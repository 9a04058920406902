//! The artifact store: a directory tree on the operator's machine that the hosts fetch
//! over HTTP. `images/<id>/` holds content-addressed images with their manifest,
//! `boot/` the per-host iPXE pointers, `secrets/` what the secrets publisher writes.
//!
//! Every write goes through `atomic_file` under the store's lock, so a host fetching a
//! pointer or an image file while the operator writes it sees the old bytes or the new.

pub mod catalog;
pub mod import;
pub mod manifest;
pub mod pointer;
pub mod serve;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::atomic_file;
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
    #[error("no image `{id}` in the store {root}")]
    NoSuchImage { id: String, root: PathBuf },
    #[error("{0}")]
    Import(String),
    #[error("cannot take the store's lock: {0}")]
    Lock(#[from] std::io::Error),
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

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its layout where missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        for dir in ["images", "boot/by-name", "secrets"] {
            atomic_file::create_dir_all(&store.root.join(dir), DIR_MODE)
                .map_err(|e| store.io(e))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn image_dir(&self, id: &str) -> PathBuf {
        self.images_dir().join(id)
    }

    /// `secrets/`: one directory per host, written by [`crate::secrets::publish`].
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }

    pub fn path_of(&self, file: &StoreFile) -> PathBuf {
        self.root.join(file.relative_path())
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            root: self.root.clone(),
            source,
        }
    }

    /// The ids of the complete images: those whose manifest has been written, which
    /// import does last.
    pub fn image_ids(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut ids = BTreeSet::new();
        for entry in std::fs::read_dir(self.images_dir()).map_err(|e| self.io(e))? {
            let entry = entry.map_err(|e| self.io(e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if manifest::is_image_id(&name) && entry.path().join(manifest::FILE_NAME).is_file() {
                ids.insert(name);
            }
        }
        Ok(ids)
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        if !manifest::is_image_id(id) {
            return Err(StoreError::NoSuchImage {
                id: id.to_owned(),
                root: self.root.clone(),
            });
        }
        let path = self.image_dir(id).join(manifest::FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => Manifest::from_json(&bytes)
                .map_err(|message| StoreError::BadManifest { path, message }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchImage {
                id: id.to_owned(),
                root: self.root.clone(),
            }),
            Err(source) => Err(StoreError::File { path, source }),
        }
    }

    /// Writes (`Some`) or removes (`None`) one file, under the store's lock.
    pub fn write(&self, file: &StoreFile, contents: Option<&[u8]>) -> Result<(), StoreError> {
        let path = self.path_of(file);
        let failed = |source| StoreError::File {
            path: path.clone(),
            source,
        };
        atomic_file::with_dir_lock(&self.root, || match contents {
            Some(bytes) => atomic_file::write_atomic(&path, bytes, FILE_MODE),
            None => atomic_file::remove_durably(&path),
        })
        .map_err(failed)
    }

    /// Runs `f` holding the store's lock: for multi-file work such as an import or gc.
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        atomic_file::with_dir_lock(&self.root, f)
    }
}
