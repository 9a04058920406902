//! Builds JSON and positions from parser events on an explicit stack, within the limits.

use std::borrow::Cow;
use std::collections::HashMap;

use indexmap::IndexMap;
use saphyr::Scalar;
use saphyr_parser::{Event, ScalarStyle, Tag};
use serde_json::Value;

use super::super::diagnostic::{Diagnostic, index_path, join_path};
use super::super::source::{Position, PositionTree, SourceText, Span};
use super::{Limits, Loaded, YamlError};

pub(super) fn span_of(span: &saphyr_parser::Span) -> Span {
    let at = |m: &saphyr_parser::Marker| Position {
        line: m.line(),
        column: m.col() + 1,
    };
    Span {
        start: at(&span.start),
        end: at(&span.end),
    }
}

/// A finished value, with how many values it holds (for the alias budget).
#[derive(Clone)]
struct Node {
    value: Value,
    position: PositionTree,
    count: usize,
}

enum KeySlot {
    Awaiting,
    Named(String, Span),
    /// The key was reported; its value is read and dropped.
    Rejected,
}

enum Frame {
    Sequence {
        start: Position,
        anchor: usize,
        values: Vec<Value>,
        positions: Vec<PositionTree>,
        count: usize,
    },
    Mapping {
        start: Position,
        anchor: usize,
        values: serde_json::Map<String, Value>,
        positions: IndexMap<String, (Span, PositionTree)>,
        key: KeySlot,
        count: usize,
    },
}

impl Frame {
    /// The collection as a value, its anchor, ended by the event at `end`. With
    /// `positions_kept` false its positions are a leaf: it lies below the outline.
    fn finish(self, end: Span, positions_kept: bool) -> (usize, Node) {
        let (start, anchor, count, value, position) = match self {
            Frame::Sequence {
                start,
                anchor,
                values,
                positions,
                count,
            } => (
                start,
                anchor,
                count,
                Value::Array(values),
                Tree::Sequence(positions.into_boxed_slice()),
            ),
            Frame::Mapping {
                start,
                anchor,
                values,
                positions,
                count,
                ..
            } => (
                start,
                anchor,
                count,
                Value::Object(values),
                Tree::Mapping(Box::new(positions)),
            ),
        };
        let span = Span {
            start,
            end: end.start,
        };
        let position = match position {
            _ if !positions_kept => PositionTree::Leaf(span),
            Tree::Sequence(items) => PositionTree::Sequence(span, items),
            Tree::Mapping(entries) => PositionTree::Mapping(span, entries),
        };
        (
            anchor,
            Node {
                value,
                position,
                count,
            },
        )
    }

    fn awaits_key(&self) -> bool {
        matches!(
            self,
            Frame::Mapping {
                key: KeySlot::Awaiting,
                ..
            }
        )
    }
}

type Fatal = (YamlError, Span);

pub(super) struct Builder<'s> {
    source: &'s SourceText,
    limits: Limits,
    /// Collections this deep (the root is 0) and deeper are leaves in the position tree,
    /// as in `PositionTree::outline`; `usize::MAX` keeps every position.
    position_depth: usize,
    /// In an outline, something was met that only the full tree answers as the full
    /// load would: an alias (its anchor's positions were cut at the anchor's depth, not
    /// the alias's) or a duplicate key below the outline (its first place is not kept).
    pub(super) needs_full: bool,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    aliases: usize,
    alias_nodes: usize,
    anchored_nodes: usize,
    documents: usize,
    loaded: Loaded,
    pub(super) problems: Vec<Diagnostic>,
}

impl<'s> Builder<'s> {
    pub(super) fn new(source: &'s SourceText, limits: Limits) -> Self {
        Builder {
            source,
            limits,
            position_depth: usize::MAX,
            needs_full: false,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            aliases: 0,
            alias_nodes: 0,
            anchored_nodes: 0,
            documents: 0,
            loaded: Loaded {
                root: None,
                second_document: None,
            },
            problems: Vec::new(),
        }
    }

    /// Keeps positions only `depth` levels deep (see `position_depth`).
    pub(super) fn outline_only(mut self, depth: usize) -> Self {
        self.position_depth = depth;
        self
    }

    /// Whether the frame at `index` in the stack keeps the positions of its children.
    fn keeps_positions(&self, index: usize) -> bool {
        index < self.position_depth
    }

    pub(super) fn into_loaded(self) -> Result<Loaded, Vec<Diagnostic>> {
        if self.problems.is_empty() {
            Ok(self.loaded)
        } else {
            Err(self.problems)
        }
    }

