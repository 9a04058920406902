//! The layers point one way: leaves ← state ← plan ← execute ← cycle ← daemon/cli. This
//! test reads the module paths under `src/` (`use` lines and paths written inline, not
//! comments, not test modules) and fails on an upward import or an import cycle inside
//! `src/reconcile/` other than between a module and its own children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, such as `["reconcile", "plan", "boot"]`.
type Module = Vec<String>;

/// Modules that sit under everything else: they may import no module of the operator's
/// except other leaves and the desired-state model.
const LEAVES: &[&str] = &[
    "atomic_file",
    "backoff",
    "child_process",
    "deadline",
    "run_lock",
    "state_file",
    "unix_time",
];

/// (importer prefix, imported prefix, why): no module under the first may use one under
/// the second.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "reconcile::state",
        "reconcile::plan",
        "the state is below the planner",
    ),
    (
        "reconcile::state",
        "reconcile::execute",
        "the state is below the executor",
    ),
    (
        "reconcile::state",
        "reconcile::cycle",
        "the state is below the cycle",
    ),
    (
        "reconcile::state",
        "reconcile::render",
        "the state is below rendering",
    ),
    (
        "reconcile::plan",
        "reconcile::execute",
        "the planner is below the executor",
    ),
    (
        "reconcile::plan",
        "reconcile::cycle",
        "the planner is below the cycle",
    ),
    (
        "reconcile::plan",
        "reconcile::render",
        "the planner is below rendering",
    ),
    (
        "reconcile::execute",
        "reconcile::render",
        "the executor does not render",
    ),
    (
        "reconcile::execute",
        "reconcile::cycle",
        "the executor is below the cycle",
    ),
    (
        "reconcile",
        "daemon",
        "the reconcile core is below the daemon",
    ),
    (
        "reconcile",
        "cli",
        "the reconcile core is below the command line",
    ),
    (
        "secrets",
        "reconcile",
        "secrets are below the reconcile core",
    ),
];

/// Sub-planners: one concern each. None uses another; `plan::compose` combines their
/// parts, and the model (`plan` itself, `plan::model`) and the facts are shared by all.
const SUB_PLANNERS: &[&str] = &[
    "boot",
    "freeze",
    "instances",
    "node_upgrade",
    "nodes",
    "prune",
    "rotation",
    "secrets",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a source file defines.
fn module_of(file: &Path) -> Module {
    let relative = file.strip_prefix(src()).unwrap();
    let mut parts: Module = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// Test-only files: they may reach across layers to build their inputs.
fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name.ends_with("tests.rs")
        || file
            .components()
            .any(|c| c.as_os_str().to_string_lossy().ends_with("_tests"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
            out.push(path);
        }
    }
}

/// The code of a file without comments, strings' contents, and its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let code = strip_strings(line.split("//").next().unwrap_or(""));
        let opens = code.matches('{').count() as i32;
        let closes = code.matches('}').count() as i32;
        if pending_test && skip_depth.is_none() {
            pending_test = false;
            if trimmed.starts_with("mod ") && code.contains('{') {
                skip_depth = Some(depth);
            }
        }
        depth += opens - closes;
        match skip_depth {
            Some(d) if depth <= d => skip_depth = None,
            Some(_) => {}
            None => {
                out.push_str(&code);
                out.push('\n');
            }
        }
    }
    out
}

fn strip_strings(line: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                out.push('"');
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// Every `crate::…` and `super::…` path in `code`, resolved against `module` (whose file
/// is a `mod.rs` when `is_dir`), and the names `use`d from a brace group after one.
fn paths_in(code: &str, module: &Module, is_dir: bool) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if starts_word && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':')
            {
                j += 1;
            }
            let text: String = bytes[i..j].iter().collect();
            let mut base = module.clone();
            if !is_dir {
                // A file module's `super` is its parent; a mod.rs's `super` too.
            }
            let mut parts = text.split("::").filter(|p| !p.is_empty()).peekable();
            if parts.peek() == Some(&"crate") {
                parts.next();
                base.clear();
            }
            while parts.peek() == Some(&"super") {
                parts.next();
                base.pop();
            }
            let mut path = base;
            path.extend(parts.map(str::to_owned));
            // `use super::{a, b}`: each name is a path of its own.
            if text.ends_with("::") && bytes.get(j) == Some(&'{') {
                let close = bytes[j..]
                    .iter()
                    .position(|c| *c == '}')
                    .map_or(bytes.len(), |p| j + p);
                let group: String = bytes[j + 1..close].iter().collect();
                for name in group.split(',') {
                    let first = name.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" {
                        let mut each = path.clone();
                        each.push(first.to_owned());
                        found.push(each);
                    }
                }
            }
            found.push(path);
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// The longest prefix of `path` that is a module with a file.
fn resolve(path: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

fn under(module: &Module, prefix: &str) -> bool {
    let prefix: Vec<&str> = prefix.split("::").collect();
    module.len() >= prefix.len() && module.iter().zip(&prefix).all(|(a, b)| a == b)
}

fn name(module: &Module) -> String {
    module.join("::")
}

/// Module → the modules it uses (other than itself), from the source tree.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let is_dir = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).unwrap();
        let used: BTreeSet<Module> = paths_in(&code_of(&text), &module, is_dir)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|m| *m != module)
            .collect();
        edges.insert(module, used);
    }
    edges
}

