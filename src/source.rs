//! Where the desired state comes from: a directory, or a path inside a git repository at
//! a branch or commit, read with the `git` CLI and no working tree (a bare repository
//! works, and so does a pre-receive hook's quarantined push). Every read ends in a
//! validated snapshot named by its revision.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::desired::files::{FileProblem, FileRead, is_desired_state_name};
use crate::desired::semantic::SecretFiles;
use crate::desired::{self, DesiredStateError, Validation, yaml};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Dir(#[from] DesiredStateError),
    #[error("git {args}: {detail}")]
    Git { args: String, detail: String },
    #[error("{0}: no *.yaml or *.yml files at this revision")]
    Empty(String),
    #[error("the repository {repo} has no commits yet: push a desired state to its branch `{rev}`")]
    NoCommits { repo: PathBuf, rev: String },
    #[error("the repository {repo} has no branch or commit `{rev}` (--git-branch)")]
    NoRevision { repo: PathBuf, rev: String },
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
                let revision = dir_revision(&files);
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
                )
                .map_err(|e| missing_revision(repo, rev).unwrap_or(e))?;
                let commit = String::from_utf8_lossy(&commit).trim().to_owned();
                load_commit(repo, &commit, path)
            }
        }
    }
}

/// A directory's revision: `dir:` and a SHA-256 prefix over its desired-state files'
/// names and bytes, in path order. The same files give the same revision wherever they
/// are, so a saved plan can tell whether the desired state it was made from changed.
pub fn dir_revision(files: &[(String, FileRead)]) -> String {
    let mut digest = sha2::Sha256::new();
    for (name, read) in files {
        digest.update(name.as_bytes());
        digest.update([0]);
        match read {
            Ok(bytes) => digest.update(bytes),
            Err(problem) => digest.update(problem.to_string()),
        }
        digest.update([0]);
    }
    format!("dir:{}", &hex::encode(digest.finalize())[..12])
}

/// Why `rev` does not resolve, in words, where git can say: the repository is new and
/// empty, or has no such branch. `None` keeps git's own error.
fn missing_revision(repo: &Path, rev: &str) -> Option<SourceError> {
    let refs = git(repo, &["for-each-ref", "--count=1", "--format=%(refname)"]).ok()?;
    let (repo, rev) = (repo.to_owned(), rev.to_owned());
    Some(if refs.iter().all(u8::is_ascii_whitespace) {
        SourceError::NoCommits { repo, rev }
    } else {
        SourceError::NoRevision { repo, rev }
    })
}

