//! Desired state: YAML files in a directory, checked in two stages (JSON schema, then
//! meaning) into a validated model. One bad file means no model at all: nothing is applied.

pub mod diagnostic;
pub mod merge;
pub mod model;
pub mod names;
pub mod raw;
pub mod schema;
pub mod semantic;
pub mod source;
pub mod ssh_key;
pub mod units;
pub mod yaml;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use diagnostic::Diagnostic;
pub use model::DesiredState;
use source::FileContent;

#[derive(Debug, thiserror::Error)]
pub enum DesiredStateError {
    #[error("cannot read the desired-state directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no .yaml or .yml files")]
    NoFiles { path: PathBuf },
}

/// The result of validating a desired state that could be read.
#[derive(Debug)]
pub struct Validation {
    pub files: Vec<String>,
    /// Sorted by file, line and column. Empty exactly when `state` is `Some`.
    pub diagnostics: Vec<Diagnostic>,
    pub state: Option<DesiredState>,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.state.is_some()
    }

    pub fn files_with_errors(&self) -> usize {
        let mut files: Vec<&str> = self
            .diagnostics
            .iter()
            .map(|d| d.site.file.as_str())
            .collect();
        files.dedup();
        files.len()
    }
}

/// A desired state on disk. Only the directory's own `*.yaml`/`*.yml` files are read, not
/// subdirectories, so a variant (such as `desired-state/sandbox/`) can live beside it.
pub struct DirSource {
    root: PathBuf,
}

const SECRET_HEAD_BYTES: u64 = 64;

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }

    fn display(&self, name: &str) -> String {
        let root = self.root.to_string_lossy();
        let root = root.trim_end_matches('/');
        if root.is_empty() || root == "." {
            name.to_owned()
        } else {
            format!("{root}/{name}")
        }
    }

    /// The YAML files, sorted by name, with their bytes.
    pub fn yaml_files(&self) -> Result<Vec<(String, Vec<u8>)>, DesiredStateError> {
        let dir_error = |source| DesiredStateError::Directory {
            path: self.root.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if is_yaml && !name.starts_with('.') && entry.path().is_file() {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(DesiredStateError::NoFiles {
                path: self.root.clone(),
            });
        }
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let path = self.root.join(&name);
                let bytes =
                    fs::read(&path).map_err(|source| DesiredStateError::File { path, source })?;
                Ok((self.display(&name), bytes))
            })
            .collect()
    }
}

impl semantic::SecretFiles for DirSource {
    fn head(&self, relative: &Path) -> Option<Vec<u8>> {
        let path = self.root.join(relative);
        if !path.is_file() {
            return None;
        }
        let mut head = Vec::new();
        fs::File::open(path)
            .ok()?
            .take(SECRET_HEAD_BYTES)
            .read_to_end(&mut head)
            .ok()?;
        Some(head)
    }
}

/// Reads and validates the desired state in `dir`.
pub fn validate_dir(dir: &Path) -> Result<Validation, DesiredStateError> {
    let source = DirSource::new(dir);
    let files = source.yaml_files()?;
    Ok(validate_files(files, &source))
}

/// Validates already-read files: stage one per file, then merging, then stage two.
pub fn validate_files(
    files: Vec<(String, Vec<u8>)>,
    secret_files: &dyn semantic::SecretFiles,
) -> Validation {
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let mut diagnostics = Vec::new();
    let mut parsed = Vec::new();
    let mut unreadable = false;
    for (display, bytes) in files {
        match source::parse_file(&display, FileContent::from_bytes(bytes)) {
            Ok(file) => parsed.push(file),
            Err(problems) => {
                unreadable = true;
                diagnostics.extend(problems);
            }
        }
    }
    let checks: Vec<schema::SchemaCheck> = parsed.iter().map(schema::check_file).collect();
    let checked: Vec<merge::CheckedFile<'_>> = parsed
        .iter()
        .zip(&checks)
        .map(|(file, check)| merge::CheckedFile {
            file,
            failed_pointers: &check.failed_pointers,
        })
        .collect();
    for check in &checks {
        diagnostics.extend(check.diagnostics.iter().cloned());
    }
    let mut merged = merge::merge(&checked, &mut diagnostics);
    merged.incomplete |= unreadable;
    let (state, semantic_problems) = semantic::check(&parsed, &merged, secret_files);
    diagnostics.extend(semantic_problems);
    diagnostic::sort(&mut diagnostics);
    let state = if diagnostics.is_empty() { state } else { None };
    Validation {
        files: names,
        diagnostics,
        state,
    }
}
