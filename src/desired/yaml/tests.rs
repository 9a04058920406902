use serde_json::json;

use super::*;

fn load_text(text: &str) -> Result<Value, Vec<Diagnostic>> {
    load(&SourceText::new("t.yaml", text)).map(|l| l.root.expect("a document").0)
}

fn errors(text: &str) -> Vec<String> {
    match load_text(text) {
        Ok(value) => panic!("accepted: {value}"),
        Err(ds) => ds
            .iter()
            .map(|d| {
                let at = d.site.span.start;
                format!("{}:{} {}: {}", at.line, at.column, d.path, d.message)
            })
            .collect(),
    }
}

#[test]
fn keys_that_yaml_reads_as_other_types_are_rejected_with_a_hint_to_quote() {
    for key in [
        "1", "0o17", "0x1f", "+42", "TRUE", "false", "~", "null", "1.5", ".inf", "-0",
    ] {
        let text = format!("instances:\n  {key}: {{}}\n");
        let ds = load_text(&text).expect_err(key);
        assert_eq!(ds.len(), 1, "{key}: {ds:?}");
        assert_eq!(ds[0].site.span.start, Position { line: 2, column: 3 });
        assert_eq!(ds[0].path, "instances");
        assert!(
            ds[0].message.contains(&format!("`{key}`")),
            "{key}: {}",
            ds[0].message
        );
        assert_eq!(
            ds[0].hint.as_deref(),
            Some(format!("quote it: \"{key}\":").as_str())
        );
    }
}

#[test]
fn quoted_keys_are_kept_exactly_as_written() {
    let value = load_text("\"0x1f\": 1\n'TRUE': 2\n\"1\": 3\nyes: 4\n").unwrap();
    assert_eq!(value, json!({"0x1f": 1, "TRUE": 2, "1": 3, "yes": 4}));
}

#[test]
fn a_number_key_beside_its_quoted_twin_is_an_error_not_a_lost_entry() {
    assert_eq!(
        errors("a:\n  1: x\n  \"1\": y\n"),
        ["2:3 a: the key `1` is read by YAML as a whole number, not as a name"]
    );
}

#[test]
fn duplicate_keys_name_both_places() {
    let ds = load_text("a:\n  b: 1\n  c: 2\n  b: 3\n").unwrap_err();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].path, "a.b");
    assert_eq!(ds[0].site.span.start, Position { line: 4, column: 3 });
    let (first, note) = ds[0].related.as_ref().expect("the first place");
    assert_eq!(
        (first.span.start, note.as_str()),
        (Position { line: 2, column: 3 }, "first written")
    );
}

#[test]
fn aliases_and_collections_cannot_be_keys() {
    assert_eq!(
        errors("x: &x k\ny:\n  *x : 1\n  [a]: 2\n"),
        [
            "3:3 y: an alias (`*name`) cannot be a mapping key",
            "4:3 y: a mapping or list cannot be a mapping key",
        ]
    );
}

#[test]
fn aliases_still_stand_for_whole_values() {
    let value = load_text("a: &m {memory: 1G}\nb: *m\n").unwrap();
    assert_eq!(value["b"], json!({"memory": "1G"}));
}

#[test]
fn every_limit_ends_the_load_with_a_located_error() {
    let small = Limits {
        max_file_bytes: 1_000,
        max_depth: 4,
        max_nodes: 50,
        max_aliases: 3,
        max_alias_nodes: 10,
        max_anchored_nodes: 12,
    };
    let first = |text: &str| {
        let ds = load_with(&SourceText::new("t.yaml", text), small).unwrap_err();
        let d = ds.last().unwrap().clone();
        let at = d.site.span.start;
        format!("{}:{} {}", at.line, at.column, d.message)
    };
    assert_eq!(
        first(&"x".repeat(1_001)),
        "1:1 the file is 1001 bytes, more than the limit of 1000 bytes"
    );
    assert_eq!(
        first("a:\n b:\n  c:\n   d:\n    e: 1\n"),
        "5:5 the YAML nests deeper than 4 levels"
    );
    assert_eq!(
        first(&format!("[{}]", vec!["1"; 60].join(","))),
        "1:100 the file holds more than 50 YAML values"
    );
    assert_eq!(
        first("a: &a 1\nb: [*a, *a, *a, *a]\n"),
        "2:17 the file uses more than 3 aliases"
    );
    assert_eq!(
        first("a: &a [1, 2, 3, 4, 5, 6]\nb: [*a, *a]\n"),
        "2:9 the aliases in this file expand to more than 10 values"
    );
    // Nested anchors each keep a copy: 4 + 3 + 2 + ... values, never aliased once.
    assert_eq!(
        first(
            "a: &a [&b [&c [1, 2], 3], 4]
"
        ),
        "1:4 the anchors in this file name more than 12 values in all"
    );
}

