//! The JSON schema generated from the raw types, and stage one of validation: every file
//! checked against it, each error turned into a located diagnostic a person can act on.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use serde_json::Value;

use super::diagnostic::{Diagnostic, join_path};
use super::names::{IMAGE_ID_EXPECTED, IMAGE_ID_PATTERN, closest, image_id_hint};
use super::raw::RawDocument;
use super::source::{ParsedFile, Target};
use super::units::{DURATION_EXPECTED, DURATION_PATTERN, SIZE_EXPECTED, SIZE_PATTERN};

/// Where the committed copy lives; example files point editors at it.
pub const SCHEMA_FILE: &str = "schemas/desired-state.schema.json";

/// The schema as JSON, generated from `RawDocument`.
pub fn desired_state_schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(forbid_null))
        .into_generator();
    let schema = generator.into_root_schema_for::<RawDocument>();
    serde_json::to_value(schema).expect("a generated schema is always JSON")
}

/// `Option<T>` means "may be left out", never "may be null": `memory:` with nothing after
/// it is a mistake worth reporting, so null is removed from every generated type.
fn forbid_null(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(options)) = object.get("anyOf") {
        let rest: Vec<Value> = options
            .iter()
            .filter(|o| o.get("type") != Some(&Value::from("null")))
            .cloned()
            .collect();
        if rest.len() == 1 && options.len() == 2 {
            object.remove("anyOf");
            if let Value::Object(inner) = &rest[0] {
                for (k, v) in inner {
                    object.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn desired_state_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&desired_state_schema()).expect("JSON serializes");
    text.push('\n');
    text
}

static SCHEMA: LazyLock<Value> = LazyLock::new(desired_state_schema);
static VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| jsonschema::validator_for(&SCHEMA).expect("the generated schema compiles"));

/// A validator for one entry of the named section `section` (`instances`), built from the
/// same definitions as the whole schema, so an entry passes it exactly when it passes as
/// part of a document. `None` if the schema has no such section.
pub fn entry_validator(section: &str) -> Option<jsonschema::Validator> {
    let entry = SCHEMA
        .get("properties")?
        .get(section)?
        .get("additionalProperties")?;
    let mut schema = entry.as_object()?.clone();
    for shared in ["$schema", "$defs"] {
        schema.insert(shared.into(), SCHEMA.get(shared)?.clone());
    }
    jsonschema::validator_for(&Value::Object(schema)).ok()
}

/// Stage one's verdict on one file.
pub struct SchemaCheck {
    pub diagnostics: Vec<Diagnostic>,
    /// JSON pointers of the values that failed; objects under them are not used further.
    pub failed_pointers: Vec<String>,
}

/// Every schema error in one file, located. `images`, the artifact store's when one is
/// configured, lets a cut image id be answered with the one it was cut from.
pub fn check_file(file: &ParsedFile, images: Option<&BTreeSet<String>>) -> SchemaCheck {
    let mut out = Vec::new();
    let mut failed_pointers = Vec::new();
    for error in VALIDATOR.iter_errors(&file.json) {
        let pointer = error.instance_path().as_str().to_owned();
        failed_pointers.push(pointer.clone());
        let instance = error.instance();
        let path = file.yaml_path(&pointer);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_fields(&pointer);
                for key in unexpected {
                    let key_pointer =
                        format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    let site = file.site(&key_pointer, Target::Key);
                    let key_path = join_path(&path, key);
                    let expected = format!("one of: {}", allowed.join(", "));
                    out.push(if key == "<<" {
                        Diagnostic::new(site, &key_path, "YAML merge keys (`<<`) are not supported")
                            .expected(expected)
                            .hint("write the fields out; an anchor and alias may still stand for a whole value (`key: *anchor`)")
                    } else {
                        Diagnostic::new(site, &key_path, format!("unknown field `{key}`"))
                            .expected(expected)
                            .maybe_hint(
                                closest(key, allowed.iter().map(String::as_str))
                                    .map(|c| format!("did you mean `{c}`?")),
                            )
                    });
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(
                    Diagnostic::new(
                        file.site(&pointer, Target::Key),
                        &path,
                        format!("missing required field `{name}`"),
                    )
                    .maybe_hint(field_description(&pointer, name)),
                );
            }
            ValidationErrorKind::Type { kind } => {
                let expected = describe_type_kind(kind);
                out.push(
                    Diagnostic::new(
                        file.site(&pointer, Target::Value),
                        &path,
                        format!("expected {expected}, found {}", describe_value(instance)),
                    )
                    .maybe_hint(
                        // A number where a size goes: the fix is a unit, not quotes.
                        schema_at(&pointer)
                            .and_then(|s| s.get("pattern"))
                            .and_then(Value::as_str)
                            .and_then(|p| pattern_hint(p, &Value::String(instance.to_string())))
                            .or_else(|| type_hint(&expected, instance)),
                    ),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<&str> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                out.push(
                    Diagnostic::new(
                        file.site(&pointer, Target::Value),
                        &path,
                        format!("{} is not allowed here", describe_value(instance)),
                    )
                    .expected(format!("one of: {}", options.join(", ")))
                    .maybe_hint(
                        instance
                            .as_str()
                            .and_then(|s| closest(s, options.iter().copied()))
                            .map(|c| format!("did you mean `{c}`?")),
                    ),
                );
            }
            ValidationErrorKind::Pattern { pattern } => {
                out.push(
                    Diagnostic::new(
                        file.site(&pointer, Target::Value),
                        &path,
                        format!("{} is not valid here", describe_value(instance)),
                    )
                    .expected(describe_pattern(pattern))
                    .maybe_hint(if pattern == IMAGE_ID_PATTERN {
                        instance
                            .as_str()
                            .and_then(|text| image_id_hint(text, images))
                    } else {
                        pattern_hint(pattern, instance)
                    }),
                );
            }
            _ => {
                out.push(Diagnostic::new(
                    file.site(&pointer, Target::Value),
                    &path,
                    error.to_string(),
                ));
            }
        }
    }
    SchemaCheck {
        diagnostics: out,
        failed_pointers,
    }
}

/// The schema node that describes the instance at `pointer`, following `$ref`s.
fn schema_at(pointer: &str) -> Option<&'static Value> {
    let mut node = resolve(&SCHEMA)?;
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let next = node
            .get("properties")
            .and_then(|p| p.get(&segment))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| {
                node.get("items")
                    .filter(|_| segment.parse::<usize>().is_ok())
            })?;
        node = resolve(next)?;
    }
    Some(node)
}

