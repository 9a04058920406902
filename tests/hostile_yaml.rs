//! Small hostile YAML files on every path that parses YAML (validate's directory, the
//! daemon's directory and git sources, the pre-receive hook's commit, the config file):
//! each must end in a located error, on a small stack, within a memory budget. The memory
//! budget is enforced by this binary's allocator, which refuses to go past it, so an
//! unbounded expansion fails the test instead of exhausting the machine. A binary of its
//! own (not a module of tests/tests.rs): its allocator governs, and its peak counts, the
//! whole process, so no other test may run in it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::git_ok;
use ganeti_operator::config::{ConfigError, Overrides, resolve};
use ganeti_operator::desired::diagnostic::render_text;
use ganeti_operator::source::{Source, load_commit};

const MEMORY_BUDGET: usize = 256 * 1024 * 1024;
/// The daemon parses on runtime threads; this is far below any thread stack it uses.
const SMALL_STACK: usize = 256 * 1024;

struct BudgetedAllocator;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for BudgetedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        if now > MEMORY_BUDGET {
            IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: BudgetedAllocator = BudgetedAllocator;

/// Each hostile input, under 1 MiB, and the words its error must contain.
fn hostile_inputs() -> Vec<(&'static str, String, &'static str)> {
    let deep_block_map: String = (0..1_300)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    // Each level holds ten copies of the one before, in values or inside a mapping key.
    let laughs = |in_keys: bool| {
        let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..12 {
            let copies = vec![format!("*l{}", level - 1); 10].join(", ");
            let value = if in_keys {
                format!("{{? [{copies}] : x}}")
            } else {
                format!("[{copies}]")
            };
            text.push_str(&format!("l{level}: &l{level} {value}\n"));
        }
        text
    };
    let inputs = vec![
        (
            "deep block sequence",
            "- ".repeat(200_000) + "x\n",
            "nests deeper",
        ),
        ("deep block mapping", deep_block_map, "nests deeper"),
        (
            "deep flow sequence",
            "[".repeat(200_000) + &"]".repeat(200_000),
            "nests deeper",
        ),
        (
            "deep flow mapping",
            "{a: ".repeat(100_000) + &"}".repeat(100_000),
            "nests deeper",
        ),
        ("aliases in values", laughs(false), "aliases"),
        // Thirty anchors nested over one long list: each keeps a copy, no alias needed.
        (
            "nested anchors",
            format!(
                "x: {}[{}]{}\n",
                (0..30).map(|i| format!("&a{i} [")).collect::<String>(),
                vec!["a"; 400_000].join(","),
                "]".repeat(30)
            ),
            "anchors",
        ),
        ("aliases in keys", laughs(true), "cannot be a mapping key"),
    ];
    for (name, text, _) in &inputs {
        assert!(text.len() < 1024 * 1024, "{name} is {} bytes", text.len());
    }
    inputs
}

/// Runs `check` on a thread with a small stack; a stack overflow aborts the test binary.
fn on_small_stack(check: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(check)
        .expect("thread starts")
        .join()
        .expect("the check passed");
}

fn assert_located(what: &str, text: &str, file: &str, words: &str) {
    let shown: String = text.chars().take(2_000).collect();
    assert!(
        text.len() < 64 * 1024,
        "{what}: {} bytes of errors:\n{shown}",
        text.len()
    );
    assert!(
        text.contains(words),
        "{what}: expected `{words}` in\n{shown}"
    );
    let location = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .unwrap_or_else(|| panic!("{what}: no location in\n{shown}"));
    assert!(
        location.starts_with(file),
        "{what}: {location} is not in {file}"
    );
    let mut parts = location.rsplitn(3, ':');
    for part in ["column", "line"] {
        let n: usize = parts.next().and_then(|p| p.parse().ok()).expect(part);
        assert!(n >= 1, "{what}: {part} in {location}");
    }
}

fn check_every_path(name: &'static str, text: String, words: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.yaml"), &text).unwrap();
    let root = dir.path().to_owned();

    let snapshot = Source::Dir(root.clone())
        .load()
        .expect("the directory reads");
    assert!(!snapshot.validation.is_valid(), "{name}: accepted");
    let shown = render_text(&snapshot.validation.diagnostics);
    assert_located(
        name,
        &shown,
        &root.join("state.yaml").display().to_string(),
        words,
    );

    git_ok(&root, &["init", "-q", "-b", "main"]);
    git_ok(&root, &["add", "state.yaml"]);
    git_ok(&root, &["commit", "-q", "-m", "hostile"]);
    let source = Source::Git {
        repo: root.clone(),
        rev: "main".into(),
        path: String::new(),
    };
    let snapshot = source.load().expect("the commit reads");
    let shown = render_text(&snapshot.validation.diagnostics);
    assert_located(name, &shown, "state.yaml", words);
    let snapshot = load_commit(&root, "main", "").expect("the hook reads the commit");
    assert!(
        !snapshot.validation.is_valid(),
        "{name}: the hook accepted it"
    );

    let overrides = Overrides {
        config_file: Some(root.join("state.yaml")),
        ..Overrides::default()
    };
    match resolve(&overrides, None) {
        Err(ConfigError::Invalid(shown)) => assert_located(
            name,
            &shown,
            &root.join("state.yaml").display().to_string(),
            words,
        ),
        other => panic!("{name}: the config file gave {other:?}"),
    }
}

#[test]
fn hostile_yaml_ends_in_a_located_error_on_every_path_with_bounded_stack_and_memory() {
    for (name, text, words) in hostile_inputs() {
        PEAK.store(IN_USE.load(Ordering::SeqCst), Ordering::SeqCst);
        on_small_stack(move || check_every_path(name, text, words));
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(peak < MEMORY_BUDGET, "{name}: peak {peak} bytes");
    }
}
