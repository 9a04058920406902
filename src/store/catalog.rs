//! What is in the store: the pointers and what they name, image listing, verification by
//! re-hashing, and garbage collection that never removes an image in use.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

use sha2::Digest as _;

use super::manifest::Manifest;
use super::pointer::{Mac, PointerHeader, parse_header};
use super::{Store, StoreError, StoreFile};

/// Pointers are small; anything larger is not one of ours and is not read whole.
const MAX_POINTER_BYTES: u64 = 16 * 1024;

/// One pointer file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPointer {
    pub contents: String,
    /// `None` when the file lacks the operator's header (written by hand, or torn).
    pub header: Option<PointerHeader>,
}

/// Every pointer file in `boot/` and `boot/by-name/`, by what it is.
pub fn read_pointers(store: &Store) -> Result<BTreeMap<StoreFile, FoundPointer>, StoreError> {
    let mut found = BTreeMap::new();
    for (dir, by_name) in [("boot", false), ("boot/by-name", true)] {
        for entry in store.list(dir)?.unwrap_or_default() {
            let Some(stem) = entry.name.strip_suffix(".ipxe") else {
                continue;
            };
            let file = if by_name {
                StoreFile::NamedPointer(stem.to_owned())
            } else if stem == "chain" {
                StoreFile::Chain
            } else if let Some(mac) = Mac::parse(stem) {
                StoreFile::MacPointer(mac)
            } else {
                continue;
            };
            if entry.is_dir {
                continue;
            }
            // Read by the name built from what it is, not the name listed.
            let path = file.relative_path().display().to_string();
            let Some(bytes) = store.read(&path, MAX_POINTER_BYTES)? else {
                continue;
            };
            let contents = String::from_utf8(bytes).map_err(|_| StoreError::File {
                path: path.clone().into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
            })?;
            let header = parse_header(&contents);
            found.insert(file, FoundPointer { contents, header });
        }
    }
    Ok(found)
}

/// The images the pointers name.
pub fn booted_images(
    pointers: &BTreeMap<StoreFile, FoundPointer>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut booted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pointer in pointers.values() {
        if let Some(h) = &pointer.header {
            booted
                .entry(h.image.clone())
                .or_default()
                .insert(h.host.clone());
        }
    }
    booted
}

/// Every image, newest first.
pub fn manifests(store: &Store) -> Result<Vec<Manifest>, StoreError> {
    let mut all = Vec::new();
    for id in store.image_ids()? {
        all.push(store.manifest(&id)?);
    }
    all.sort_by(|a, b| b.imported_at.cmp(&a.imported_at).then(a.id.cmp(&b.id)));
    Ok(all)
}

/// One image that failed verification, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub id: String,
    pub problems: Vec<String>,
}

/// Re-hashes every file of every image. `progress` is told the bytes read.
pub fn verify(store: &Store, progress: &dyn Fn(u64)) -> Result<Vec<Corrupt>, StoreError> {
    let mut corrupt = Vec::new();
    for id in store.image_ids()? {
        let manifest = match store.manifest(&id) {
            Ok(m) => m,
            Err(StoreError::BadManifest { message, .. }) => {
                corrupt.push(Corrupt {
                    id,
                    problems: vec![format!("manifest.json: {message}")],
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let problems = file_problems(store, &manifest, progress);
        if !problems.is_empty() {
            corrupt.push(Corrupt { id, problems });
        }
    }
    Ok(corrupt)
}

/// One image's problems, as `verify` gives them; none when every file matches.
pub fn verify_image(
    store: &Store,
    id: &str,
    progress: &dyn Fn(u64),
) -> Result<Vec<String>, StoreError> {
    match store.manifest(id) {
        Ok(manifest) => Ok(file_problems(store, &manifest, progress)),
        Err(StoreError::BadManifest { message, .. }) => {
            Ok(vec![format!("manifest.json: {message}")])
        }
        Err(e) => Err(e),
    }
}

fn file_problems(store: &Store, manifest: &Manifest, progress: &dyn Fn(u64)) -> Vec<String> {
    let mut problems = Vec::new();
    for file in &manifest.files {
        let path = format!("images/{}/{}", manifest.id, file.name);
        let shown = store.describe(&path);
        match hash_file(store, &path, progress) {
            Ok((size, _)) if size != file.size => problems.push(format!(
                "{shown}: {size} bytes, the manifest says {}",
                file.size
            )),
            Ok((_, digest)) if digest != file.sha256 => problems.push(format!(
                "{shown}: SHA-256 {digest}, the manifest says {}",
                file.sha256
            )),
            Ok(_) => {}
            Err(HashError::Store(StoreError::File { source, .. })) => {
                problems.push(format!("{shown}: {source}"))
            }
            Err(HashError::Store(e)) => problems.push(e.to_string()),
            Err(HashError::Read(e)) => problems.push(format!("{shown}: {e}")),
        }
    }
    problems
}

enum HashError {
    Store(StoreError),
    Read(std::io::Error),
}

fn hash_file(
    store: &Store,
    path: &str,
    progress: &dyn Fn(u64),
) -> Result<(u64, String), HashError> {
    let mut file = store.reader(path).map_err(HashError::Store)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(HashError::Read)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
        progress(n as u64);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Why gc keeps an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeptBecause {
    InUse(String),
    Newest,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub kept: Vec<(String, KeptBecause)>,
    pub removed: Vec<String>,
}

/// Removes every image that is neither in `in_use` (with the reason it is) nor among the
/// `keep` newest of the rest. With `dry_run`, only says what it would remove.
pub fn gc(
    store: &Store,
    keep: usize,
    in_use: &BTreeMap<String, String>,
    dry_run: bool,
) -> Result<GcReport, StoreError> {
    store.locked(|| {
        let mut report = GcReport::default();
        let mut unused_kept = 0;
        for manifest in manifests(store)? {
            if let Some(why) = in_use.get(&manifest.id) {
                report
                    .kept
                    .push((manifest.id, KeptBecause::InUse(why.clone())));
            } else if unused_kept < keep {
                unused_kept += 1;
                report.kept.push((manifest.id, KeptBecause::Newest));
            } else {
                report.removed.push(manifest.id);
            }
        }
        if !dry_run {
            for id in &report.removed {
                remove_image(store, id)?;
            }
        }
        Ok(report)
    })
}

/// The manifest goes first, so a half-removed image is never listed as complete.
fn remove_image(store: &Store, id: &str) -> Result<(), StoreError> {
    store.remove(&super::manifest_path(id))?;
    store.remove_dir(&format!("images/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pointer_the_operator_writes_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("boot/sub.ipxe")).unwrap();
        let mac = Mac::parse("aa:00:00:00:00:01").unwrap();
        let files = [
            StoreFile::Chain,
            StoreFile::MacPointer(mac),
            StoreFile::NamedPointer("web1.gnt.test".into()),
        ];
        for file in &files {
            store.write(file, Some(b"#!ipxe\n")).unwrap();
        }
        std::fs::write(dir.path().join("boot/notes.txt"), "not a pointer").unwrap();
        let found: Vec<StoreFile> = read_pointers(&store).unwrap().into_keys().collect();
        let mut expected = files.to_vec();
        expected.sort();
        assert_eq!(found, expected);
    }
}
