//! `image import` into a WebDAV store. The files are streamed from disk under a staging
//! name, `images/.staging-<random>/`, with the manifest last, and the directory is then
//! moved to `images/<id>/` with `Overwrite: F`: hosts see no image or a complete one.
//!
//! A manifest already in place means the image is there (it only ever arrives inside
//! the moved directory), so a second import uploads nothing. Its files' sizes are checked
//! with HEAD requests; re-reading them whole is `image verify`'s work. A 412 from the
//! move means another import published the same content meanwhile.

use std::io::Read;
use std::sync::{Arc, Mutex};

use sha2::Digest as _;

use super::dav::{Dav, Moved};
use super::import::{ImportOutcome, ImportProgress, Imported, SourceFile};
use super::manifest::Manifest;
use super::{Store, StoreError, manifest_path};

pub(super) fn import(
    store: &Store,
    dav: &Dav,
    sources: &[SourceFile],
    manifest: Manifest,
    progress: &dyn ImportProgress,
) -> Result<Imported, StoreError> {
    let target = format!("images/{}", manifest.id);
    let mut repaired = None;
    if dav.size(&manifest_path(&manifest.id))?.is_some() {
        let problems = size_problems(store, dav, &manifest)?;
        if problems.is_empty() {
            progress.done();
            return Ok(Imported {
                manifest,
                outcome: ImportOutcome::AlreadyPresent,
            });
        }
        // The manifest goes first, so the broken copy is no longer listed as complete.
        store.remove(&manifest_path(&manifest.id))?;
        store.remove_dir(&target)?;
        repaired = Some(problems);
    }
    progress.phase("uploading", manifest.size());
    let staging = format!("images/.staging-{}", random_suffix(&manifest.id));
    let published = upload(dav, sources, &manifest, &staging, progress)
        .and_then(|()| dav.move_dir(&staging, &target));
    let moved = match published {
        Ok(moved) => moved,
        Err(e) => {
            // Best effort: a staging directory left behind is hidden from every listing.
            let _ = dav.remove(&staging, true);
            return Err(e);
        }
    };
    if moved == Moved::DestinationExists {
        dav.remove(&staging, true)?;
    }
    progress.done();
    let outcome = match (repaired, moved) {
        (Some(problems), _) => ImportOutcome::Repaired { problems },
        (None, Moved::Moved) => ImportOutcome::Copied,
        (None, Moved::DestinationExists) => ImportOutcome::AlreadyPresent,
    };
    Ok(Imported { manifest, outcome })
}

fn size_problems(store: &Store, dav: &Dav, manifest: &Manifest) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    for file in &manifest.files {
        let path = format!("images/{}/{}", manifest.id, file.name);
        match dav.size(&path)? {
            Some(size) if size == file.size => {}
            Some(size) => problems.push(format!(
                "{}: {size} bytes, the manifest says {}",
                store.describe(&path),
                file.size
            )),
            None => problems.push(format!("{}: missing", store.describe(&path))),
        }
    }
    Ok(problems)
}

/// Uploads every file, hashing what is sent so that a file changed since it was hashed
/// is caught, then the manifest.
fn upload(
    dav: &Dav,
    sources: &[SourceFile],
    manifest: &Manifest,
    staging: &str,
    progress: &dyn ImportProgress,
) -> Result<(), StoreError> {
    for source in sources {
        let sent = Arc::new(Mutex::new((sha2::Sha256::new(), 0u64)));
        let body = Hashing {
            inner: source.reader()?,
            sent: sent.clone(),
        };
        dav.put_stream(&format!("{staging}/{}", source.name), body, source.size)?;
        let (hasher, size) = std::mem::take(&mut *sent.lock().unwrap_or_else(|p| p.into_inner()));
        let digest = hex::encode(hasher.finalize());
        let planned = manifest.files.iter().find(|f| f.name == source.name);
        if planned.is_none_or(|f| f.sha256 != digest || f.size != size) {
            return Err(StoreError::Import(format!(
                "{} changed while it was being imported; nothing was imported",
                source.path.display()
            )));
        }
        progress.advance(source.size);
    }
    dav.put(
        &format!("{staging}/{}", super::manifest::FILE_NAME),
        &manifest.to_json(),
    )
}

/// The request body: the source file, hashed as it is read.
struct Hashing {
    inner: std::fs::File,
    sent: Arc<Mutex<(sha2::Sha256, u64)>>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.0.update(&buf[..n]);
        sent.1 += n as u64;
        Ok(n)
    }
}

/// Unique enough for a staging name: two imports of the same content at once must not
/// share one.
fn random_suffix(id: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!(
        "{id}:{}:{}:{:?}",
        std::process::id(),
        now.as_nanos(),
        std::thread::current().id()
    );
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..8])
}
