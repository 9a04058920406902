//! Builds JSON and positions from parser events on an explicit stack, within the limits.

use std::borrow::Cow;
use std::collections::HashMap;

use indexmap::IndexMap;
use saphyr::Scalar;
use saphyr_parser::{Event, ScalarStyle, Tag};
use serde_json::Value;

use super::super::diagnostic::{Diagnostic, index_path, join_path};
use super::super::source::{PositionTree, SourceText, Span};
use super::frame::{Frame, KeySlot, Node, leaf};
use super::{Limits, Loaded, Stream, YamlError};

type Fatal = (YamlError, Span);

pub(super) struct Builder<'s, 'k> {
    source: &'s SourceText,
    /// Where the entries of one root section go as each is read, if anywhere.
    stream: Option<Stream<'k>>,
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

impl<'s, 'k> Builder<'s, 'k> {
    pub(super) fn new(source: &'s SourceText, limits: Limits) -> Self {
        Builder {
            source,
            stream: None,
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

    /// Offers each entry of the root mapping's `stream.section` mapping to its sink as the
    /// entry is read (see `Stream`).
    pub(super) fn streaming(mut self, stream: Stream<'k>) -> Self {
        self.stream = Some(stream);
        self
    }

    /// The top of the stack is the streamed section's mapping in the first document.
    fn in_streamed_section(&self) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        match self.stack.as_slice() {
            [
                Frame::Mapping {
                    key: KeySlot::Named(name, _),
                    ..
                },
                Frame::Mapping { .. },
            ] => self.documents <= 1 && name == stream.section,
            _ => false,
        }
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
        let streamed = self.in_streamed_section();
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
                    let mut value = node.value;
                    if streamed && let Some(stream) = &mut self.stream {
                        match stream.sink.offer(&name, value) {
                            Some(refused) => value = refused,
                            // Taken: only its key's place stays (the outline keeps it).
                            None => {
                                if kept {
                                    positions.insert(name, (key_span, node.position));
                                }
                                return;
                            }
                        }
                    }
                    if kept {
                        values.insert(name.clone(), value);
                        positions.insert(name, (key_span, node.position));
                    } else {
                        values.insert(name, value);
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
