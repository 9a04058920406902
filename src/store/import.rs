//! `image import`: reads what `nix build` produced (symlinks into /nix/store are followed),
//! hashes it, and copies it into `images/<id>/` only when the store lacks that id.
//!
//! Hashing comes first and reads only, so importing the same thing twice copies nothing.
//! The copy goes to a staging directory that is renamed into place whole, with the
//! manifest inside, so a crash leaves either no image or a complete one.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::Digest as _;

use super::backend::Backend;
use super::manifest::{INITRD, ImageKind, KERNEL, Manifest, ManifestFile, SQUASHFS};
use super::{FILE_MODE, Store, StoreError};
use crate::atomic_file;

const CHUNK: usize = 1 << 20;

/// What to import.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// A build result: a kexecTree or a netboot directory.
    Result(PathBuf),
    /// `--kernel/--initrd/--squashfs`.
    Files {
        kernel: PathBuf,
        initrd: PathBuf,
        squashfs: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub source: ImportSource,
    pub class: Option<String>,
    /// Replaces the command line read from the build's iPXE or kexec script.
    pub cmdline: Option<String>,
}

/// Told how far hashing and copying have got, in bytes.
pub trait ImportProgress {
    fn phase(&self, what: &'static str, total_bytes: u64);
    fn advance(&self, bytes: u64);
    fn done(&self);
}

pub struct NoProgress;

impl ImportProgress for NoProgress {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn done(&self) {}
}

#[derive(Debug)]
pub struct Imported {
    pub manifest: Manifest,
    pub outcome: ImportOutcome,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    Copied,
    /// The store held the image, every file matching its manifest: nothing was copied.
    AlreadyThere,
    /// A WebDAV store held the image, every file of the manifest's size (checked with
    /// HEAD, not re-read: `image verify` does that): nothing was uploaded.
    AlreadyPresent,
    /// The store held the image, but corrupt (`problems`, as `image verify` says them):
    /// it was copied again and put in place of the corrupt copy.
    Repaired {
        problems: Vec<String>,
    },
}

struct Layout {
    kind: ImageKind,
    /// (name in the store, file as found).
    files: Vec<(&'static str, PathBuf)>,
    cmdline: String,
}

pub fn import(
    store: &Store,
    request: &ImportRequest,
    progress: &dyn ImportProgress,
    now: SystemTime,
) -> Result<Imported, StoreError> {
    let layout = layout_of(&request.source)?;
    let cmdline = request.cmdline.clone().unwrap_or(layout.cmdline);
    let mut sources = Vec::new();
    for (name, path) in &layout.files {
        sources.push(SourceFile::open(name, path)?);
    }
    progress.phase("hashing", sources.iter().map(|s| s.size).sum());
    let mut files = Vec::new();
    for source in &sources {
        files.push(source.hash(progress)?);
    }
    let manifest = Manifest::new(
        layout.kind,
        files,
        cmdline,
        source_name(&request.source),
        request.class.clone(),
        crate::unix_time::seconds(now),
    );
    let root = match store.backend() {
        Backend::Dir(root) => root,
        Backend::Dav(dav) => {
            return super::dav_import::import(store, dav, &sources, manifest, progress);
        }
    };
    if store.image_ids()?.contains(&manifest.id) {
        progress.phase("checking the stored copy", manifest.size());
        let problems = super::catalog::verify_image(store, &manifest.id, &|n| {
            progress.advance(n);
        })?;
        if problems.is_empty() {
            progress.done();
            return Ok(Imported {
                manifest,
                outcome: ImportOutcome::AlreadyThere,
            });
        }
        progress.phase("repairing", manifest.size());
        store.locked(|| copy_in(root, &sources, &manifest, progress, Existing::Replace))?;
        progress.done();
        return Ok(Imported {
            manifest,
            outcome: ImportOutcome::Repaired { problems },
        });
    }
    progress.phase("copying", manifest.size());
    let copied = store.locked(|| copy_in(root, &sources, &manifest, progress, Existing::Keep))?;
    progress.done();
    let outcome = if copied {
        ImportOutcome::Copied
    } else {
        ImportOutcome::AlreadyThere
    };
    Ok(Imported { manifest, outcome })
}

/// What `copy_in` does with an image directory already in place.
#[derive(PartialEq)]
enum Existing {
    /// Another import put it there meanwhile: it is the same image.
    Keep,
    /// It is corrupt: the new copy takes its place.
    Replace,
}

fn copy_in(
    root: &Path,
    sources: &[SourceFile],
    manifest: &Manifest,
    progress: &dyn ImportProgress,
    existing: Existing,
) -> Result<bool, StoreError> {
    let images = root.join("images");
    let target = images.join(&manifest.id);
    if target.exists() && existing == Existing::Keep {
        return Ok(false);
    }
    let staging = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(&images)
        .map_err(|source| StoreError::File {
            path: images.clone(),
            source,
        })?;
    for source in sources {
        source.copy_to(&staging.path().join(source.name), progress)?;
    }
    let manifest_path = staging.path().join(super::manifest::FILE_NAME);
    write_synced(&manifest_path, &manifest.to_json())?;
    let dir_failed = |source| StoreError::File {
        path: target.clone(),
        source,
    };
    std::fs::set_permissions(
        staging.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(dir_failed)?;
    atomic_file::sync_dir(staging.path()).map_err(dir_failed)?;
    let staged = staging.keep();
    // A corrupt copy moves aside first and goes once the new one is in place: a reader
    // finds one or the other, never a half-written directory.
    let aside = images.join(format!(".corrupt-{}", manifest.id));
    let replacing = target.exists();
    if replacing {
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&target, &aside).map_err(dir_failed)?;
    }
    std::fs::rename(&staged, &target).map_err(dir_failed)?;
    atomic_file::sync_dir(&images).map_err(dir_failed)?;
    if replacing {
        std::fs::remove_dir_all(&aside).map_err(|source| StoreError::File {
            path: aside.clone(),
            source,
        })?;
    }
    Ok(true)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let failed = |source| StoreError::File {
        path: path.to_owned(),
        source,
    };
    let mut file = create_file(path).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)
}

fn create_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// One file to import, opened once so that what is hashed and what is copied are the
/// same file even if the build result's symlink is changed meanwhile.
pub(super) struct SourceFile {
    pub(super) name: &'static str,
    pub(super) path: PathBuf,
    pub(super) size: u64,
    modified: Option<SystemTime>,
}

impl SourceFile {
    fn open(name: &'static str, path: &Path) -> Result<SourceFile, StoreError> {
        let failed = |source| StoreError::File {
            path: path.to_owned(),
            source,
        };
        // Following symlinks is the point: a Nix result is links into /nix/store.
        let meta = std::fs::metadata(path).map_err(failed)?;
        if !meta.is_file() {
            return Err(StoreError::Import(format!(
                "{}: not a regular file (the {name} must be a file)",
                path.display()
            )));
        }
        Ok(SourceFile {
            name,
            path: path.to_owned(),
            size: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    pub(super) fn reader(&self) -> Result<File, StoreError> {
        let file = File::open(&self.path).map_err(|source| StoreError::File {
            path: self.path.clone(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| StoreError::File {
            path: self.path.clone(),
            source,
        })?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(StoreError::Import(format!(
                "{} changed while it was being imported; nothing was imported",
                self.path.display()
            )));
        }
        Ok(file)
    }

    /// Reads the whole file in chunks, handing each to `each` and counting it as
    /// progress; returns the bytes read.
    fn each_chunk(
        &self,
        progress: &dyn ImportProgress,
        mut each: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let mut reader = self.reader()?;
        let mut buffer = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(|source| StoreError::File {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(total);
            }
            each(&buffer[..n])?;
            total += n as u64;
            progress.advance(n as u64);
        }
    }

    fn hash(&self, progress: &dyn ImportProgress) -> Result<ManifestFile, StoreError> {
        let mut hasher = sha2::Sha256::new();
        let total = self.each_chunk(progress, |chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        if total != self.size {
            return Err(StoreError::Import(format!(
                "{} changed while it was being hashed; nothing was imported",
                self.path.display()
            )));
        }
        Ok(ManifestFile {
            name: self.name.to_owned(),
            size: total,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    fn copy_to(&self, target: &Path, progress: &dyn ImportProgress) -> Result<(), StoreError> {
        let failed = |source| StoreError::File {
            path: target.to_owned(),
            source,
        };
        let mut writer = create_file(target).map_err(failed)?;
        self.each_chunk(progress, |chunk| writer.write_all(chunk).map_err(failed))?;
        writer.sync_all().map_err(failed)
    }
}

fn source_name(source: &ImportSource) -> String {
    match source {
        ImportSource::Result(path) => path.display().to_string(),
        ImportSource::Files { kernel, .. } => format!("--kernel {}", kernel.display()),
    }
}

const KERNEL_NAMES: &[&str] = &["bzImage", "kernel", "vmlinuz", "Image"];
const INITRD_NAMES: &[&str] = &["initrd", "initrd.gz", "initrd.zst"];
const KEXEC_NAMES: &[&str] = &["kexec-boot", "kexec-script"];
const IPXE_NAMES: &[&str] = &["ipxe", "netboot.ipxe", "ipxe-script"];

fn layout_of(source: &ImportSource) -> Result<Layout, StoreError> {
    match source {
        ImportSource::Files {
            kernel,
            initrd,
            squashfs,
        } => {
            let mut files = vec![(KERNEL, kernel.clone()), (INITRD, initrd.clone())];
            if let Some(s) = squashfs {
                files.push((SQUASHFS, s.clone()));
            }
            Ok(Layout {
                kind: ImageKind::Explicit,
                files,
                cmdline: String::new(),
            })
        }
        ImportSource::Result(dir) => layout_of_result(dir),
    }
}

fn layout_of_result(dir: &Path) -> Result<Layout, StoreError> {
    if !dir.is_dir() {
        return Err(StoreError::Import(format!(
            "{}: not a directory; give a `nix build` result (kexecTree or netboot) or --kernel/--initrd",
            dir.display()
        )));
    }
    let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let kernel = find(KERNEL_NAMES);
    let initrd = find(INITRD_NAMES);
    let (Some(kernel), Some(initrd)) = (kernel, initrd) else {
        return Err(StoreError::Import(format!(
            "{}: no kernel ({}) and initrd ({}) found; give --kernel and --initrd instead",
            dir.display(),
            KERNEL_NAMES.join(", "),
            INITRD_NAMES.join(", ")
        )));
    };
    let mut files = vec![(KERNEL, kernel), (INITRD, initrd)];
    let squashfs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| StoreError::File {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "squashfs") && p.is_file())
        .collect();
    match squashfs.as_slice() {
        [] => {}
        [one] => files.push((SQUASHFS, one.clone())),
        _ => {
            return Err(StoreError::Import(format!(
                "{}: more than one *.squashfs; give --squashfs to choose",
                dir.display()
            )));
        }
    }
    let kexec = find(KEXEC_NAMES);
    let ipxe = find(IPXE_NAMES);
    let cmdline = match (&ipxe, &kexec) {
        (Some(script), _) => cmdline_from_ipxe(&read_script(script)?),
        (None, Some(script)) => cmdline_from_kexec(&read_script(script)?),
        (None, None) => None,
    }
    .unwrap_or_default();
    Ok(Layout {
        kind: if kexec.is_some() {
            ImageKind::KexecTree
        } else {
            ImageKind::Netboot
        },
        files,
        cmdline,
    })
}

/// Scripts are small; a huge one is not a script.
fn read_script(path: &Path) -> Result<String, StoreError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
        .map_err(|source| StoreError::File {
            path: path.to_owned(),
            source,
        })?;
    Ok(text)
}

/// `kernel bzImage init=/nix/store/…/init initrd=initrd loglevel=4` gives everything after
/// the kernel's file name except `initrd=`, which the pointer writes itself.
fn cmdline_from_ipxe(script: &str) -> Option<String> {
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("kernel "))?;
    let args: Vec<&str> = line
        .split_whitespace()
        .skip(1)
        .skip_while(|w| w.starts_with("--"))
        .skip(1)
        .filter(|w| !w.starts_with("initrd="))
        .collect();
    Some(args.join(" "))
}

/// NixOS's kexec-boot runs `kexec --load … --command-line "init=… $(<…/kernel-params)"`.
fn cmdline_from_kexec(script: &str) -> Option<String> {
    let start = script.find("--command-line")?;
    let rest = script[start + "--command-line".len()..].trim_start_matches(['=', ' ']);
    let quote = rest.chars().next()?;
    let text = if quote == '"' || quote == '\'' {
        let inner = &rest[1..];
        &inner[..inner.find(quote)?]
    } else {
        rest.split_whitespace().next()?
    };
    // Shell expansions cannot be evaluated here; keep the literal part before the first.
    let literal = text.split('$').next().unwrap_or_default();
    let words: Vec<&str> = literal.split_whitespace().collect();
    Some(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_comes_from_the_ipxe_script() {
        let script = "#!ipxe\nkernel bzImage init=/nix/store/abc-nixos-system/init initrd=initrd loglevel=4\ninitrd initrd\nboot\n";
        assert_eq!(
            cmdline_from_ipxe(script).as_deref(),
            Some("init=/nix/store/abc-nixos-system/init loglevel=4")
        );
        let with_url = "kernel ${base-url}/bzImage init=/x/init initrd=initrd";
        assert_eq!(cmdline_from_ipxe(with_url).as_deref(), Some("init=/x/init"));
    }

    #[test]
    fn the_command_line_comes_from_the_kexec_script() {
        let script = "#!/bin/sh\nkexec --load ./bzImage --initrd=./initrd --command-line \"init=/nix/store/s/init $(cat params)\"\nkexec -e\n";
        assert_eq!(
            cmdline_from_kexec(script).as_deref(),
            Some("init=/nix/store/s/init")
        );
    }
}
