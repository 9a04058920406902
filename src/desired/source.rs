//! Reads desired-state files and turns each YAML document into JSON plus a tree of source
//! positions, so that any JSON pointer can be traced back to `file:line:column`.

use std::cell::OnceCell;

use indexmap::IndexMap;
use serde_json::Value;

use super::diagnostic::{Diagnostic, Site, index_path, join_path};
use super::files::FileContent;
use super::yaml;

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
    // Boxed so that the many leaves stay small (a leaf is a span and a tag).
    Sequence(Span, Box<[PositionTree]>),
    Mapping(Span, Box<IndexMap<String, (Span, PositionTree)>>),
}

impl PositionTree {
    pub fn span(&self) -> Span {
        match self {
            PositionTree::Leaf(s) | PositionTree::Sequence(s, _) | PositionTree::Mapping(s, _) => {
                *s
            }
        }
    }

    /// The top `depth` levels; below them, each node is a leaf with its span.
    pub(crate) fn outline(&self, depth: usize) -> PositionTree {
        match self {
            _ if depth == 0 => PositionTree::Leaf(self.span()),
            PositionTree::Leaf(span) => PositionTree::Leaf(*span),
            PositionTree::Sequence(span, items) => {
                PositionTree::Sequence(*span, items.iter().map(|i| i.outline(depth - 1)).collect())
            }
            PositionTree::Mapping(span, entries) => PositionTree::Mapping(
                *span,
                Box::new(
                    entries
                        .iter()
                        .map(|(k, (key_span, v))| (k.clone(), (*key_span, v.outline(depth - 1))))
                        .collect(),
                ),
            ),
        }
    }

    /// The same tree placed at `span`: an alias stands where it is written.
    pub fn with_span(self, span: Span) -> PositionTree {
        match self {
            PositionTree::Leaf(_) => PositionTree::Leaf(span),
            PositionTree::Sequence(_, items) => PositionTree::Sequence(span, items),
            PositionTree::Mapping(_, entries) => PositionTree::Mapping(span, entries),
        }
    }
}

/// A file's text, kept so that errors can quote the offending line.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub display: String,
    text: String,
    /// Byte offset where each line starts, so quoting a line does not rescan the file.
    /// `u32` and sized exactly: at 100,000 instances there are 700,000 lines, and these
    /// are kept to the end. Files are far smaller than 4 GiB (`yaml::LIMITS`); an offset
    /// beyond that is saturated, and such a line is simply not quoted.
    line_starts: Vec<u32>,
}

impl SourceText {
    pub fn new(display: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let offset = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let mut line_starts = Vec::with_capacity(text.bytes().filter(|&b| b == b'\n').count() + 1);
        line_starts.push(0);
        line_starts.extend(text.match_indices('\n').map(|(i, _)| offset(i + 1)));
        SourceText {
            display: display.into(),
            text,
            line_starts,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn line(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)? as usize;
        if start >= self.text.len() {
            return None;
        }
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| *next as usize - 1);
        Some(self.text.get(start..end)?.trim_end_matches('\r'))
    }

    /// Errors at the end of input point just past the last line's text, which can be quoted.
    pub fn clamp(&self, at: Position) -> Position {
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

    /// Lines longer than this are not quoted: one flow-style line can be the whole file,
    /// and each of many errors on it would copy it.
    pub const MAX_QUOTED_BYTES: usize = 240;

    pub fn site(&self, span: Span) -> Site {
        Site {
            file: self.display.clone(),
            span,
            line_text: self
                .line(span.start.line)
                .filter(|l| l.len() <= Self::MAX_QUOTED_BYTES)
                // A URL's password is never quoted back, whatever the error.
                .map(|l| super::urls::redact(l).into_owned()),
        }
    }
}

/// One parsed desired-state file. Its JSON is needed only while the file itself is
/// checked and merged; `release` then drops it. Of the positions only the outline
/// (sections and their entries) is kept: a file without problems is loaded with nothing
/// more, and an error deeper down parses the text again (once per file, until released).
/// So a large state never holds the position of every field.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub source: SourceText,
    /// `null` once released.
    pub json: Value,
    outline: PositionTree,
    full: OnceCell<PositionTree>,
}

/// Pointers this deep (`/instances/web`) are answered from the outline.
const OUTLINE_DEPTH: usize = 2;

/// Which part of a mapping entry an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The key itself: unknown fields, duplicate names, bad names.
    Key,
    /// The value under the key: wrong types, bad sizes, unknown references.
    Value,
}

