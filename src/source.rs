//! Where the desired state comes from: a directory, or a path inside a git repository at
//! a branch or commit, read with the `git` CLI and no working tree (a bare repository
//! works, and so does a pre-receive hook's quarantined push). Every read ends in a
//! validated snapshot named by its revision.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::desired::semantic::SecretFiles;
use crate::desired::{self, DesiredStateError, Validation};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Dir(#[from] DesiredStateError),
    #[error("git {args}: {detail}")]
    Git { args: String, detail: String },
    #[error("{0}: no *.yaml or *.yml files at this revision")]
    Empty(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(PathBuf),
    Git {
        /// The repository (bare or not).
        repo: PathBuf,
        /// A branch name or any revision git understands.
        rev: String,
        /// The desired-state directory inside the repository; empty for its root.
        path: String,
    },
}

/// A validated read of the desired state.
#[derive(Debug)]
pub struct Snapshot {
    /// The commit for git; a content digest (`dir:<sha256 prefix>`) for a directory.
    pub revision: String,
    pub validation: Validation,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Git { repo, rev, path } => {
                format!(
                    "{}@{rev}:{}",
                    repo.display(),
                    if path.is_empty() { "." } else { path }
                )
            }
        }
    }

    /// Reads and validates. Blocking: it runs `git` or reads files.
    pub fn load(&self) -> Result<Snapshot, SourceError> {
        match self {
            Source::Dir(dir) => {
                let source = desired::DirSource::new(dir);
                let files = source.yaml_files()?;
                let mut digest = sha2::Sha256::new();
                for (name, bytes) in &files {
                    digest.update(name.as_bytes());
                    digest.update([0]);
                    digest.update(bytes);
                    digest.update([0]);
                }
                let revision = format!("dir:{}", &hex::encode(digest.finalize())[..12]);
                let validation = desired::validate_files(files, &source);
                Ok(Snapshot {
                    revision,
                    validation,
                })
            }
            Source::Git { repo, rev, path } => {
                let commit = git(
                    repo,
                    &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
                )?;
                let commit = String::from_utf8_lossy(&commit).trim().to_owned();
                load_commit(repo, &commit, path)
            }
        }
    }
}

/// Reads `path` at `commit`. Used directly by the pre-receive hook.
pub fn load_commit(repo: &Path, commit: &str, path: &str) -> Result<Snapshot, SourceError> {
    let tree = if path.is_empty() {
        commit.to_owned()
    } else {
        format!("{commit}:{path}")
    };
    let listing = git(repo, &["ls-tree", "--name-only", &tree])?;
    let mut names: Vec<String> = String::from_utf8_lossy(&listing)
        .lines()
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .map(str::to_owned)
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(SourceError::Empty(format!("{commit}:{path}")));
    }
    let mut files = Vec::new();
    for name in names {
        let in_repo = join(path, &name);
        let bytes = git(repo, &["cat-file", "blob", &format!("{commit}:{in_repo}")])?;
        files.push((in_repo, bytes));
    }
    let secrets = GitFiles {
        repo,
        commit,
        root: path,
    };
    Ok(Snapshot {
        revision: commit.to_owned(),
        validation: desired::validate_files(files, &secrets),
    })
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let output = crate::child_process::command("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| SourceError::Git {
            args: args.join(" "),
            detail: format!("cannot run git: {e}"),
        })?;
    if !output.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            detail: format!(
                "git {}: {}",
                crate::child_process::describe_exit(output.status),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(output.stdout)
}

/// Secret files as they are in the commit, not on any disk.
struct GitFiles<'a> {
    repo: &'a Path,
    commit: &'a str,
    root: &'a str,
}

impl SecretFiles for GitFiles<'_> {
    fn head(&self, relative: &Path) -> Option<Vec<u8>> {
        let path = join(self.root, &relative.to_string_lossy());
        let mut bytes = git(
            self.repo,
            &["cat-file", "blob", &format!("{}:{path}", self.commit)],
        )
        .ok()?;
        bytes.truncate(64);
        Some(bytes)
    }
}
