//! The one rule for which files a desired state is made of, in a directory and in git
//! alike: a `*.yaml`/`*.yml` entry (and a secret file) must be a regular file, or a
//! symbolic link to a regular file inside the desired-state directory. Anything else (a
//! dangling link, a link leading out, a directory, a FIFO, a device, a git submodule) is
//! a located error naming the path, never skipped and never opened: a FIFO would block.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Why a file of the desired state cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("`{path}` does not exist")]
    Missing { path: String },
    #[error("`{path}` is a symbolic link to `{target}`, which does not exist")]
    Dangling { path: String, target: String },
    #[error("`{path}` leads out of the desired-state directory (to `{target}`)")]
    Escapes { path: String, target: String },
    #[error(
        "`{path}` is reached through the symbolic link `{link}`; only a file itself may be a link"
    )]
    LinkedDirectory { path: String, link: String },
    #[error("`{path}` is a directory, not a file")]
    Directory { path: String },
    #[error("`{path}` is a {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("`{path}` is larger than the limit of {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("cannot read `{path}`: {detail}")]
    Unreadable { path: String, detail: String },
}

impl FileProblem {
    pub fn hint(&self) -> &'static str {
        match self {
            FileProblem::Dangling { .. }
            | FileProblem::Escapes { .. }
            | FileProblem::LinkedDirectory { .. } => {
                "a symbolic link must point to a regular file inside the desired-state directory"
            }
            FileProblem::Directory { .. } | FileProblem::NotRegular { .. } => {
                "only regular files (or links to them) may be named *.yaml, *.yml or be secrets"
            }
            FileProblem::TooLarge { .. } => "split the desired state over several files",
            FileProblem::Missing { .. } | FileProblem::Unreadable { .. } => {
                "paths are relative to the desired-state directory"
            }
        }
    }
}

/// A file's bytes, or why it cannot be used.
pub type FileRead = Result<Vec<u8>, FileProblem>;

/// Whether a directory entry is part of the desired state. Hidden files (editor swap and
/// backup files) are not; neither is anything without the extension.
pub fn is_desired_state_name(name: &str) -> bool {
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.starts_with('.')
}

/// Reads `relative` under `root` by the rule above, at most `max` bytes of it; a longer
/// file is `TooLarge` unless `truncate` (a secret's head is enough to check it).
pub fn read_in_dir(root: &Path, relative: &Path, max: u64, truncate: bool) -> FileRead {
    let shown = relative.display().to_string();
    let canonical = resolve_in_dir(root, relative, &shown)?;
    let unreadable = |e: std::io::Error| FileProblem::Unreadable {
        path: shown.clone(),
        detail: e.to_string(),
    };
    // O_NONBLOCK: if a FIFO was swapped in after the check, opening it must not hang;
    // O_NOFOLLOW: nor may a link swapped in be followed. The type is checked again below.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&canonical)
        .map_err(unreadable)?;
    let kind = file.metadata().map_err(unreadable)?.file_type();
    classify(kind, &shown)?;
    // Sized from the metadata, so a large file is not held in a doubled buffer.
    let expected = file.metadata().map_or(0, |m| m.len()).min(max);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).saturating_add(1));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max {
        if !truncate {
            return Err(FileProblem::TooLarge { path: shown, max });
        }
        bytes.truncate(max as usize);
    }
    Ok(bytes)
}

/// The canonical path of `relative`, checked to be a regular file inside `root`.
fn resolve_in_dir(root: &Path, relative: &Path, shown: &str) -> Result<PathBuf, FileProblem> {
    let path = root.join(relative);
    let unreadable = |e: std::io::Error| FileProblem::Unreadable {
        path: shown.to_owned(),
        detail: e.to_string(),
    };
    // Git stores a link to a directory as a link, and cannot look through it; so that
    // both sources agree, the directories on the way must be real directories here too.
    let mut on_the_way = root.to_owned();
    let parts: Vec<_> = relative.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        on_the_way.push(part);
        if fs::symlink_metadata(&on_the_way).is_ok_and(|m| m.is_symlink()) {
            let link = on_the_way.strip_prefix(root).unwrap_or(&on_the_way);
            return Err(FileProblem::LinkedDirectory {
                path: shown.to_owned(),
                link: link.display().to_string(),
            });
        }
    }
    let own = fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileProblem::Missing {
            path: shown.to_owned(),
        },
        _ => unreadable(e),
    })?;
    let target = || {
        fs::read_link(&path)
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    };
    // Canonicalizing also resolves links in the directories leading to the file.
    let canonical = fs::canonicalize(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileProblem::Dangling {
            path: shown.to_owned(),
            target: target(),
        },
        _ => unreadable(e),
    })?;
    let canonical_root = fs::canonicalize(root).map_err(unreadable)?;
    if !canonical.starts_with(&canonical_root) {
        return Err(FileProblem::Escapes {
            path: shown.to_owned(),
            target: if own.is_symlink() {
                target()
            } else {
                canonical.display().to_string()
            },
        });
    }
    let kind = fs::symlink_metadata(&canonical)
        .map_err(unreadable)?
        .file_type();
    classify(kind, shown)?;
    Ok(canonical)
}

fn classify(kind: fs::FileType, shown: &str) -> Result<(), FileProblem> {
    let path = shown.to_owned();
    let not_regular = |kind| FileProblem::NotRegular {
        path: shown.to_owned(),
        kind,
    };
    if kind.is_file() {
        Ok(())
    } else if kind.is_dir() {
        Err(FileProblem::Directory { path })
    } else if kind.is_fifo() {
        Err(not_regular("FIFO"))
    } else if kind.is_char_device() || kind.is_block_device() {
        Err(not_regular("device"))
    } else if kind.is_socket() {
        Err(not_regular("socket"))
    } else {
        Err(not_regular("special file"))
    }
}

/// What a file holds before parsing.
pub enum FileContent {
    Text(String),
    /// Not UTF-8: the byte offset of the first bad byte, with the valid text before it.
    NotUtf8 {
        valid_prefix: String,
    },
    /// Not a file that may be read (see `files`).
    Unusable(FileProblem),
}

impl FileContent {
    pub fn from_read(read: FileRead) -> FileContent {
        match read {
            Ok(bytes) => FileContent::from_bytes(bytes),
            Err(problem) => FileContent::Unusable(problem),
        }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> FileContent {
        match String::from_utf8(bytes) {
            Ok(text) => FileContent::Text(text),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                FileContent::NotUtf8 {
                    valid_prefix: String::from_utf8_lossy(&bytes[..valid]).into_owned(),
                }
            }
        }
    }
}
