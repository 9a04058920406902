//! The one YAML loader: desired-state files (directory, git, pre-receive) and the config
//! file all come through here. It builds JSON and a position tree straight from the
//! parser's events on an explicit stack, so no input recurses on the call stack, and it
//! stops at the first limit crossed, so a small hostile file cannot take memory or time.
//! Keys must be strings as written: YAML would otherwise turn `0x1f:` into `31` and let
//! `1:` and `"1":` collide.

mod builder;
mod error;
mod frame;
#[cfg(test)]
mod tests;

use saphyr_parser::Parser;
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::source::{Position, PositionTree, SourceText, Span};
use builder::Builder;
pub use error::YamlError;

/// What one file may hold. Documented in docs/src/limits.md.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_depth: usize,
    /// Scalars and collections, counting those that aliases add.
    pub max_nodes: usize,
    pub max_aliases: usize,
    /// Nodes that aliases may add in total, so `*a` repeated cannot multiply a file.
    pub max_alias_nodes: usize,
    /// Nodes under anchors, counted once per anchor: each anchor keeps a copy of what it
    /// names, so anchors nested thirty deep over a long list would copy it thirty times.
    pub max_anchored_nodes: usize,
}

pub const LIMITS: Limits = Limits {
    max_file_bytes: 16 * 1024 * 1024,
    max_depth: 32,
    max_nodes: 1_000_000,
    max_aliases: 1_000,
    max_alias_nodes: 100_000,
    max_anchored_nodes: 100_000,
};

/// The first document of a file, and whether a second one followed.
#[derive(Debug)]
pub struct Loaded {
    pub root: Option<(Value, PositionTree)>,
    pub second_document: Option<Span>,
}

/// Loads `source` within `LIMITS`. Every problem is a located diagnostic; a limit or a
/// syntax error ends the load at once, the problems found before it are kept.
pub fn load(source: &SourceText) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(source, LIMITS)
}

pub fn load_with(source: &SourceText, limits: Limits) -> Result<Loaded, Vec<Diagnostic>> {
    run(Builder::new(source, limits), source, limits).map(|(loaded, _)| loaded)
}

/// Takes entries of a root section as they are read, instead of the document holding
/// them all: a file of 10,000 instances then never holds more than one instance's JSON,
/// which is still in the cache when it is checked and typed.
pub trait EntrySink {
    /// Takes `value`, the entry `name` of the section, or gives it back to stay in the
    /// document (the sink cannot use it, and the document's own checks report it).
    fn offer(&mut self, name: &str, value: Value) -> Option<Value>;
    /// The load is not used after all: forget every entry taken.
    fn discard(&mut self);
}

/// The root section whose entries go to `sink` (in the first document only).
pub struct Stream<'k> {
    pub section: &'k str,
    pub sink: &'k mut dyn EntrySink,
}

impl Stream<'_> {
    /// The same stream for one load, leaving this one to discard afterwards.
    pub fn reborrow(&mut self) -> Stream<'_> {
        Stream {
            section: self.section,
            sink: &mut *self.sink,
        }
    }
}

/// Loads `source` keeping positions only `depth` levels deep, as `PositionTree::outline`
/// would cut them: building, and later freeing, the position of every field was a large
/// share of loading a large file; an error below the outline loads the file again.
/// `None` when only a full load answers as `load` would: the file has problems, an
/// alias, or a duplicate key below the outline (see `Builder::needs_full`); the caller
/// then tells `stream`'s sink to discard what it took. A document whose entries went to
/// the sink holds only those it gave back.
pub fn load_outline(
    source: &SourceText,
    depth: usize,
    stream: Option<Stream<'_>>,
) -> Option<Loaded> {
    let mut builder = Builder::new(source, LIMITS).outline_only(depth);
    if let Some(stream) = stream {
        builder = builder.streaming(stream);
    }
    match run(builder, source, LIMITS) {
        Ok((loaded, false)) => Some(loaded),
        _ => None,
    }
}

/// Feeds the parser's events to `builder`; the loaded document and whether the builder
/// needs a full load after all.
fn run(
    mut builder: Builder<'_, '_>,
    source: &SourceText,
    limits: Limits,
) -> Result<(Loaded, bool), Vec<Diagnostic>> {
    let size = source.text().len() as u64;
    if size > limits.max_file_bytes {
        let start = Span::point(Position { line: 1, column: 1 });
        let error = YamlError::FileTooLarge {
            size,
            max: limits.max_file_bytes,
        };
        return Err(vec![error.at(source, start, "")]);
    }
    for event in Parser::new_from_str(source.text()) {
        let outcome = match event {
            Ok((event, span)) => builder.event(event, frame::span_of(&span)),
            Err(e) => {
                let at = source.clamp(Position {
                    line: e.marker().line().max(1),
                    column: e.marker().col() + 1,
                });
                // The scanner looks far ahead in flow collections and has a depth limit
                // of its own; it is the same problem as ours, so it gets the same words.
                let error = if e.info().contains("recursion limit") {
                    YamlError::TooDeep {
                        max: limits.max_depth,
                    }
                } else {
                    YamlError::Syntax(e.info().to_owned())
                };
                Err((error, Span::point(at)))
            }
        };
        if let Err((error, span)) = outcome {
            // A syntax error has no trustworthy path; a limit is reported where it was crossed.
            let path = match error {
                YamlError::Syntax(_) => String::new(),
                _ => builder.path(true),
            };
            builder.problems.push(error.at(source, span, &path));
            return Err(builder.problems);
        }
    }
    let needs_full = builder.needs_full;
    builder.into_loaded().map(|loaded| (loaded, needs_full))
}
