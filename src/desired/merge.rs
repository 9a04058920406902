//! Merges the files of a desired state into one set of raw objects. An object defined
//! twice is an error naming both places; an object whose YAML failed the schema is kept
//! by name only, so references to it do not cause a second, misleading error.

use std::collections::btree_map::Entry as Slot;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::raw::{
    RawClass, RawCluster, RawInstance, RawNode, RawNotifications, RawPolicy, RawSecret,
};
use super::source::{ParsedFile, Target};

/// Where an object was written: a file (index into the parsed files) and a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    pub pointer: String,
}

#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub origin: Origin,
    /// `None` when the object failed the schema; its errors are already reported.
    /// Boxed: the maps of entries then hold small slots, not whole objects with slack.
    pub raw: Option<Box<T>>,
}

#[derive(Debug, Default)]
pub struct Merged {
    pub cluster: Option<Entry<RawCluster>>,
    pub policy: Option<Entry<RawPolicy>>,
    pub classes: BTreeMap<String, Entry<RawClass>>,
    pub nodes: BTreeMap<String, Entry<RawNode>>,
    pub instances: BTreeMap<String, Entry<RawInstance>>,
    pub secrets: BTreeMap<String, Entry<RawSecret>>,
    pub notifications: Option<Entry<RawNotifications>>,
    /// Some file or section could not be read at all, so names may be missing.
    pub incomplete: bool,
}

/// The pointers stage one rejected in a file, for range queries.
pub struct FailedPointers(BTreeSet<String>);

impl FailedPointers {
    pub fn new(pointers: impl IntoIterator<Item = String>) -> Self {
        FailedPointers(pointers.into_iter().collect())
    }

    /// `pointer` itself or something inside it failed. Children sort from `pointer/` up to
    /// `pointer0` ('0' follows '/'), so this is one range query, not a scan.
    fn at_or_below(&self, pointer: &str) -> bool {
        self.0.contains(pointer)
            || self
                .0
                .range(format!("{pointer}/")..format!("{pointer}0"))
                .next()
                .is_some()
    }

    /// `pointer` or one of its ancestors (the document itself included) failed.
    fn at_or_above(&self, pointer: &str) -> bool {
        let mut ancestor = pointer;
        loop {
            if self.0.contains(ancestor) {
                return true;
            }
            match ancestor.rfind('/') {
                Some(cut) => ancestor = &ancestor[..cut],
                None => return false,
            }
        }
    }
}

/// Merges the last of `files` (those before it are merged already) into `merged`. `json`
/// is that file's document, taken out of it: each entry is dropped as soon as it is
/// typed, while its memory is still in the cache and can serve the next entry's
/// allocations. Freeing a whole document at once afterwards cost half as much as
/// building it, and more per entry the larger the file (a cold walk over it, and
/// glibc coalescing its many small chunks).
/// `streamed` are the file's instances that were typed while it was read (see `stream`);
/// its JSON holds only the others.
pub fn merge_file(
    merged: &mut Merged,
    files: &[ParsedFile],
    json: Value,
    streamed: Vec<(String, Box<RawInstance>)>,
    failed: &FailedPointers,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(index) = files.len().checked_sub(1) else {
        return;
    };
    let Value::Object(mut document) = json else {
        merged.incomplete = true;
        return;
    };
    let mut ctx = SectionMerge {
        files,
        failed,
        index,
        diagnostics,
        incomplete: &mut merged.incomplete,
    };
    let mut section = |name| document.remove(name);
    ctx.single("cluster", section("cluster"), &mut merged.cluster);
    ctx.single("policy", section("policy"), &mut merged.policy);
    ctx.named("classes", section("classes"), &mut merged.classes);
    ctx.named("nodes", section("nodes"), &mut merged.nodes);
    ctx.named("instances", section("instances"), &mut merged.instances);
    ctx.streamed("instances", streamed, &mut merged.instances);
    ctx.named("secrets", section("secrets"), &mut merged.secrets);
    ctx.single(
        "notifications",
        section("notifications"),
        &mut merged.notifications,
    );
}

struct SectionMerge<'a> {
    files: &'a [ParsedFile],
    failed: &'a FailedPointers,
    index: usize,
    diagnostics: &'a mut Vec<Diagnostic>,
    incomplete: &'a mut bool,
}