    pub(super) fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Fatal> {
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if is_node && self.documents > 1 && self.loaded.second_document.is_none() {
            self.loaded.second_document = Some(span);
        }
        match event {
            Event::DocumentStart(_) => self.documents += 1,
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, span)?;
                self.scalar(text, style, anchor, tag.as_deref(), span)?;
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                self.count(1, span)?;
                if self.stack.len() >= self.limits.max_depth {
                    let max = self.limits.max_depth;
                    return Err((YamlError::TooDeep { max }, span));
                }
                self.reject_tag(tag.as_deref(), span);
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Sequence {
                        start: span.start,
                        anchor,
                        values: Vec::new(),
                        positions: Vec::new(),
                        count: 1,
                    }
                } else {
                    Frame::Mapping {
                        start: span.start,
                        anchor,
                        values: serde_json::Map::new(),
                        positions: IndexMap::new(),
                        key: KeySlot::Awaiting,
                        count: 1,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let kept = self.keeps_positions(self.stack.len());
                let (anchor, mut node) = frame.finish(span, kept);
                // An outline is kept to the end of validation: at 10,000 instances a file's
                // `instances` mapping would keep 60 % slack from growing by doubling.
                if let PositionTree::Mapping(_, entries) = &mut node.position
                    && self.position_depth != usize::MAX
                {
                    entries.shrink_to_fit();
                }
                let span = node.position.span();
                if self.stack.last().is_some_and(Frame::awaits_key) {
                    self.reject_key(YamlError::CollectionKey, span);
                } else {
                    self.remember(anchor, &node, span)?;
                    self.attach(node);
                }
            }
            Event::Alias(id) => self.alias(id, span)?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, span: Span) -> Result<(), Fatal> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.limits.max_nodes {
            let max = self.limits.max_nodes;
            return Err((YamlError::TooManyNodes { max }, span));
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), Fatal> {
        // A key is never expanded: that is where an unbudgeted expansion could hide.
        if self.stack.last().is_some_and(Frame::awaits_key) {
            self.reject_key(YamlError::AliasKey, span);
            return Ok(());
        }
        self.aliases += 1;
        self.needs_full |= self.position_depth != usize::MAX;
        if self.aliases > self.limits.max_aliases {
            let max = self.limits.max_aliases;
            return Err((YamlError::TooManyAliases { max }, span));
        }
        let Some(anchored) = self.anchors.get(&id) else {
            self.report(YamlError::RecursiveAlias, span, true);
            self.attach(leaf(Value::Null, span));
            return Ok(());
        };
        self.alias_nodes = self.alias_nodes.saturating_add(anchored.count);
        if self.alias_nodes > self.limits.max_alias_nodes {
            let max = self.limits.max_alias_nodes;
            return Err((YamlError::AliasExpansion { max }, span));
        }
        let mut node = anchored.clone();
        self.count(node.count, span)?;
        node.position = node.position.with_span(span);
        self.attach(node);
        Ok(())
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), Fatal> {
        let is_key = self.stack.last().is_some_and(Frame::awaits_key);
        if self.reject_tag(tag, span) {
            if is_key {
                self.set_key(KeySlot::Rejected);
            } else {
                self.attach(leaf(Value::Null, span));
            }
            return Ok(());
        }
        let resolved = Scalar::parse_from_cow_and_metadata(
            text.clone(),
            style,
            tag.map(Cow::Borrowed).as_ref(),
        );
        if is_key {
            match resolved {
                Some(Scalar::String(name)) => self.key(name.into_owned(), span),
                other => {
                    let kind = match other {
                        Some(Scalar::Null) => "null",
                        Some(Scalar::Boolean(_)) => "a boolean",
                        Some(Scalar::Integer(_)) => "a whole number",
                        Some(Scalar::FloatingPoint(_)) => "a number",
                        _ => "a value that is not a string",
                    };
                    let text = text.into_owned();
                    self.reject_key(YamlError::NonStringKey { text, kind }, span);
                }
            }
            return Ok(());
        }
        let value = match resolved {
            Some(Scalar::Null) => Value::Null,
            Some(Scalar::Boolean(b)) => Value::Bool(b),
            Some(Scalar::Integer(i)) => Value::from(i),
            Some(Scalar::String(s)) => Value::String(s.into_owned()),
            Some(Scalar::FloatingPoint(f)) => match serde_json::Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    self.report(YamlError::NonFinite, span, true);
                    Value::Null
                }
            },
            None => {
                self.report(YamlError::Unresolvable, span, true);
                Value::Null
            }
        };
        let node = leaf(value, span);
        self.remember(anchor, &node, span)?;
        self.attach(node);
        Ok(())
    }

    /// Reports a tag other than YAML's own (`!!str`, `!!int`, ...); true if it did.
    fn reject_tag(&mut self, tag: Option<&Tag>, span: Span) -> bool {
        match tag {
            Some(tag) if !tag.is_yaml_core_schema() => {
                self.report(YamlError::Tag(tag.to_string()), span, true);
                true
            }
            _ => false,
        }
    }

    fn key(&mut self, name: String, span: Span) {
        let kept = self.keeps_positions(self.stack.len().saturating_sub(1));
        let first = match self.stack.last() {
            Some(Frame::Mapping { positions, .. }) if kept => positions.get(&name).map(|(s, _)| *s),
            Some(Frame::Mapping { values, .. }) => {
                if values.contains_key(&name) {
                    self.needs_full = true;
                    self.set_key(KeySlot::Rejected);
                    return;
                }
                None
            }
            _ => None,
        };
        match first {
            Some(first) => {
                let path = join_path(&self.path(false), &name);
                let d = YamlError::DuplicateKey(name)
                    .at(self.source, span, &path)
                    .related(self.source.site(first), "first written");
                self.problems.push(d);
                self.set_key(KeySlot::Rejected);
            }
            None => self.set_key(KeySlot::Named(name, span)),
        }
    }

    fn reject_key(&mut self, error: YamlError, span: Span) {
        self.report(error, span, false);
        self.set_key(KeySlot::Rejected);
    }

    fn set_key(&mut self, slot: KeySlot) {
        if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
            *key = slot;
        }
    }

    fn report(&mut self, error: YamlError, span: Span, is_value: bool) {
        let path = self.path(is_value);
        self.problems.push(error.at(self.source, span, &path));
    }

    /// Keeps a copy of an anchored node for its aliases, within the anchor budget.
    fn remember(&mut self, anchor: usize, node: &Node, span: Span) -> Result<(), Fatal> {
        if anchor > 0 {
            self.anchored_nodes = self.anchored_nodes.saturating_add(node.count);
            if self.anchored_nodes > self.limits.max_anchored_nodes {
                let max = self.limits.max_anchored_nodes;
                return Err((YamlError::AnchorsTooLarge { max }, span));
            }
            self.anchors.insert(anchor, node.clone());
        }
        Ok(())
    }

    fn attach(&mut self, node: Node) {
        let kept = self.keeps_positions(self.stack.len().saturating_sub(1));
        match self.stack.last_mut() {
            None => {
                if self.documents <= 1 {
                    self.loaded.root = Some((node.value, node.position));
                }
            }
            Some(Frame::Sequence {
                values,
                positions,
                count,
                ..
            }) => {
                *count += node.count;
                values.push(node.value);
                if kept {
                    positions.push(node.position);
                }
            }
            Some(Frame::Mapping {
                values,
                positions,
                key,
                count,
                ..
            }) => {
                if let KeySlot::Named(name, key_span) = std::mem::replace(key, KeySlot::Awaiting) {
                    *count += node.count;
                    if kept {
                        values.insert(name.clone(), node.value);
                        positions.insert(name, (key_span, node.position));
                    } else {
                        values.insert(name, node.value);
                    }
                }
            }
        }
    }

    /// The YAML path of the value being read (`is_value`) or of the mapping whose key is.
    pub(super) fn path(&self, is_value: bool) -> String {
        let upto = if is_value {
            self.stack.len()
        } else {
            self.stack.len().saturating_sub(1)
        };
        let mut path = String::new();
        for frame in &self.stack[..upto] {
            match frame {
                Frame::Sequence { values, .. } => path = index_path(&path, values.len()),
                Frame::Mapping {
                    key: KeySlot::Named(name, _),
                    ..
                } => path = join_path(&path, name),
                Frame::Mapping { .. } => {}
            }
        }
        path
    }
}

fn leaf(value: Value, span: Span) -> Node {
    Node {
        value,
        position: PositionTree::Leaf(span),
        count: 1,
    }
}

/// A collection's positions before its end (and so its span) is known.
enum Tree {
    Sequence(Box<[PositionTree]>),
    Mapping(Box<IndexMap<String, (Span, PositionTree)>>),
}
