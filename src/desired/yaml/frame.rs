//! The builder's stack frames and finished nodes: a collection being read, and how it
//! becomes a value with its positions once its end is seen.

use indexmap::IndexMap;
use serde_json::Value;

use super::super::source::{Position, PositionTree, Span};

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
pub(super) struct Node {
    pub(super) value: Value,
    pub(super) position: PositionTree,
    pub(super) count: usize,
}

pub(super) enum KeySlot {
    Awaiting,
    Named(String, Span),
    /// The key was reported; its value is read and dropped.
    Rejected,
}

pub(super) enum Frame {
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
    pub(super) fn finish(self, end: Span, positions_kept: bool) -> (usize, Node) {
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

    pub(super) fn awaits_key(&self) -> bool {
        matches!(
            self,
            Frame::Mapping {
                key: KeySlot::Awaiting,
                ..
            }
        )
    }
}

pub(super) fn leaf(value: Value, span: Span) -> Node {
    Node {
        value,
        position: PositionTree::Leaf(span),
        count: 1,
    }
}

/// A collection's positions before its end (and so its span) is known.
pub(super) enum Tree {
    Sequence(Box<[PositionTree]>),
    Mapping(Box<IndexMap<String, (Span, PositionTree)>>),
}