impl<'a> SectionMerge<'a> {
    fn current(&self) -> &'a ParsedFile {
        let files = self.files;
        &files[self.index]
    }

    fn single<T: DeserializeOwned>(
        &mut self,
        section: &str,
        value: Option<Value>,
        slot: &mut Option<Entry<T>>,
    ) {
        let Some(value) = value else {
            return;
        };
        let pointer = format!("/{section}");
        if let Some(first) = slot {
            let first_site = self.files[first.origin.file].site(&first.origin.pointer, Target::Key);
            let d = Diagnostic::new(
                self.current().site(&pointer, Target::Key),
                section,
                format!("`{section}` is defined in more than one file"),
            )
            .related(first_site, "first defined")
            .hint(format!("keep a single `{section}` section"));
            self.diagnostics.push(d);
            return;
        }
        let raw = self.typed(&value, &pointer);
        *slot = Some(Entry {
            origin: Origin {
                file: self.index,
                pointer,
            },
            raw,
        });
    }

    fn named<T: DeserializeOwned>(
        &mut self,
        section: &str,
        value: Option<Value>,
        out: &mut BTreeMap<String, Entry<T>>,
    ) {
        let Some(value) = value else {
            return;
        };
        let Value::Object(entries) = value else {
            *self.incomplete = true;
            return;
        };
        for (name, value) in entries {
            self.insert(section, name, out, |ctx, pointer| {
                let raw = ctx.typed(&value, pointer);
                drop(value);
                raw
            });
        }
    }

    /// Entries typed as they were read: each passed the schema on its own, so only the
    /// document around it (an unknown top-level key) can still have failed it.
    fn streamed<T>(
        &mut self,
        section: &str,
        entries: Vec<(String, Box<T>)>,
        out: &mut BTreeMap<String, Entry<T>>,
    ) {
        for (name, raw) in entries {
            self.insert(section, name, out, |ctx, pointer| {
                (!ctx.failed.at_or_above(pointer)).then_some(raw)
            });
        }
    }

    /// Adds entry `name`, typed by `raw` (given its pointer), unless another file has it.
    fn insert<T>(
        &mut self,
        section: &str,
        name: String,
        out: &mut BTreeMap<String, Entry<T>>,
        raw: impl FnOnce(&mut Self, &str) -> Option<Box<T>>,
    ) {
        // One search of the map, not a lookup and then an insert.
        let slot = match out.entry(name) {
            Slot::Vacant(slot) => slot,
            Slot::Occupied(first) => {
                let (name, first) = (first.key(), first.get());
                let pointer = pointer_to(section, name);
                let first_site =
                    self.files[first.origin.file].site(&first.origin.pointer, Target::Key);
                let file = self.current();
                let d = Diagnostic::new(
                    file.site(&pointer, Target::Key),
                    &file.yaml_path(&pointer),
                    format!("{} `{name}` is defined twice", singular(section)),
                )
                .related(first_site, "first defined")
                .hint("names must be unique across all files; rename or remove one");
                self.diagnostics.push(d);
                return;
            }
        };
        let pointer = pointer_to(section, slot.key());
        let raw = raw(self, &pointer);
        slot.insert(Entry {
            origin: Origin {
                file: self.index,
                pointer,
            },
            raw,
        });
    }

    fn typed<T: DeserializeOwned>(&mut self, value: &Value, pointer: &str) -> Option<T> {
        if self.failed.at_or_below(pointer) || self.failed.at_or_above(pointer) {
            return None;
        }
        // Tracking the path allocates for every key on the way; only a failure needs it,
        // so the (rare) failure is deserialized again with tracking, for the same error.
        if let Ok(raw) = T::deserialize(value) {
            return Some(raw);
        }
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(raw) => Some(raw),
            Err(e) => {
                // The schema should have caught this; report it rather than lose it.
                let inner = e.path().iter().map(|s| format!("/{s}")).collect::<String>();
                let full = format!("{pointer}{inner}");
                let file = self.current();
                let d = Diagnostic::new(
                    file.site(&full, Target::Value),
                    &file.yaml_path(&full),
                    e.inner().to_string(),
                );
                self.diagnostics.push(d);
                None
            }
        }
    }
}

/// The JSON pointer of entry `name` of `section`, escaped (RFC 6901) only when it must be.
fn pointer_to(section: &str, name: &str) -> String {
    if name.contains(['~', '/']) {
        format!("/{section}/{}", name.replace('~', "~0").replace('/', "~1"))
    } else {
        format!("/{section}/{name}")
    }
}

pub fn singular(section: &str) -> &str {
    match section {
        "classes" => "class",
        "nodes" => "node",
        "instances" => "instance",
        "secrets" => "secret",
        other => other,
    }
}
