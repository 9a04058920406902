//! Writing the directory: the files are validated in memory first, together with any
//! other desired-state files already in the directory (they are part of what `validate`
//! will read), and nothing is written unless the whole is valid and no file would be
//! overwritten without `--force`.

use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::desired::files::FileRead;
use crate::desired::{self, DirSource, Validation, diagnostic};

use super::OnboardError;
use super::render::RenderedFile;

/// What was written, and the state it describes.
#[derive(Debug)]
pub struct Written {
    pub paths: Vec<PathBuf>,
    /// `1 node, 2 classes, 3 instances, 0 secrets`.
    pub summary: String,
}

/// Validates `files` as they would be in `dir`, beside the directory's other files.
pub fn validate(dir: &Path, files: &[RenderedFile]) -> Validation {
    let source = DirSource::new(dir);
    let mut all: Vec<(String, FileRead)> = files
        .iter()
        .map(|f| (display(dir, f.name), Ok(f.text.clone().into_bytes())))
        .collect();
    // A directory that does not exist yet, or has no YAML files, adds nothing.
    if let Ok(others) = source.yaml_files() {
        for (name, read) in others {
            if !all.iter().any(|(n, _)| *n == name) {
                all.push((name, read));
            }
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    desired::validate_files(all, &source)
}

/// Writes `files` into `dir` (created if missing), after [`validate`] passed.
pub fn write_dir(dir: &Path, files: &[RenderedFile], force: bool) -> Result<Written, OnboardError> {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f.name)).collect();
    // symlink_metadata: a dangling link is a file in the way too.
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .cloned()
        .collect();
    if !existing.is_empty() && !force {
        return Err(OnboardError::Exists { paths: existing });
    }
    let validation = validate(dir, files);
    let Some(state) = &validation.state else {
        let report = format!(
            "{}{}",
            diagnostic::render_text(&validation.diagnostics),
            validation.errors_text()
        );
        return Err(OnboardError::Invalid { report });
    };
    let summary = state.summary();
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |cause| OnboardError::Write { path, cause }
    };
    atomic_file::create_dir_all(dir, 0o755).map_err(failed(dir))?;
    for (file, path) in files.iter().zip(&paths) {
        atomic_file::write_atomic(path, file.text.as_bytes(), 0o644).map_err(failed(path))?;
    }
    Ok(Written { paths, summary })
}

/// A file's name as validation reports it, as `DirSource` names the files it reads.
fn display(dir: &Path, name: &str) -> String {
    let root = dir.to_string_lossy();
    let root = root.trim_end_matches('/');
    if root.is_empty() || root == "." {
        name.to_owned()
    } else {
        format!("{root}/{name}")
    }
}
