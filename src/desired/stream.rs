//! Instances checked and typed one at a time while their file is read. A file's JSON
//! used to hold all of its instances until the file was checked and merged: at 100,000
//! instances that is megabytes per file, built, walked twice and freed after it had left
//! the cache. Each entry is now checked against the instance schema, typed and freed as
//! soon as its mapping closes, while it is still in the cache.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use super::raw::RawInstance;
use super::schema;
use super::yaml::{EntrySink, Stream};

/// The section whose entries are streamed.
pub const SECTION: &str = "instances";

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    schema::entry_validator(SECTION).expect("the generated schema has an instances section")
});

/// The instances of one file that passed the schema on their own and were typed, in the
/// order they were read.
#[derive(Default)]
pub struct InstanceStream {
    taken: Vec<(String, Box<RawInstance>)>,
}

impl InstanceStream {
    /// A stream into this sink, for one file.
    pub fn stream(&mut self) -> Stream<'_> {
        Stream {
            section: SECTION,
            sink: self,
        }
    }

    /// What the last file's load took, leaving the sink empty for the next file.
    pub fn take(&mut self) -> Vec<(String, Box<RawInstance>)> {
        std::mem::take(&mut self.taken)
    }
}

impl EntrySink for InstanceStream {
    /// An entry with any schema error, or one that does not type (which the schema should
    /// have caught), is given back: the document's own check and merge then report it
    /// exactly as they report every other error. Only a valid entry is taken, and an
    /// entry is valid alone exactly when it is valid in the document, because the schema
    /// checks each entry of the section by itself (`additionalProperties`).
    fn offer(&mut self, name: &str, value: Value) -> Option<Value> {
        if !VALIDATOR.is_valid(&value) {
            return Some(value);
        }
        match Box::<RawInstance>::deserialize(&value) {
            Ok(raw) => {
                drop(value);
                self.taken.push((name.to_owned(), raw));
                None
            }
            Err(_) => Some(value),
        }
    }

    fn discard(&mut self) {
        self.taken.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate_files;
    use crate::reconcile::plan::tests::NoSecrets;

    /// Each diagnostic as `line:column path: message`.
    fn diagnostics(text: &str) -> Vec<String> {
        let files = vec![("s.yaml".to_owned(), Ok(text.as_bytes().to_vec()))];
        validate_files(files, &NoSecrets)
            .diagnostics
            .iter()
            .map(|d| {
                let at = d.site.span.start;
                format!("{}:{} {}: {}", at.line, at.column, d.path, d.message)
            })
            .collect()
    }

    const HEAD: &str = "cluster: {name: c.example.org, hypervisor: kvm, defaultDiskTemplate: plain}\n\
        classes:\n  web: {image: sha256-0123000000000000000000000000000000000000000000000000000000000000, os: pxe+default, resources: {memory: 1G, disks: [{size: 10G}]}}\n";

    #[test]
    fn streamed_and_given_back_instances_are_reported_where_they_are_written() {
        let text = format!(
            "{HEAD}instances:\n  a.example.org: {{class: nosuch}}\n  b.example.org: {{class: web, memory: 1G}}\n  c.example.org:\n    class: web\n    primaryNode: n.example.org\n"
        );
        assert_eq!(
            diagnostics(&text),
            [
                r#"5:26 instances["a.example.org"].class: unknown class `nosuch`"#,
                r#"6:31 instances["b.example.org"].memory: unknown field `memory`"#,
                r#"9:18 instances["c.example.org"].primaryNode: unknown node `n.example.org`"#,
            ]
        );
    }

    #[test]
    fn a_document_that_fails_the_schema_fails_its_streamed_instances_too() {
        // As before streaming: under a failed document nothing is checked further, so an
        // unknown class is not a second, follow-on error.
        let text =
            format!("{HEAD}instances:\n  a.example.org: {{class: nosuch}}\ninstance: {{}}\n");
        assert_eq!(
            diagnostics(&text),
            ["6:1 instance: unknown field `instance`"]
        );
    }
}
