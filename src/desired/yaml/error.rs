//! What can be wrong with a YAML file as the loader sees it, and the advice for each.

use super::super::diagnostic::Diagnostic;
use super::super::source::{SourceText, Span};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("the file is {size} bytes, more than the limit of {max} bytes")]
    FileTooLarge { size: u64, max: u64 },
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    #[error("the YAML nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("the file holds more than {max} YAML values")]
    TooManyNodes { max: usize },
    #[error("the file uses more than {max} aliases")]
    TooManyAliases { max: usize },
    #[error("the aliases in this file expand to more than {max} values")]
    AliasExpansion { max: usize },
    #[error("the anchors in this file name more than {max} values in all")]
    AnchorsTooLarge { max: usize },
    #[error("an alias (`*name`) cannot be a mapping key")]
    AliasKey,
    #[error("a mapping or list cannot be a mapping key")]
    CollectionKey,
    #[error("the key `{text}` is read by YAML as {kind}, not as a name")]
    NonStringKey { text: String, kind: &'static str },
    #[error("the key `{0}` appears twice in this mapping")]
    DuplicateKey(String),
    #[error("the YAML tag `{0}` is not supported")]
    Tag(String),
    #[error("an alias that refers to the value containing it")]
    RecursiveAlias,
    #[error("a value YAML could not resolve")]
    Unresolvable,
    #[error("infinite or NaN numbers are not supported")]
    NonFinite,
}

impl YamlError {
    fn expected(&self) -> Option<String> {
        Some(match self {
            YamlError::FileTooLarge { max, .. } => format!("a file of at most {max} bytes"),
            YamlError::TooDeep { max } => format!("at most {max} levels of nesting"),
            YamlError::NonStringKey { .. } | YamlError::AliasKey | YamlError::CollectionKey => {
                "keys are names, such as `memory` or `navidrome`".into()
            }
            YamlError::Tag(_) => "plain values without `!` tags".into(),
            YamlError::NonFinite => "a finite number".into(),
            _ => return None,
        })
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            YamlError::FileTooLarge { .. } | YamlError::TooManyNodes { .. } => {
                "split the desired state over several files".into()
            }
            YamlError::TooManyAliases { .. }
            | YamlError::AliasExpansion { .. }
            | YamlError::AnchorsTooLarge { .. } => {
                "write the values out, or use fewer aliases".into()
            }
            YamlError::NonStringKey { text, .. } => format!("quote it: \"{text}\":"),
            YamlError::DuplicateKey(_) => {
                "each key may appear once per mapping; merge the two entries".into()
            }
            YamlError::Tag(_) => "remove the tag; quote the value if it must be a string".into(),
            YamlError::Syntax(info) if info.contains("unknown anchor") => {
                "an alias (*name) must refer to an anchor (&name) defined earlier in the same file"
                    .into()
            }
            YamlError::Syntax(info) if info.contains("tabs") => {
                "indent with spaces; YAML does not allow tabs for indentation".into()
            }
            _ => return None,
        })
    }

    pub fn at(&self, source: &SourceText, span: Span, path: &str) -> Diagnostic {
        let mut d = Diagnostic::new(source.site(span), path, self.to_string());
        d.expected = self.expected();
        d.hint = self.hint();
        d
    }
}
