//! Bytes → the desired-state loader and validator, as `validate`, the daemon's sources
//! and the pre-receive hook run them, then the renderers that print the diagnostics.
//!
//! A NUL byte (never in a YAML file) splits the input into up to eight files, so that
//! merging across files is reached too. Secret files all hold the same real age header.

#![no_main]

use std::path::Path;

use ganeti_operator::desired::files::{FileProblem, FileRead};
use ganeti_operator::desired::semantic::SecretFiles;
use ganeti_operator::desired::{diagnostic, validate_files};
use libfuzzer_sys::fuzz_target;

const AGE_FILE: &[u8] = include_bytes!("../../desired-state/secrets/calibre-web-env.age");
const MAX_FILES: usize = 8;

struct Secrets;

impl SecretFiles for Secrets {
    fn head(&self, relative: &Path) -> FileRead {
        if relative.extension().is_some_and(|e| e == "age") {
            Ok(AGE_FILE.to_vec())
        } else {
            Err(FileProblem::Missing {
                path: relative.display().to_string(),
            })
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let files: Vec<(String, FileRead)> = data
        .splitn(MAX_FILES, |b| *b == 0)
        .enumerate()
        .map(|(i, bytes)| (format!("f{i}.yaml"), Ok(bytes.to_vec())))
        .collect();
    let validation = validate_files(files, &Secrets);
    assert_eq!(
        validation.diagnostics.is_empty(),
        validation.is_valid(),
        "a state is produced exactly when there are no diagnostics"
    );
    let _ = diagnostic::render_text(&validation.diagnostics);
    let _ = diagnostic::to_json(&validation.diagnostics);
});
