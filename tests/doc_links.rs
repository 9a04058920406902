//! Every relative link in README.md and under docs/ (markdown links, and the book's
//! SUMMARY.md entries) resolves to a file of the repository, and every `#anchor` to a
//! heading of the markdown file it names; every chapter under docs/src is in SUMMARY.md.
//! Needs no sandbox.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::project_root;

#[derive(Debug, thiserror::Error, PartialEq)]
enum LinkError {
    #[error("{file}:{line}: `{target}`: no such file {resolved}")]
    NoFile {
        file: String,
        line: usize,
        target: String,
        resolved: String,
    },
    #[error("{file}:{line}: `{target}`: no heading `{anchor}` in it")]
    NoAnchor {
        file: String,
        line: usize,
        target: String,
        anchor: String,
    },
}

/// A link as written: its target and the line it is on (1-based).
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// The lines of `markdown` outside fenced code blocks (those are blanked, so links and
/// headings in examples count for nothing).
fn prose_lines(markdown: &str) -> Vec<String> {
    // The open fence's character and length: it closes with at least as many of them.
    let mut fence: Option<(char, usize)> = None;
    markdown
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let mark = trimmed.chars().next().unwrap_or(' ');
            let run = trimmed.chars().take_while(|c| *c == mark).count();
            match fence {
                Some((open, len)) => {
                    if mark == open && run >= len && trimmed[run..].trim().is_empty() {
                        fence = None;
                    }
                    String::new()
                }
                None if (mark == '`' || mark == '~') && run >= 3 => {
                    fence = Some((mark, run));
                    String::new()
                }
                None => line.to_owned(),
            }
        })
        .collect()
}

/// `line` with its inline code spans removed (`[a](b)` in backticks is no link).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    for (index, part) in line.split('`').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// Inline links and images `[text](target "title")`, and reference definitions
/// `[id]: target`.
fn links(markdown: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (index, line) in prose_lines(markdown).iter().enumerate() {
        let line = without_code_spans(line);
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((_, rest)) = trimmed.split_once("]: ")
        {
            found.push(Link {
                line: index + 1,
                target: rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            });
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or_default();
            found.push(Link {
                line: index + 1,
                target: target.trim_matches(['<', '>']).to_owned(),
            });
            rest = &after[end..];
        }
    }
    found
}

/// The anchors of `markdown`'s headings, as GitHub and mdBook make them: lower case,
/// punctuation dropped, spaces to `-`, a repeated one suffixed `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(markdown) {
        let Some(text) = line.strip_prefix('#') else {
            continue;
        };
        let text = text.trim_start_matches('#');
        if !text.starts_with(' ') {
            continue;
        }
        let slug: String = text
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// Every broken link of the markdown file `file` (shown as `shown`).
fn check_file(file: &Path, shown: &str) -> Vec<LinkError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    for link in links(&text) {
        if link.target.is_empty() || is_external(&link.target) {
            continue;
        }
        let (path, anchor) = match link.target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (link.target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_owned()
        } else {
            dir.join(path)
        };
        if !resolved.exists() {
            errors.push(LinkError::NoFile {
                file: shown.to_owned(),
                line: link.line,
                target: link.target.clone(),
                resolved: resolved.display().to_string(),
            });
            continue;
        }
        let Some(anchor) = anchor.filter(|_| resolved.extension().is_some_and(|e| e == "md"))
        else {
            continue;
        };
        let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
        if !anchors(&target_text).contains(anchor) {
            errors.push(LinkError::NoAnchor {
                file: shown.to_owned(),
                line: link.line,
                target: link.target.clone(),
                anchor: anchor.to_owned(),
            });
        }
    }
    errors
}

/// README.md and every markdown file under docs/, symbolic links included (the book
/// shows them at their link's place, so their links must resolve from there too).
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut found);
    found
}

#[test]
fn every_relative_link_in_the_readme_and_the_guide_resolves() {
    let root = project_root();
    let files = markdown_files(&root);
    assert!(files.len() > 10, "{files:?}");
    let mut errors = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        errors.extend(check_file(file, &shown));
    }
    let report: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "broken links:\n{}", report.join("\n"));
}

/// mdBook renders only the chapters SUMMARY.md lists: one left out would be a page no
/// reader of the book can reach.
#[test]
fn every_chapter_is_in_the_summary() {
    let src = project_root().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().map(|l| l.target).collect();
    for file in markdown_files(&project_root()) {
        let Ok(relative) = file.strip_prefix(&src) else {
            continue;
        };
        let relative = relative.display().to_string();
        if relative != "SUMMARY.md" {
            assert!(
                listed.contains(&relative),
                "{relative} is not in SUMMARY.md"
            );
        }
    }
}

#[test]
fn links_and_anchors_are_found_outside_code_only() {
    let text = "# Top\n\nSee [a](a.md#x) and `[no](code.md)`.\n\n```sh\n[no](block.md)\n```\n[ref]: b.md\n## The daemon: `run`\n## Top\n";
    let found = links(text);
    assert_eq!(
        found,
        [
            Link {
                line: 3,
                target: "a.md#x".into()
            },
            Link {
                line: 8,
                target: "b.md".into()
            },
        ]
    );
    let anchors = anchors(text);
    assert!(
        anchors.contains("top") && anchors.contains("top-1"),
        "{anchors:?}"
    );
    assert!(anchors.contains("the-daemon-run"), "{anchors:?}");
}

#[test]
fn a_broken_link_and_a_broken_anchor_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.md"), "# B\n").unwrap();
    let a = dir.path().join("a.md");
    std::fs::write(
        &a,
        "[ok](b.md#b)\n[gone](c.md)\n[bad](b.md#nope)\n[web](https://x.org/y)\n",
    )
    .unwrap();
    let errors = check_file(&a, "a.md");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0]
            .to_string()
            .starts_with("a.md:2: `c.md`: no such file"),
        "{}",
        errors[0]
    );
    assert_eq!(
        errors[1].to_string(),
        "a.md:3: `b.md#nope`: no heading `nope` in it"
    );
}
