//! Reads desired-state files and turns each YAML document into JSON plus a tree of source
//! positions, so that any JSON pointer can be traced back to `file:line:column`.

use indexmap::IndexMap;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Site};

/// 1-based line and column, counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

impl Span {
    fn from_marked(span: &saphyr_parser::Span) -> Span {
        let at = |m: &saphyr::Marker| Position {
            line: m.line(),
            column: m.col() + 1,
        };
        Span {
            start: at(&span.start),
            end: at(&span.end),
        }
    }

    pub fn point(position: Position) -> Span {
        Span {
            start: position,
            end: position,
        }
    }
}

/// Where every node of one document came from.
#[derive(Debug, Clone)]
pub enum PositionTree {
    Leaf(Span),
    Sequence(Span, Vec<PositionTree>),
    Mapping(Span, IndexMap<String, (Span, PositionTree)>),
}

impl PositionTree {
    fn span(&self) -> Span {
        match self {
            PositionTree::Leaf(s) | PositionTree::Sequence(s, _) | PositionTree::Mapping(s, _) => {
                *s
            }
        }
    }
}

/// A file's text, kept so that errors can quote the offending line.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub display: String,
    text: String,
    /// Byte offset where each line starts, so quoting a line does not rescan the file.
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(display: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceText {
            display: display.into(),
            text,
            line_starts,
        }
    }

    pub fn line(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        if start >= self.text.len() {
            return None;
        }
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        Some(self.text[start..end].trim_end_matches('\r'))
    }

    /// Errors at the end of input point just past the last line's text, which can be quoted.
    fn clamp(&self, at: Position) -> Position {
        if self.line(at.line).is_some() {
            return at;
        }
        match self
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .last()
        {
            Some((i, l)) => Position {
                line: i + 1,
                column: l.chars().count() + 1,
            },
            None => Position { line: 1, column: 1 },
        }
    }

    pub fn site(&self, span: Span) -> Site {
        Site {
            file: self.display.clone(),
            span,
            line_text: self.line(span.start.line).map(str::to_owned),
        }
    }
}

/// One parsed desired-state file.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub source: SourceText,
    pub json: Value,
    pub positions: PositionTree,
}

/// Which part of a mapping entry an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The key itself: unknown fields, duplicate names, bad names.
    Key,
    /// The value under the key: wrong types, bad sizes, unknown references.
    Value,
}

impl ParsedFile {
    /// Resolves a JSON pointer (`/instances/web/memory`) to a site in this file. A pointer
    /// that goes deeper than the document (a missing field) lands on its nearest parent.
    pub fn site(&self, pointer: &str, target: Target) -> Site {
        let mut node = &self.positions;
        let mut key_span = None;
        for segment in pointer.split('/').skip(1).map(unescape_pointer) {
            let next = match node {
                PositionTree::Mapping(_, entries) => {
                    entries.get(segment.as_str()).map(|(k, v)| (Some(*k), v))
                }
                PositionTree::Sequence(_, items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (None, v)),
                PositionTree::Leaf(_) => None,
            };
            match next {
                Some((k, child)) => {
                    key_span = k;
                    node = child;
                }
                None => break,
            }
        }
        let span = match (target, key_span) {
            (Target::Key, Some(k)) => k,
            _ => node.span(),
        };
        self.source.site(span)
    }
}

fn unescape_pointer(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// What a file holds before parsing.
pub enum FileContent {
    Text(String),
    /// Not UTF-8: the byte offset of the first bad byte, with the valid text before it.
    NotUtf8 {
        valid_prefix: String,
    },
}

impl FileContent {
    pub fn from_bytes(bytes: Vec<u8>) -> FileContent {
        match String::from_utf8(bytes) {
            Ok(text) => FileContent::Text(text),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                FileContent::NotUtf8 {
                    valid_prefix: String::from_utf8_lossy(&bytes[..valid]).into_owned(),
                }
            }
        }
    }
}

