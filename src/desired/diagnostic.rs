//! Located validation errors and how they are shown to people and to machines.

use std::fmt::Write as _;

use serde::Serialize;

use super::source::Span;

/// A place in a file, with its line kept for quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: String,
    pub span: Span,
    pub line_text: Option<String>,
}

/// One problem with the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub site: Site,
    /// YAML path such as `instances["web.example.org"].resources.memory`; empty for the file.
    pub path: String,
    pub message: String,
    pub expected: Option<String>,
    pub hint: Option<String>,
    /// Another place the problem involves, e.g. the first definition of a duplicate.
    pub related: Option<(Site, String)>,
}

impl Diagnostic {
    pub fn new(site: Site, path: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            site,
            path: path.to_owned(),
            message: message.into(),
            expected: None,
            hint: None,
            related: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(self, hint: Option<String>) -> Self {
        match hint {
            Some(h) => self.hint(h),
            None => self,
        }
    }

    pub fn related(mut self, site: Site, note: impl Into<String>) -> Self {
        self.related = Some((site, note.into()));
        self
    }

    fn sort_key(&self) -> (&str, usize, usize, &str, &str) {
        let start = self.site.span.start;
        (
            &self.site.file,
            start.line,
            start.column,
            &self.path,
            &self.message,
        )
    }
}

/// Sorts by file, line and column, and drops exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diagnostics.dedup();
}

/// Appends a mapping key to a YAML path, quoting keys that are not plain identifiers.
pub fn join_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", serde_json::Value::String(key.to_owned())),
    }
}

pub fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// rustc-style text: the message, the location, the quoted line with a caret, then notes.
pub fn render_text(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let start = d.site.span.start;
        let what = if d.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", d.path)
        };
        let _ = writeln!(out, "error: {what}{}", d.message);
        let number = start.line.to_string();
        let gutter = " ".repeat(number.len());
        let _ = writeln!(
            out,
            "{gutter}--> {}:{}:{}",
            d.site.file, start.line, start.column
        );
        if let Some(line) = &d.site.line_text {
            let line = line.replace('\t', " ");
            let width = caret_width(&d.site.span, &line);
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{number} | {}", line.trim_end());
            let _ = writeln!(
                out,
                "{gutter} | {}{}",
                " ".repeat(start.column.saturating_sub(1)),
                "^".repeat(width)
            );
        }
        if let Some(expected) = &d.expected {
            let _ = writeln!(out, "{gutter} = expected: {expected}");
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "{gutter} = hint: {hint}");
        }
        if let Some((site, note)) = &d.related {
            let at = site.span.start;
            let _ = writeln!(
                out,
                "{gutter} = note: {note} at {}:{}:{}",
                site.file, at.line, at.column
            );
        }
        out.push('\n');
    }
    out
}

fn caret_width(span: &Span, line: &str) -> usize {
    let line_chars = line.trim_end().chars().count();
    let from = span.start.column.saturating_sub(1);
    let to = if span.end.line == span.start.line && span.end.column > span.start.column {
        span.end.column - 1
    } else {
        line_chars
    };
    to.min(line_chars).saturating_sub(from).max(1)
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    note: &'a str,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    path: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related: Option<JsonRelated<'a>>,
}

pub fn to_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    let list: Vec<JsonDiagnostic<'_>> = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            file: &d.site.file,
            line: d.site.span.start.line,
            column: d.site.span.start.column,
            path: &d.path,
            message: &d.message,
            expected: d.expected.as_deref(),
            hint: d.hint.as_deref(),
            related: d.related.as_ref().map(|(s, note)| JsonRelated {
                file: &s.file,
                line: s.span.start.line,
                column: s.span.start.column,
                note,
            }),
        })
        .collect();
    serde_json::to_value(list).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_names_with_dots() {
        assert_eq!(join_path("", "instances"), "instances");
        assert_eq!(
            join_path("instances", "web.example.org"),
            "instances[\"web.example.org\"]"
        );
        assert_eq!(
            join_path("instances[\"a.b\"]", "memory"),
            "instances[\"a.b\"].memory"
        );
    }
}
