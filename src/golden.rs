//! The library's tests compare rendered output with files under `tests/golden/`;
//! `UPDATE_GOLDEN=1` rewrites them instead (never under CI, where a golden that would
//! change is a failure).

use std::path::PathBuf;

/// Compares `text` with `tests/golden/<relative>`.
#[track_caller]
pub(crate) fn assert_golden(relative: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(relative);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        assert!(std::env::var_os("CI").is_none(), "UPDATE_GOLDEN under CI");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        text,
        want,
        "golden {}; UPDATE_GOLDEN=1 rewrites it",
        path.display()
    );
}