/// The commits `tip` brings that no ref of `repo` reaches yet, oldest first: what a push
/// adds, as the pre-receive hook sees it (the refs are not updated yet). Empty when every
/// commit is known already (a branch moved to an existing commit).
pub fn new_commits(repo: &Path, tip: &str) -> Result<Vec<String>, SourceError> {
    if tip.starts_with('-') {
        return Err(SourceError::Git {
            args: format!("rev-list {tip}"),
            detail: "a revision cannot start with '-'".into(),
        });
    }
    let listed = git(repo, &["rev-list", "--reverse", tip, "--not", "--all"])?;
    Ok(String::from_utf8_lossy(&listed)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Reads `path` at `commit`. Used directly by the pre-receive hook.
pub fn load_commit(repo: &Path, commit: &str, path: &str) -> Result<Snapshot, SourceError> {
    let tree = GitTree {
        repo,
        commit,
        root: path.trim_end_matches('/'),
    };
    let listing = if tree.root.is_empty() {
        commit.to_owned()
    } else {
        format!("{commit}:{}", tree.root)
    };
    let mut entries: Vec<TreeEntry> = ls_tree(repo, &listing, None)?
        .into_iter()
        .filter(|e| is_desired_state_name(&e.name))
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if entries.is_empty() {
        return Err(SourceError::Empty(format!("{commit}:{path}")));
    }
    let max = yaml::LIMITS.max_file_bytes;
    let files = entries
        .into_iter()
        .map(|entry| {
            let in_repo = join(tree.root, &entry.name);
            let read = tree.read_entry(entry, &in_repo, &in_repo, max, false);
            (in_repo, read)
        })
        .collect();
    Ok(Snapshot {
        revision: commit.to_owned(),
        validation: desired::validate_files(files, &tree),
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

/// The desired-state directory as it is in a commit, not on any disk. Files are read by
/// the same rule as in a directory (see `desired::files`): a symbolic link (mode 120000)
/// is followed only to a regular file inside `root`; a tree or a submodule is an error.
struct GitTree<'a> {
    repo: &'a Path,
    commit: &'a str,
    root: &'a str,
}

/// Links followed before giving up, as Linux does (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

impl GitTree<'_> {
    /// A path git does not find may run through a symbolic link to a directory; say so,
    /// as a directory source does.
    fn why_missing(&self, in_repo: &str, shown: &str) -> FileProblem {
        let mut prefix = String::new();
        for part in in_repo.split('/') {
            prefix = join(&prefix, part);
            let Ok(found) = ls_tree(self.repo, self.commit, Some(&prefix)) else {
                break;
            };
            let Some(entry) = found.into_iter().next() else {
                break;
            };
            if entry.mode == "120000" {
                return FileProblem::LinkedDirectory {
                    path: shown.to_owned(),
                    link: prefix
                        .strip_prefix(&format!("{}/", self.root))
                        .unwrap_or(&prefix)
                        .to_owned(),
                };
            }
        }
        FileProblem::Missing {
            path: shown.to_owned(),
        }
    }

    /// Reads `entry`, found at `in_repo`; problems name it as `shown`.
    fn read_entry(
        &self,
        mut entry: TreeEntry,
        in_repo: &str,
        shown: &str,
        max: u64,
        truncate: bool,
    ) -> FileRead {
        let shown = shown.to_owned();
        let unreadable = |e: SourceError| FileProblem::Unreadable {
            path: shown.clone(),
            detail: e.to_string(),
        };
        let mut at = in_repo.to_owned();
        for _ in 0..MAX_LINKS {
            match entry.mode.as_str() {
                "120000" => {
                    let target =
                        git(self.repo, &["cat-file", "blob", &entry.object]).map_err(unreadable)?;
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let escapes = || FileProblem::Escapes {
                        path: shown.clone(),
                        target: target.clone(),
                    };
                    let parent = at.rsplit_once('/').map_or("", |(dir, _)| dir);
                    at = normalize(parent, &target).ok_or_else(escapes)?;
                    if !(self.root.is_empty() || at.starts_with(&format!("{}/", self.root))) {
                        return Err(escapes());
                    }
                    let found = ls_tree(self.repo, self.commit, Some(&at)).map_err(unreadable)?;
                    entry = found
                        .into_iter()
                        .next()
                        .ok_or_else(|| FileProblem::Dangling {
                            path: shown.clone(),
                            target: target.clone(),
                        })?;
                }
                "160000" => {
                    return Err(FileProblem::NotRegular {
                        path: shown,
                        kind: "git submodule",
                    });
                }
                "040000" => return Err(FileProblem::Directory { path: shown }),
                _ => {
                    if entry.size.is_some_and(|size| size > max) && !truncate {
                        return Err(FileProblem::TooLarge { path: shown, max });
                    }
                    let mut bytes =
                        git(self.repo, &["cat-file", "blob", &entry.object]).map_err(unreadable)?;
                    bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
                    return Ok(bytes);
                }
            }
        }
        Err(FileProblem::Unreadable {
            path: shown,
            detail: "too many levels of symbolic links".into(),
        })
    }
}

impl SecretFiles for GitTree<'_> {
    fn head(&self, relative: &Path) -> FileRead {
        let in_repo = join(self.root, &relative.to_string_lossy());
        let shown = relative.display().to_string();
        let unreadable = |e: SourceError| FileProblem::Unreadable {
            path: shown.clone(),
            detail: e.to_string(),
        };
        let found = ls_tree(self.repo, self.commit, Some(&in_repo)).map_err(unreadable)?;
        let Some(entry) = found.into_iter().next() else {
            return Err(self.why_missing(&in_repo, &shown));
        };
        self.read_entry(entry, &in_repo, &shown, desired::SECRET_HEAD_BYTES, true)
    }
}

/// One entry of `git ls-tree -l -z`: `<mode> <type> <object> <size>\t<name>`.
struct TreeEntry {
    mode: String,
    object: String,
    /// `None` for trees and submodules, whose size is `-`.
    size: Option<u64>,
    name: String,
}

/// The entries of `treeish`, or with `path` the one entry at that path (if any).
fn ls_tree(repo: &Path, treeish: &str, path: Option<&str>) -> Result<Vec<TreeEntry>, SourceError> {
    let mut args = vec!["ls-tree", "-l", "-z", "--full-tree", treeish];
    if let Some(path) = path {
        args.extend(["--", path]);
    }
    let listing = git(repo, &args)?;
    Ok(listing
        .split(|b| *b == 0)
        .filter_map(|record| {
            let record = String::from_utf8_lossy(record);
            let (meta, name) = record.split_once('\t')?;
            let mut fields = meta.split_whitespace();
            let mode = fields.next()?.to_owned();
            let _kind = fields.next()?;
            let object = fields.next()?.to_owned();
            let size = fields.next()?.parse().ok();
            Some(TreeEntry {
                mode,
                object,
                size,
                name: name.to_owned(),
            })
        })
        .collect())
}

/// `target` seen from the directory `parent`, with `.` and `..` resolved; `None` if it is
/// absolute or climbs above the repository root.
fn normalize(parent: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    fn load(repo: &Path, rev: &str) -> Result<Snapshot, SourceError> {
        Source::Git {
            repo: repo.to_owned(),
            rev: rev.to_owned(),
            path: "desired-state".to_owned(),
        }
        .load()
    }

    #[test]
    fn a_new_empty_repository_or_a_missing_branch_is_said_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("state.git");
        std::fs::create_dir(&repo).unwrap();
        git_in(&repo, &["init", "--quiet", "--bare"]);
        let error = load(&repo, "main").unwrap_err().to_string();
        assert!(
            error.contains("has no commits yet") && error.contains("`main`"),
            "{error}"
        );

        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git_in(&work, &["init", "--quiet", "--initial-branch=main"]);
        git_in(
            &work,
            &["commit", "--quiet", "--allow-empty", "-m", "first"],
        );
        let error = load(&work, "production").unwrap_err().to_string();
        assert!(
            error.contains("no branch or commit `production`") && error.contains("--git-branch"),
            "{error}"
        );
    }
}