/// Parses one file. Every problem found is returned; a file with any is not used.
pub fn parse_file(display: &str, content: FileContent) -> Result<ParsedFile, Vec<Diagnostic>> {
    let text = match content {
        FileContent::Text(text) => text,
        FileContent::NotUtf8 { valid_prefix } => {
            let line = valid_prefix.matches('\n').count() + 1;
            let column = valid_prefix
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count())
                + 1;
            let source = SourceText::new(display, valid_prefix);
            return Err(vec![
                Diagnostic::new(
                    source.site(Span::point(Position { line, column })),
                    "",
                    "the file is not valid UTF-8",
                )
                .expected("UTF-8 text")
                .hint("re-save the file as UTF-8"),
            ]);
        }
    };
    let source = SourceText::new(display, text);
    let documents = match MarkedYaml::load_from_str(&source.text) {
        Ok(documents) => documents,
        Err(e) => {
            let at = source.clamp(Position {
                line: e.marker().line().max(1),
                column: e.marker().col() + 1,
            });
            let mut diagnostic = Diagnostic::new(
                source.site(Span::point(at)),
                "",
                format!("YAML syntax error: {}", e.info()),
            );
            if e.info().contains("unknown anchor") {
                diagnostic = diagnostic.hint("an alias (*name) must refer to an anchor (&name) defined earlier in the same file");
            } else if e.info().contains("duplicated key") {
                diagnostic =
                    diagnostic.hint("each key may appear once per mapping; merge the two entries");
            } else if e.info().contains("tabs") {
                diagnostic =
                    diagnostic.hint("indent with spaces; YAML does not allow tabs for indentation");
            }
            return Err(vec![diagnostic]);
        }
    };
    let mut documents = documents.into_iter();
    let Some(root) = documents.next() else {
        return Err(vec![
            Diagnostic::new(
                source.site(Span::point(Position { line: 1, column: 1 })),
                "",
                "the file is empty",
            )
            .expected("a mapping with any of: cluster, policy, classes, nodes, instances, secrets")
            .hint("delete the file, or add content to it"),
        ]);
    };
    let mut problems = Vec::new();
    if let Some(extra) = documents.next() {
        let span = Span::from_marked(&extra.span);
        problems.push(
            Diagnostic::new(
                source.site(span),
                "",
                "a second YAML document (after `---`) in one file",
            )
            .expected("one document per file")
            .hint("move the second document into a file of its own"),
        );
    }
    let mut converter = Converter {
        source: &source,
        problems,
    };
    let (json, positions) = converter.convert(&root, "");
    let problems = converter.problems;
    if json.is_null() && problems.is_empty() {
        return Err(vec![
            Diagnostic::new(
                source.site(Span::point(Position { line: 1, column: 1 })),
                "",
                "the file is empty",
            )
            .expected("a mapping with any of: cluster, policy, classes, nodes, instances, secrets"),
        ]);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ParsedFile {
        source,
        json,
        positions,
    })
}

struct Converter<'s> {
    source: &'s SourceText,
    problems: Vec<Diagnostic>,
}

impl Converter<'_> {
    fn convert(&mut self, node: &MarkedYaml<'_>, path: &str) -> (Value, PositionTree) {
        let span = Span::from_marked(&node.span);
        match &node.data {
            YamlData::Value(scalar) => (self.scalar(scalar, span, path), PositionTree::Leaf(span)),
            YamlData::Representation(text, _, _) => {
                (Value::String(text.to_string()), PositionTree::Leaf(span))
            }
            YamlData::Sequence(items) => {
                let mut values = Vec::with_capacity(items.len());
                let mut positions = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let (v, p) = self.convert(item, &format!("{path}[{i}]"));
                    values.push(v);
                    positions.push(p);
                }
                (
                    Value::Array(values),
                    PositionTree::Sequence(span, positions),
                )
            }
            YamlData::Mapping(entries) => {
                let mut object = serde_json::Map::with_capacity(entries.len());
                let mut positions = IndexMap::with_capacity(entries.len());
                for (key, value) in entries {
                    let key_span = Span::from_marked(&key.span);
                    let Some(name) = key_text(key) else {
                        self.problems.push(
                            Diagnostic::new(
                                self.source.site(key_span),
                                path,
                                "a mapping key that is not a plain string",
                            )
                            .expected("keys are names, such as `memory` or `navidrome`"),
                        );
                        continue;
                    };
                    let child_path = super::diagnostic::join_path(path, &name);
                    let (v, p) = self.convert(value, &child_path);
                    object.insert(name.clone(), v);
                    positions.insert(name, (key_span, p));
                }
                (
                    Value::Object(object),
                    PositionTree::Mapping(span, positions),
                )
            }
            YamlData::Tagged(tag, _) => {
                self.problems.push(
                    Diagnostic::new(
                        self.source.site(span),
                        path,
                        format!("the YAML tag `{tag}` is not supported"),
                    )
                    .expected("plain values without `!` tags")
                    .hint("remove the tag; quote the value if it must be a string"),
                );
                (Value::Null, PositionTree::Leaf(span))
            }
            YamlData::Alias(_) | YamlData::BadValue => {
                self.problems.push(Diagnostic::new(
                    self.source.site(span),
                    path,
                    "a value YAML could not resolve",
                ));
                (Value::Null, PositionTree::Leaf(span))
            }
        }
    }

    fn scalar(&mut self, scalar: &Scalar<'_>, span: Span, path: &str) -> Value {
        match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::from(*i),
            Scalar::FloatingPoint(f) => match serde_json::Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    self.problems.push(
                        Diagnostic::new(
                            self.source.site(span),
                            path,
                            "infinite or NaN numbers are not supported",
                        )
                        .expected("a finite number"),
                    );
                    Value::Null
                }
            },
            Scalar::String(s) => Value::String(s.to_string()),
        }
    }
}

fn key_text(key: &MarkedYaml<'_>) -> Option<String> {
    match &key.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        // Unquoted keys that YAML reads as numbers or booleans are still names to us.
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(text, _, _) => Some(text.to_string()),
        _ => None,
    }
}
