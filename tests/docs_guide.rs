//! The guide's "Your own cluster" chapter, run: its `sh,tested` blocks, in order, against
//! the sandbox standing in for the reader's cluster (see `common::doc_blocks`). Also the
//! extraction and the runner themselves, on sample chapters, without the sandbox.

use std::path::Path;
use std::time::Duration;

use crate::common::doc_blocks::{self, Block, DocError};
use crate::common::{project_root, sandbox};

const CHAPTER: &str = "docs/src/own-cluster.md";

#[test]
fn tested_blocks_are_extracted_in_order_with_their_lines() {
    let markdown = "# A\n\n```sh,tested\necho one\n```\n\n```sh\nnot run\n```\n\n- item\n\n  ```sh,tested,exit=0|2\n  false \\\n    --flag\n  ```\n```text\nnot shell\n```\n";
    let blocks = doc_blocks::extract(markdown).unwrap();
    assert_eq!(
        blocks,
        [
            Block {
                line: 3,
                code: "echo one\n".into(),
                exit: vec![0]
            },
            Block {
                line: 13,
                code: "false \\\n  --flag\n".into(),
                exit: vec![0, 2]
            },
        ]
    );
}

#[test]
fn malformed_chapters_are_refused() {
    assert_eq!(
        doc_blocks::extract("x\n```sh,tested\necho\n"),
        Err(DocError::Unclosed { line: 2 })
    );
    assert_eq!(
        doc_blocks::extract("```sh,tested,exit=two\necho\n```\n"),
        Err(DocError::BadExit {
            line: 1,
            attribute: "exit=two".into()
        })
    );
    assert_eq!(
        doc_blocks::extract("```sh,tested,exit=2\ntrue\nfalse\n```\n"),
        Err(DocError::ExitNeedsOneCommand { line: 1 })
    );
    assert!(matches!(
        doc_blocks::extract("```text,tested\nx\n```\n"),
        Err(DocError::NotShell { line: 1, .. })
    ));
}

fn run_sample(markdown: &str) -> Result<(), DocError> {
    let dir = tempfile::tempdir().unwrap();
    let blocks = doc_blocks::extract(markdown).unwrap();
    doc_blocks::run(
        "sample.md",
        &blocks,
        dir.path(),
        &[("SAMPLE".into(), "from the test".into())],
        Duration::from_secs(30),
    )
}

/// State carries from block to block (cd, export, files), as for a reader in one shell,
/// and an allowed exit status passes.
#[test]
fn blocks_run_in_order_in_one_shell() {
    let markdown = "```sh,tested\nmkdir sub && cd sub\nexport SEEN=\"$SAMPLE\"\n```\n\n```sh,tested,exit=2\nsh -c 'exit 2'\n```\n\n```sh,tested\ntest \"$SEEN\" = 'from the test'\ntest \"$(basename \"$PWD\")\" = sub\n```\n";
    run_sample(markdown).unwrap();
}

/// A failing command fails the run and names its block's line, with the block's output.
#[test]
fn a_failing_command_names_its_block() {
    let markdown = "# Guide\n\n```sh,tested\necho fine\n```\n\n```sh,tested\necho about to fail\nfalse\necho never\n```\n\n```sh,tested\necho never either\n```\n";
    let err = run_sample(markdown).unwrap_err();
    let DocError::Failed { line, ref tail, .. } = err else {
        panic!("{err}");
    };
    assert_eq!(line, 7, "{err}");
    assert!(
        tail.contains("about to fail") && !tail.contains("never"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("sample.md:7: this block failed (exit 1)"),
        "{err}"
    );

    // A pipeline fails as a whole when any part of it fails, and so does an exit status
    // the block does not allow.
    let err = run_sample("```sh,tested\nfalse | cat\n```\n").unwrap_err();
    assert!(err.to_string().starts_with("sample.md:1:"), "{err}");
    let err = run_sample("```sh,tested,exit=2\ntrue\n```\n").unwrap_err();
    assert!(err.to_string().contains("the guide allows 2"), "{err}");
}

/// A block that outlives the limit is stopped, and named; so is what it started in the
/// background.
#[test]
fn a_hanging_block_is_stopped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = doc_blocks::extract("```sh,tested\nsleep 600 &\nsleep 600\n```\n").unwrap();
    let err = doc_blocks::run(
        "sample.md",
        &blocks,
        dir.path(),
        &[],
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_eq!(
        err,
        DocError::Timeout {
            chapter: "sample.md".into(),
            line: 1,
            seconds: 1
        }
    );
}

/// The chapter itself, against the sandbox: the reader's `$HOME` is an empty directory,
/// the RAPI settings of step 1 are the sandbox's, and `ganeti-operator` is the binary
/// built for these tests. Step 2 sets the fingerprint itself; the sandbox's CA setting
/// is not passed (the runner passes no GANETI_ variable it is not given), since the
/// operator takes exactly one of the two.
#[test]
fn the_own_cluster_chapter_runs_against_the_sandbox() {
    let Some(sandbox) = sandbox::sandbox("the_own_cluster_chapter_runs_against_the_sandbox") else {
        return;
    };
    let text = std::fs::read_to_string(project_root().join(CHAPTER)).unwrap();
    let blocks = doc_blocks::extract(&text).unwrap_or_else(|e| panic!("{CHAPTER}: {e}"));
    assert!(
        blocks.len() >= 8,
        "{CHAPTER} has {} tested blocks",
        blocks.len()
    );
    let home = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_ganeti-operator"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), home.path().display().to_string()),
        ("PATH".into(), path),
        ("NO_COLOR".into(), "1".into()),
        ("GANETI_RAPI_URL".into(), sandbox.url.clone()),
        ("GANETI_RAPI_USER".into(), sandbox.user.clone()),
        (
            "GANETI_RAPI_PASSWORD_FILE".into(),
            sandbox.password_file.display().to_string(),
        ),
    ];
    for identity in ["AUTHOR", "COMMITTER"] {
        env.push((format!("GIT_{identity}_NAME"), "reader".into()));
        env.push((format!("GIT_{identity}_EMAIL"), "reader@example.org".into()));
    }
    let run = doc_blocks::run(
        CHAPTER,
        &blocks,
        home.path(),
        &env,
        Duration::from_secs(600),
    );
    if let Err(e) = run {
        panic!("{e}");
    }
}