impl ParsedFile {
    pub fn new(source: SourceText, json: Value, positions: PositionTree) -> Self {
        ParsedFile {
            outline: positions.outline(OUTLINE_DEPTH),
            full: OnceCell::from(positions),
            source,
            json,
        }
    }

    /// A file loaded with only its outline: the full tree is loaded again if asked for.
    fn from_outline(source: SourceText, json: Value, outline: PositionTree) -> Self {
        ParsedFile {
            outline,
            full: OnceCell::new(),
            source,
            json,
        }
    }

    /// Drops what only checking and merging this file needed.
    pub fn release(&mut self) {
        self.json = Value::Null;
        self.full = OnceCell::new();
    }

    fn positions_for(&self, pointer: &str) -> &PositionTree {
        if pointer.split('/').skip(1).count() <= OUTLINE_DEPTH {
            return &self.outline;
        }
        self.full.get_or_init(|| {
            yaml::load(&self.source)
                .ok()
                .and_then(|loaded| loaded.root)
                .map_or_else(|| self.outline.clone(), |(_, positions)| positions)
        })
    }

    /// Resolves a JSON pointer (`/instances/web/memory`) to a site in this file. A pointer
    /// that goes deeper than the document (a missing field) lands on its nearest parent.
    pub fn site(&self, pointer: &str, target: Target) -> Site {
        let mut node = self.positions_for(pointer);
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

    /// A JSON pointer written as a YAML path, using the positions to tell indexes from keys.
    pub fn yaml_path(&self, pointer: &str) -> String {
        let mut path = String::new();
        let mut node = Some(self.positions_for(pointer));
        for segment in pointer.split('/').skip(1).map(unescape_pointer) {
            match node {
                Some(PositionTree::Sequence(_, items)) => {
                    let index = segment.parse::<usize>().ok();
                    path = index_path(&path, index.unwrap_or_default());
                    node = index.and_then(|i| items.get(i));
                }
                other => {
                    path = join_path(&path, &segment);
                    node = match other {
                        Some(PositionTree::Mapping(_, entries)) => {
                            entries.get(segment.as_str()).map(|(_, v)| v)
                        }
                        _ => None,
                    };
                }
            }
        }
        path
    }
}

fn unescape_pointer(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Parses one file. Every problem found is returned; a file with any is not used.
pub fn parse_file(display: &str, content: FileContent) -> Result<ParsedFile, Vec<Diagnostic>> {
    parse_file_streaming(display, content, None)
}

/// As `parse_file`, but a file that loads by its outline hands the entries of
/// `stream.section` to its sink as they are read (see `yaml::EntrySink`); its JSON then
/// holds only those the sink gave back. Any other file is loaded in full, as before, and
/// the sink holds nothing from it.
pub fn parse_file_streaming(
    display: &str,
    content: FileContent,
    mut stream: Option<yaml::Stream<'_>>,
) -> Result<ParsedFile, Vec<Diagnostic>> {
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
        FileContent::Unusable(problem) => {
            let source = SourceText::new(display, "");
            let start = Span::point(Position { line: 1, column: 1 });
            let hint = problem.hint();
            return Err(vec![
                Diagnostic::new(source.site(start), "", problem.to_string()).hint(hint),
            ]);
        }
    };
    let source = SourceText::new(display, text);
    // Most files are valid: their outline is all they need. Any trouble is loaded in
    // full, as before, so its diagnostics do not depend on the shortcut.
    if let Some(loaded) = yaml::load_outline(
        &source,
        OUTLINE_DEPTH,
        stream.as_mut().map(yaml::Stream::reborrow),
    ) && loaded.second_document.is_none()
        && let Some((json, outline)) = loaded.root
        && !json.is_null()
    {
        return Ok(ParsedFile::from_outline(source, json, outline));
    }
    if let Some(stream) = stream {
        stream.sink.discard();
    }
    let loaded = yaml::load(&source)?;
    let Some((json, positions)) = loaded.root else {
        return Err(vec![empty_file(&source)]);
    };
    if let Some(span) = loaded.second_document {
        return Err(vec![
            Diagnostic::new(
                source.site(span),
                "",
                "a second YAML document (after `---`) in one file",
            )
            .expected("one document per file")
            .hint("move the second document into a file of its own"),
        ]);
    }
    if json.is_null() {
        return Err(vec![empty_file(&source)]);
    }
    Ok(ParsedFile::new(source, json, positions))
}

fn empty_file(source: &SourceText) -> Diagnostic {
    Diagnostic::new(
        source.site(Span::point(Position { line: 1, column: 1 })),
        "",
        "the file is empty",
    )
    .expected("a mapping with any of: cluster, policy, classes, nodes, instances, secrets")
    .hint("delete the file, or add content to it")
}
