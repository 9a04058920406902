//! The lock one reconcile holds from loading the state to the end of its execution, so
//! that `reconcile` and the daemon (or two of either) never plan from the same snapshot
//! and together exceed `maxUnavailable` or N+1. Whoever holds it writes who they are into
//! the lock file; a second process names that holder while it waits. Each holder bumps a
//! counter in the file, so a process can tell whether anyone ran since it last held it.
//!
//! It is a `flock` on a file of its own, beside the state file: the state file's own
//! directory lock is taken for each mark saved during the run, and must stay free.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Held until dropped (closing the file releases the lock, also when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    generation: u64,
}

/// The lock file beside `state_file`.
pub fn path_for(state_file: &Path) -> PathBuf {
    let mut name = state_file.file_name().unwrap_or_default().to_owned();
    name.push(".run-lock");
    state_file.with_file_name(name)
}

impl RunLock {
    /// Takes the lock at `path`, waiting while another holds it; `waiting` is told who
    /// that is (what they wrote into the file) before the wait begins. `holder` is what
    /// this process writes there.
    pub fn acquire(
        path: &Path,
        holder: &str,
        waiting: impl FnOnce(&str),
    ) -> std::io::Result<RunLock> {
        let mut file = open(path)?;
        if !flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
            waiting(&holder_of(&mut file));
            flock(&file, libc::LOCK_EX)?;
        }
        RunLock::held(file, holder)
    }

    /// The lock if it is free, or who holds it.
    pub fn try_acquire(path: &Path, holder: &str) -> std::io::Result<Result<RunLock, String>> {
        let mut file = open(path)?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
            RunLock::held(file, holder).map(Ok)
        } else {
            Ok(Err(holder_of(&mut file)))
        }
    }

    /// This holder's generation: one more than the holder's before it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn held(mut file: File, holder: &str) -> std::io::Result<RunLock> {
        file.seek(SeekFrom::Start(0))?;
        let previous = generation_in(&holder_of(&mut file));
        let generation = previous.saturating_add(1);
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("generation {generation}: {holder}").as_bytes())?;
        file.flush()?;
        Ok(RunLock {
            _file: file,
            generation,
        })
    }
}

/// The generation a holder wrote (`generation N: …`); 0 for none.
fn generation_in(holder: &str) -> u64 {
    holder
        .strip_prefix("generation ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::atomic_file::create_dir_all(dir, 0o700)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// What the holder wrote; empty if it is between opening and writing.
fn holder_of(file: &mut File) -> String {
    let mut who = String::new();
    let _ = file.take(4096).read_to_string(&mut who);
    who.trim().to_owned()
}

/// `flock(2)` on the file; `false` when `LOCK_NB` found it held.
fn flock(file: &File, operation: i32) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor this File owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_second_holder_is_told_who_holds_it_and_waits_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("history-c.json"));
        let first = RunLock::acquire(&path, "pid 1 (reconcile)", |_| panic!("free")).unwrap();
        let (told, heard) = mpsc::channel();
        let (got, acquired) = mpsc::channel();
        let second = std::thread::spawn(move || {
            let lock = RunLock::acquire(&path, "pid 2 (daemon)", |who| {
                told.send(who.to_owned()).unwrap();
            })
            .unwrap();
            got.send(()).unwrap();
            lock
        });
        assert_eq!(heard.recv().unwrap(), "generation 1: pid 1 (reconcile)");
        assert!(
            acquired.try_recv().is_err(),
            "the second holder waits while the first holds it"
        );
        assert_eq!(first.generation(), 1);
        drop(first);
        acquired.recv().unwrap();
        assert_eq!(
            second.join().unwrap().generation(),
            2,
            "each holder counts one on"
        );
    }
}
