//! Desired state: YAML files in a directory, checked in two stages (JSON schema, then
//! meaning) into a validated model. One bad file means no model at all: nothing is applied.

pub mod age_file;
pub mod diagnostic;
pub mod files;
pub mod hands_off;
pub mod merge;
pub mod model;
pub mod names;
pub mod raw;
pub mod raw_notify;
pub mod schema;
pub mod semantic;
pub mod source;
pub mod ssh_key;
pub mod stream;
pub mod units;
pub mod urls;
pub mod yaml;

use std::fs;
use std::path::{Path, PathBuf};

use diagnostic::Diagnostic;
use files::{FileContent, FileRead, is_desired_state_name, read_in_dir};
pub use model::DesiredState;

#[derive(Debug, thiserror::Error)]
pub enum DesiredStateError {
    /// The cause is in the message, not a `source`: the binary prints the whole chain,
    /// which would show it twice.
    #[error("cannot read the desired-state directory {path}: {cause}")]
    Directory {
        path: PathBuf,
        cause: std::io::Error,
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

    /// "3 errors in 2 of 5 files": how every command that validates sums up a refusal.
    pub fn errors_text(&self) -> String {
        format!(
            "{} in {} of {} files",
            counted(self.diagnostics.len(), "error"),
            self.files_with_errors(),
            self.files.len()
        )
    }
}

/// `1 node`, `2 nodes`; `1 class`, `2 classes`.
pub fn counted(n: usize, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}

/// A desired state on disk. Only the directory's own `*.yaml`/`*.yml` files are read, not
/// subdirectories, so a variant (such as `desired-state/sandbox/`) can live beside it.
pub struct DirSource {
    root: PathBuf,
    store_images: Option<std::collections::BTreeSet<String>>,
}

/// Enough of a secret file to check its age header, however many recipients it has.
pub const SECRET_HEAD_BYTES: u64 = 64 * 1024;

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource {
            root: root.into(),
            store_images: None,
        }
    }

    /// Checks every class's image against the artifact store's images.
    pub fn with_store_images(mut self, images: std::collections::BTreeSet<String>) -> Self {
        self.store_images = Some(images);
        self
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

    /// The YAML files, sorted by name, each with its bytes or why it cannot be read.
    pub fn yaml_files(&self) -> Result<Vec<(String, FileRead)>, DesiredStateError> {
        let dir_error = |cause| DesiredStateError::Directory {
            path: self.root.clone(),
            cause,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(dir_error)? {
            let name = entry.map_err(dir_error)?.file_name();
            let name = name.to_string_lossy().into_owned();
            if is_desired_state_name(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(DesiredStateError::NoFiles {
                path: self.root.clone(),
            });
        }
        names.sort();
        let max = yaml::LIMITS.max_file_bytes;
        Ok(names
            .into_iter()
            .map(|name| {
                let read = read_in_dir(&self.root, Path::new(&name), max, false);
                (self.display(&name), read)
            })
            .collect())
    }
}

impl semantic::SecretFiles for DirSource {
    fn head(&self, relative: &Path) -> FileRead {
        read_in_dir(&self.root, relative, SECRET_HEAD_BYTES, true)
    }

    fn store_images(&self) -> Option<&std::collections::BTreeSet<String>> {
        self.store_images.as_ref()
    }
}

/// Reads and validates the desired state in `dir`.
pub fn validate_dir(dir: &Path) -> Result<Validation, DesiredStateError> {
    validate_source(&DirSource::new(dir))
}

/// Reads and validates the desired state of `source`.
pub fn validate_source(source: &DirSource) -> Result<Validation, DesiredStateError> {
    let files = source.yaml_files()?;
    Ok(validate_files(files, source))
}

/// Validates already-read files: stage one per file, then merging, then stage two.
pub fn validate_files(
    files: Vec<(String, FileRead)>,
    secret_files: &dyn semantic::SecretFiles,
) -> Validation {
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let mut diagnostics = Vec::new();
    let mut parsed: Vec<source::ParsedFile> = Vec::new();
    let mut merged = merge::Merged::default();
    let mut instances = stream::InstanceStream::default();
    for (display, read) in files {
        let content = FileContent::from_read(read);
        match source::parse_file_streaming(&display, content, Some(instances.stream())) {
            Ok(mut file) => {
                let check = schema::check_file(&file, secret_files.store_images());
                diagnostics.extend(check.diagnostics);
                let json = std::mem::take(&mut file.json);
                parsed.push(file);
                let failed = merge::FailedPointers::new(check.failed_pointers);
                let streamed = instances.take();
                merge::merge_file(
                    &mut merged,
                    &parsed,
                    json,
                    streamed,
                    &failed,
                    &mut diagnostics,
                );
                // One file's tree at a time: the typed objects are what stage two needs.
                if let Some(file) = parsed.last_mut() {
                    file.release();
                }
            }
            Err(problems) => {
                merged.incomplete = true;
                diagnostics.extend(problems);
            }
        }
    }
    let (state, semantic_problems) = semantic::check(&parsed, &mut merged, secret_files);
    diagnostics.extend(semantic_problems);
    diagnostic::sort(&mut diagnostics);
    let state = if diagnostics.is_empty() { state } else { None };
    Validation {
        files: names,
        diagnostics,
        state,
    }
}
