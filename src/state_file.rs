//! The one rule for the operator's small JSON files in its state directory (the history,
//! the secrets notify retries): private to the operator, bounded in size, replaced
//! atomically and changed under the directory's lock. A missing file is an empty state; a
//! file that cannot be read or parsed is an error naming it, never silently dropped.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic_file;

/// The file's bits: its contents name the cluster's objects and their errors.
const FILE_MODE: u32 = 0o600;
/// The state directory's bits, when the operator creates it.
const DIR_MODE: u32 = 0o700;
/// Larger than any state file the operator writes; a bigger one is not read into memory.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Causes are in the messages, not `source`s (see [`crate::daemon::DaemonError`]).
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("reading the state file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the state file {path} is not valid: {cause}; move it away to start afresh")]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("the state file {path} is larger than {MAX_BYTES} bytes; move it away to start afresh")]
    TooLarge { path: PathBuf },
    #[error("writing the state file {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("locking the state directory of {path}: {cause}")]
    Lock {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The state in `path`, or the empty state when there is no such file.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, StateFileError> {
    let read = |cause| StateFileError::Read {
        path: path.to_owned(),
        cause,
    };
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(cause) => return Err(read(cause)),
        Ok(meta) if meta.len() > MAX_BYTES => {
            return Err(StateFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        Ok(_) => std::fs::read(path).map_err(read)?,
    };
    serde_json::from_slice(&bytes).map_err(|cause| StateFileError::Parse {
        path: path.to_owned(),
        cause,
    })
}

/// Replaces the file with `state` (see [`atomic_file::write_atomic`]). Callers that
/// started from the file should use [`update`], which holds the lock.
pub fn save<T: Serialize>(path: &Path, state: &T) -> Result<(), StateFileError> {
    let failed = |cause| StateFileError::Write {
        path: path.to_owned(),
        cause,
    };
    atomic_file::create_dir_all(atomic_file::parent_of(path), DIR_MODE).map_err(failed)?;
    let text = serde_json::to_vec_pretty(state)
        .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    atomic_file::write_atomic(path, &text, FILE_MODE).map_err(failed)
}

/// Loads the file, applies `change` and saves, all under the state directory's lock, so
/// that a change another process saved in the meantime is kept, not overwritten. Returns
/// the state as saved.
pub fn update<T: Serialize + DeserializeOwned + Default>(
    path: &Path,
    change: impl FnOnce(&mut T),
) -> Result<T, StateFileError> {
    let dir = atomic_file::parent_of(path);
    let locking = |cause| StateFileError::Lock {
        path: path.to_owned(),
        cause,
    };
    atomic_file::create_dir_all(dir, DIR_MODE).map_err(locking)?;
    // The lock's own failure is an io::Error; what happens under it is a StateFileError.
    let under_lock = || {
        let mut state: T = load(path)?;
        change(&mut state);
        save(path, &state)?;
        Ok(state)
    };
    atomic_file::with_dir_lock(dir, || Ok::<_, std::io::Error>(under_lock())).map_err(locking)?
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn missing_is_empty_corrupt_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let empty: BTreeMap<String, u64> = load(&path).unwrap();
        assert!(empty.is_empty());
        std::fs::write(&path, "{not json").unwrap();
        let error = load::<BTreeMap<String, u64>>(&path)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("s.json") && error.contains("move it away"),
            "{error}"
        );
        let saved = update(
            &dir.path().join("new/t.json"),
            |s: &mut BTreeMap<String, u64>| {
                s.insert("a".into(), 1);
            },
        )
        .unwrap();
        assert_eq!(saved.get("a"), Some(&1));
    }
}