/// Why the graph breaks the rules, one line each.
fn violations(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let mut found = Vec::new();
    for (from, used) in edges {
        for to in used {
            for (a, b, why) in FORBIDDEN {
                if under(from, a) && under(to, b) {
                    found.push(format!("{} uses {}: {why}", name(from), name(to)));
                }
            }
            let leaf = |m: &Module| LEAVES.iter().any(|l| under(m, l));
            if leaf(from) && !leaf(to) && !under(to, "desired::model") {
                found.push(format!(
                    "{} uses {}: a leaf imports only other leaves",
                    name(from),
                    name(to)
                ));
            }
            let planner = |m: &Module| {
                SUB_PLANNERS
                    .iter()
                    .find(|p| under(m, &format!("reconcile::plan::{p}")))
            };
            if let (Some(a), Some(b)) = (planner(from), planner(to))
                && a != b
            {
                found.push(format!(
                    "{} uses {}: one sub-planner never uses another; plan::compose combines them",
                    name(from),
                    name(to)
                ));
            }
        }
    }
    found.extend(cycles(edges));
    found
}

/// Cycles among modules under `reconcile`, ignoring edges between a module and its own
/// ancestors or descendants.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let related = |a: &Module, b: &Module| a.starts_with(b) || b.starts_with(a);
    let inside: BTreeMap<&Module, Vec<&Module>> = edges
        .iter()
        .filter(|(m, _)| under(m, "reconcile"))
        .map(|(m, used)| {
            let next = used
                .iter()
                .filter(|t| under(t, "reconcile") && !related(m, t))
                .collect();
            (m, next)
        })
        .collect();
    // Depth-first search for a back edge; each cycle found is reported once by its path.
    let mut found = Vec::new();
    let mut done: BTreeSet<&Module> = BTreeSet::new();
    for start in inside.keys() {
        let mut stack: Vec<(&Module, usize)> = vec![(start, 0)];
        let mut on_path: Vec<&Module> = vec![start];
        while let Some((node, index)) = stack.pop() {
            let next = inside.get(node).map_or(&[][..], |v| &v[..]);
            if let Some(child) = next.get(index) {
                stack.push((node, index + 1));
                if let Some(at) = on_path.iter().position(|m| m == child) {
                    let cycle: Vec<String> = on_path[at..]
                        .iter()
                        .chain(std::iter::once(child))
                        .map(|m| name(m))
                        .collect();
                    found.push(format!("import cycle: {}", cycle.join(" -> ")));
                } else if !done.contains(child) {
                    stack.push((child, 0));
                    on_path.push(child);
                }
            } else {
                done.insert(node);
                on_path.pop();
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn layers_point_one_way_and_reconcile_has_no_import_cycle() {
    let problems = violations(&graph());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_a_sub_planner_edge_and_a_cycle() {
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Module>();
    let mut edges = graph();
    edges
        .entry(m("reconcile::state"))
        .or_default()
        .insert(m("reconcile::execute"));
    edges.entry(m("unix_time")).or_default().insert(m("config"));
    edges
        .entry(m("reconcile::observe"))
        .or_default()
        .insert(m("reconcile::cycle"));
    edges
        .entry(m("reconcile::plan::boot"))
        .or_default()
        .insert(m("reconcile::plan::rotation::host"));
    let problems = violations(&edges).join("\n");
    assert!(
        problems.contains("reconcile::state uses reconcile::execute"),
        "{problems}"
    );
    assert!(
        problems.contains("reconcile::plan::boot uses reconcile::plan::rotation::host"),
        "{problems}"
    );
    assert!(problems.contains("unix_time uses config"), "{problems}");
    assert!(problems.contains("import cycle"), "{problems}");
}

#[test]
fn paths_are_read_from_code_not_comments_strings_or_test_modules() {
    let code = code_of(
        "use super::plan::{Action, step::Step};\n// crate::cli\nlet s = \"crate::daemon\";\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\nfn f() { crate::store::x(); }\n",
    );
    let module: Module = vec!["reconcile".into(), "execute".into()];
    let found: BTreeSet<String> = paths_in(&code, &module, false).iter().map(name).collect();
    assert!(found.contains("reconcile::plan::Action"), "{found:?}");
    assert!(found.contains("reconcile::plan::step"), "{found:?}");
    assert!(found.contains("store::x"), "{found:?}");
    assert!(
        !found
            .iter()
            .any(|p| p.starts_with("cli") || p.starts_with("daemon")),
        "{found:?}"
    );
}
