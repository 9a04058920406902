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
    "event",
    "rfc3339",
    "run_lock",
    "state_file",
    "unix_time",
    "window",
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
        "reconcile::plan",
        "reconcile::saved",
        "the planner is below saved plans",
    ),
    (
        "reconcile::execute",
        "reconcile::saved",
        "the executor is below saved plans",
    ),
    (
        "reconcile::state",
        "reconcile::saved",
        "the state is below saved plans",
    ),
    (
        "reconcile::cycle",
        "reconcile::saved",
        "saved plans use the cycle, not the other way round",
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
        "reconcile",
        "notify",
        "notifications read what a reconcile did; the core never sends them",
    ),
    (
        "notify",
        "daemon",
        "the daemon sends notifications, not the other way round",
    ),
    (
        "notify",
        "cli",
        "the command line sends notifications, not the other way round",
    ),
    (
        "store",
        "reconcile",
        "the store is below the reconcile core",
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

/// Every path of the crate's that `code` (the file of `module`) uses: the full paths of
/// its `use` trees (nested groups expanded, `crate`/`super`/`self` resolved), every
/// `crate::…` and `super::…` path written inline, and every `name::…` path through a
/// module a `use` brought in under `name` (`use crate::reconcile;` then
/// `reconcile::execute::f()`).
fn paths_in(code: &str, module: &Module, modules: &BTreeSet<Module>) -> Vec<Module> {
    let mut found = Vec::new();
    let mut aliases: BTreeMap<String, Module> = BTreeMap::new();
    for statement in code.split(';') {
        let Some(tree) = use_tree_of(statement) else {
            continue;
        };
        for (path, alias) in expand(tree) {
            let Some(resolved) = absolute(&path, module, modules) else {
                continue;
            };
            if modules.contains(&resolved) {
                let name = alias.unwrap_or_else(|| resolved.last().cloned().unwrap_or_default());
                if name != "_" {
                    aliases.insert(name, resolved.clone());
                }
            }
            found.push(resolved);
        }
    }
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0
            || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if !starts_word || !(chars[i].is_alphabetic() || chars[i] == '_') {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == ':')
        {
            j += 1;
        }
        let text: String = chars[i..j].iter().collect();
        let segments: Vec<String> = text
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if text.contains("::") {
            let first = segments.first().map(String::as_str).unwrap_or("");
            if first == "crate" || first == "super" {
                found.extend(absolute(&segments, module, modules));
            } else if let Some(base) = aliases.get(first) {
                let mut path = base.clone();
                path.extend(segments.iter().skip(1).cloned());
                found.push(path);
            }
        }
        i = j;
    }
    found
}

/// The tree of a `use` statement (`statement` is the text before a `;`), if it is one. It
/// may follow the end of a block or attributes in the same stretch of text.
fn use_tree_of(statement: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(at) = statement[from..].find("use ").map(|i| from + i) {
        let before = statement[..at].trim_end();
        let before = ["pub(crate)", "pub(super)", "pub"]
            .iter()
            .find_map(|v| before.strip_suffix(v))
            .unwrap_or(before)
            .trim_end();
        let boundary = statement[..at]
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace());
        if boundary && (before.is_empty() || before.ends_with(['}', ']', '{'])) {
            return Some(statement[at + 4..].trim());
        }
        from = at + 4;
    }
    None
}

/// A use tree's full paths, each with its `as` alias.
fn expand(tree: &str) -> Vec<(Vec<String>, Option<String>)> {
    let tree = tree.trim();
    // `prefix::{a, b::{c}}` or `{a, b}`: the group at the top level, split on its commas.
    if let Some(open) = tree.find('{') {
        let prefix: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let inner = tree[open + 1..].trim_end().trim_end_matches('}');
        let mut out = Vec::new();
        for member in split_top_level(inner) {
            for (path, alias) in expand(member) {
                let mut full = prefix.clone();
                full.extend(path.into_iter().filter(|p| p != "self"));
                out.push((full, alias));
            }
        }
        return out;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path, Some(alias.trim().to_owned())),
        None => (tree, None),
    };
    let path: Vec<String> = path
        .split("::")
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "*")
        .map(str::to_owned)
        .collect();
    if path.is_empty() {
        return Vec::new();
    }
    vec![(path, alias)]
}

/// `a, b::{c, d}, e` split on the commas outside braces.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// `path` from the crate's root: `crate`, `super` and `self` resolved against `module`; a
/// path that starts at one of `module`'s own children is kept; anything else (another
/// crate, the standard library) is not the crate's and gives `None`.
fn absolute(path: &[String], module: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut segments = path.iter().map(String::as_str).peekable();
    let mut base = module.clone();
    match segments.peek().copied() {
        Some("crate") => {
            segments.next();
            base.clear();
        }
        Some("super") => {
            while segments.peek() == Some(&"super") {
                segments.next();
                base.pop();
            }
        }
        Some("self") => {
            segments.next();
        }
        Some(first) => {
            let mut child = module.clone();
            child.push(first.to_owned());
            if !modules.contains(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(segments.map(str::to_owned));
    Some(base)
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
        let text = std::fs::read_to_string(file).unwrap();
        let used: BTreeSet<Module> = paths_in(&code_of(&text), &module, &modules)
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
    // The real tree is read: known edges are there.
    for (from, to) in [
        ("reconcile::cycle", "reconcile::execute"),
        ("reconcile::cycle", "reconcile::plan"),
        ("reconcile::plan::compose", "reconcile::plan::boot"),
        ("reconcile::execute::state", "reconcile::state"),
        ("daemon", "http_listener"),
    ] {
        assert!(
            edges
                .get(&m(from))
                .is_some_and(|used| used.contains(&m(to))),
            "{from} -> {to} not seen: {:?}",
            edges.get(&m(from))
        );
    }
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
    let code = code_of(concat!(
        "use super::plan::{Action, step::Step};\n",
        "use crate::{reconcile::{cycle::Report, render}, rapi::Operation};\n",
        "use crate::daemon as d;\n",
        "// crate::cli\nlet s = \"crate::cli\";\n",
        "#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n",
        "fn f() { crate::store::x(); d::status::y(); }\n",
    ));
    let module: Module = vec!["reconcile".into(), "execute".into()];
    let modules: BTreeSet<Module> = [
        "reconcile::plan::step",
        "reconcile::plan",
        "reconcile::cycle",
        "reconcile::render",
        "rapi",
        "daemon",
        "daemon::status",
        "store",
        "cli",
    ]
    .iter()
    .map(|m| m.split("::").map(str::to_owned).collect())
    .collect();
    let found: BTreeSet<String> = paths_in(&code, &module, &modules)
        .iter()
        .map(name)
        .collect();
    for want in [
        "reconcile::plan::Action",
        "reconcile::plan::step::Step",
        "reconcile::cycle::Report",
        "reconcile::render",
        "rapi::Operation",
        "daemon",
        "daemon::status::y",
        "store::x",
    ] {
        assert!(found.contains(want), "{want} in {found:?}");
    }
    assert!(!found.iter().any(|p| p.starts_with("cli")), "{found:?}");
}
