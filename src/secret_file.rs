//! Reading a credential from a file (the RAPI password, the webhook secret), by one rule:
//! a small regular file with something in it. A FIFO would block the reader forever and
//! `/dev/zero` would be read until memory runs out, so neither is opened for reading;
//! an empty or blank file would make an empty key, which signs anything.
//!
//! Symlinks are followed: secret managers (agenix, sops-nix, systemd credentials) hand
//! out links into a tmpfs.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Larger than any password or webhook secret, small enough to read at once.
pub const MAX_SECRET_BYTES: u64 = 4096;

/// Causes are in the messages, not `source`s (see [`crate::daemon::DaemonError`]).
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the {what} {path}: {cause}")]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the {what} {path} is not a regular file (it is {kind}); point it at a file")]
    NotAFile {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("the {what} {path} is larger than {MAX_SECRET_BYTES} bytes; it should hold one secret")]
    TooLarge { what: &'static str, path: PathBuf },
    #[error("the {what} {path} is empty or only whitespace")]
    Blank { what: &'static str, path: PathBuf },
}

/// The bytes of the secret file at `path`, as written (the caller trims what its format
/// allows). `what` names the file in errors and warnings, e.g. "RAPI password file".
pub fn read_secret(path: &Path, what: &'static str) -> Result<Vec<u8>, SecretFileError> {
    let io = |cause| SecretFileError::Io {
        what,
        path: path.to_owned(),
        cause,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It has
    // no effect on a regular file, the only kind read below.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(SecretFileError::NotAFile {
            what,
            path: path.to_owned(),
            kind: kind_of(&meta.file_type()),
        });
    }
    // Allocated at its bound, so reading never leaves a freed partial copy behind.
    let mut bytes = Vec::with_capacity(MAX_SECRET_BYTES as usize + 1);
    // The bound holds even if the file grows between the check and the read.
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretFileError::TooLarge {
            what,
            path: path.to_owned(),
        });
    }
    if bytes.trim_ascii().is_empty() {
        return Err(SecretFileError::Blank {
            what,
            path: path.to_owned(),
        });
    }
    if meta.mode() & 0o044 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.mode() & 0o7777),
            "the {what} is readable by its group or by everyone; chmod 600 it"
        );
    }
    Ok(bytes)
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn read(path: &Path) -> Result<Vec<u8>, SecretFileError> {
        read_secret(path, "test secret")
    }

    #[test]
    fn reads_a_small_file_and_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read(&file).unwrap(), b"s3cret\n");
        assert_eq!(read(&link).unwrap(), b"s3cret\n");
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path and creates a node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read(&fifo).map(|_| ())).unwrap());
        let result = finished
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO must not block");
        assert!(
            matches!(
                result,
                Err(SecretFileError::NotAFile { kind: "a FIFO", .. })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_devices_directories_large_and_blank_files() {
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(SecretFileError::NotAFile {
                kind: "a directory",
                ..
            })
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        assert!(matches!(read(&big), Err(SecretFileError::TooLarge { .. })));
        for blank in ["", " \n", "\t\r\n  "] {
            let file = dir.path().join("blank");
            std::fs::write(&file, blank).unwrap();
            assert!(
                matches!(read(&file), Err(SecretFileError::Blank { .. })),
                "{blank:?}"
            );
        }
    }
}