#[test]
fn no_nesting_recurses_on_the_call_stack() {
    let inputs = [
        "- ".repeat(100_000) + "x",
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        (0..2_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect(),
    ];
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for text in inputs {
                let ds = load_text(&text).unwrap_err();
                let last = ds.last().unwrap();
                assert!(
                    last.message.contains("nests deeper than 32"),
                    "{}",
                    last.message
                );
            }
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
}

#[test]
fn an_outline_load_has_the_full_json_and_the_outline_of_the_full_positions() {
    let text = "instances:\n  web:\n    class: a\n    tags: [x, y]\n    resources: {memory: 1G}\n  db: {class: b}\nnodes: [n1, {a: 1}]\npolicy: {}\n";
    let source = SourceText::new("t.yaml", text);
    let (json, full) = load(&source).unwrap().root.unwrap();
    for depth in 0..4 {
        let (outline_json, outline) = load_outline(&source, depth, None).unwrap().root.unwrap();
        assert_eq!(outline_json, json);
        assert_eq!(format!("{outline:?}"), format!("{:?}", full.outline(depth)));
    }
}

#[test]
fn an_outline_load_leaves_aliases_duplicates_and_problems_to_the_full_load() {
    for text in [
        // An alias above its anchor's depth would need positions the outline cut.
        "a:\n  b:\n    c: &x {d: 1}\ne: *x\n",
        // A duplicate below the outline: its first place is not kept.
        "a:\n  b:\n    c: 1\n    c: 2\n",
        // And within it, or any other problem, is the full load's to report.
        "a:\n  b: 1\n  b: 2\n",
        "a: !custom 1\n",
        "a: [1\n",
    ] {
        assert!(
            load_outline(&SourceText::new("t.yaml", text), 2, None).is_none(),
            "{text}"
        );
    }
}

/// Takes entries whose name starts with `take`, gives the others back.
#[derive(Default)]
struct Taker {
    taken: Vec<(String, Value)>,
}

impl EntrySink for Taker {
    fn offer(&mut self, name: &str, value: Value) -> Option<Value> {
        if !name.starts_with("take") {
            return Some(value);
        }
        self.taken.push((name.to_owned(), value));
        None
    }

    fn discard(&mut self) {
        self.taken.clear();
    }
}

#[test]
fn a_streamed_section_keeps_what_the_sink_gives_back_and_the_outline_of_everything() {
    let text = "instances:
  take1: {class: a}
  keep: {class: b}
  take2: 3
nodes:
  take3: {}
";
    let source = SourceText::new("t.yaml", text);
    let (_, full) = load(&source).unwrap().root.unwrap();
    let mut sink = Taker::default();
    let stream = Stream {
        section: "instances",
        sink: &mut sink,
    };
    let (json, outline) = load_outline(&source, 2, Some(stream))
        .unwrap()
        .root
        .unwrap();
    assert_eq!(
        json,
        json!({"instances": {"keep": {"class": "b"}}, "nodes": {"take3": {}}})
    );
    assert_eq!(format!("{outline:?}"), format!("{:?}", full.outline(2)));
    assert_eq!(
        sink.taken,
        [
            ("take1".to_owned(), json!({"class": "a"})),
            ("take2".to_owned(), json!(3))
        ]
    );
}