fn resolve(node: &'static Value) -> Option<&'static Value> {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => SCHEMA.pointer(reference.strip_prefix('#')?),
        None => Some(node),
    }
}

fn allowed_fields(pointer: &str) -> Vec<String> {
    schema_at(pointer)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn field_description(pointer: &str, field: &str) -> Option<String> {
    let property = schema_at(pointer)?.get("properties")?.get(field)?;
    let description = property
        .get("description")
        .or_else(|| resolve(property)?.get("description"))?;
    Some(format!("`{field}`: {}", description.as_str()?.trim()))
}

fn describe_type_kind(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => describe_json_type(&t.to_string()),
        TypeKind::Multiple(ts) => {
            let names: Vec<String> = ts
                .iter()
                .map(|t| describe_json_type(&t.to_string()))
                .collect();
            names.join(" or ")
        }
    }
}

fn describe_json_type(name: &str) -> String {
    match name {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "string" => "a string".into(),
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "boolean" => "true or false".into(),
        "null" => "nothing".into(),
        other => other.into(),
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "an empty value".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!(
            "the string {}",
            Value::String(super::urls::redact(s).into_owned())
        ),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn type_hint(expected: &str, found: &Value) -> Option<String> {
    match (expected, found) {
        ("true or false", Value::String(s))
            if matches!(s.as_str(), "yes" | "no" | "on" | "off" | "y" | "n") =>
        {
            Some("YAML 1.2 reads yes/no/on/off as text; write true or false".into())
        }
        ("a whole number", Value::String(s)) if s.parse::<i64>().is_ok() => {
            Some(format!("write {s} without quotes"))
        }
        ("a string", Value::Number(n)) => Some(format!("quote it: \"{n}\"")),
        (_, Value::Null) => Some("the value is missing after the colon".into()),
        _ => None,
    }
}

fn describe_pattern(pattern: &str) -> String {
    match pattern {
        SIZE_PATTERN => SIZE_EXPECTED.into(),
        DURATION_PATTERN => DURATION_EXPECTED.into(),
        IMAGE_ID_PATTERN => IMAGE_ID_EXPECTED.into(),
        "^https://" => "an https:// URL".into(),
        "^https?://" => "an http:// or https:// URL".into(),
        other => format!("text matching {other}"),
    }
}

fn pattern_hint(pattern: &str, found: &Value) -> Option<String> {
    let text = found.as_str()?;
    if pattern == SIZE_PATTERN {
        if text.parse::<u64>().is_ok() {
            return Some(format!("add a unit: {text}M for MiB, or {text}G for GiB"));
        }
        if text.starts_with('-') {
            return Some("sizes cannot be negative".into());
        }
        let number_part = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = text[number_part.len()..].to_ascii_uppercase();
        let unit = unit.strip_suffix('B').unwrap_or(&unit);
        let unit = unit.strip_suffix('I').unwrap_or(unit);
        let number = number_part.trim();
        if !number.is_empty() && matches!(unit, "M" | "G" | "T") {
            let fixed = format!("{number}{unit}");
            return Some(if number != number_part {
                format!("no space between the number and its unit: {fixed}")
            } else {
                format!("units are M, G or T in capitals, as Ganeti writes them: {fixed}")
            });
        }
    }
    if pattern == "^https://" && text.starts_with("http://") {
        return Some("the RAPI is only spoken over TLS; use https://".into());
    }
    None
}
