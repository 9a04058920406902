//! The desired-state reference as markdown, rendered from the generated JSON schema, so
//! the page says exactly what validation accepts: every key, its type, whether it is
//! required, and the doc comment of the Rust field it comes from.

use serde_json::{Map, Value};

use super::{ReferenceError, cell, one_line};

/// The whole page. `schema` is `ganeti-operator schema`'s document.
pub fn render(schema: &Value) -> Result<String, ReferenceError> {
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .ok_or(ReferenceError::Schema("no $defs"))?;
    let sections = schema
        .get("properties")
        .and_then(Value::as_object)
        .ok_or(ReferenceError::Schema("no top-level properties"))?;
    let mut out = String::new();
    out.push_str("# The desired state: every key\n\n");
    out.push_str(super::GENERATED_NOTE);
    out.push_str(
        "\nA desired-state file holds any of these sections; the files of a directory are \
         merged (see [The desired state](../desired-state.md)). Each key below comes with \
         its type and what it means; keys not listed are errors. Types link to their own \
         table.\n\n",
    );
    out.push_str("| section | type | what |\n|---|---|---|\n");
    for (name, property) in sections {
        out.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            cell(&type_of(property)),
            description(property)
        ));
    }
    for (name, def) in defs {
        out.push_str(&format!("\n## {}\n\n", display_name(name)));
        let text = description(def);
        if !text.is_empty() {
            out.push_str(&text);
            out.push_str("\n\n");
        }
        match def.get("properties").and_then(Value::as_object) {
            Some(properties) => object_table(def, properties, &mut out),
            None if def.get("enum").is_some() => {
                out.push_str(&format!("{}.\n", capitalized(&type_of(def))))
            }
            None => out.push_str(&format!("A {}.\n", type_of(def))),
        }
    }
    Ok(out)
}

fn object_table(def: &Value, properties: &Map<String, Value>, out: &mut String) {
    let required: Vec<&str> = def
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| key | type | required | what |\n|---|---|---|---|\n");
    for (key, property) in properties {
        let needed = if required.contains(&key.as_str()) {
            "yes"
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{key}` | {} | {needed} | {} |\n",
            cell(&type_of(property)),
            description(property)
        ));
    }
}

/// The schema's names are the Rust types' (`RawCluster`); a reader knows them without
/// the prefix that marks them as not yet validated.
fn display_name(def: &str) -> &str {
    def.strip_prefix("Raw").unwrap_or(def)
}

fn description(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| cell(&one_line(d)))
        .unwrap_or_default()
}

/// A property's type in words, with a link for a named type and its bounds.
fn type_of(schema: &Value) -> String {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = display_name(target.rsplit('/').next().unwrap_or(target));
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", literal(v))).collect();
        return format!("one of {}", values.join(", "));
    }
    let mut text = match schema.get("type") {
        Some(Value::String(t)) => base_type(t, schema),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            names.join(" or ")
        }
        _ => "any value".to_owned(),
    };
    let bound = |key: &str| schema.get(key).map(literal);
    match (bound("minimum"), bound("maximum")) {
        (Some(min), Some(max)) => text.push_str(&format!(", {min} to {max}")),
        (Some(min), None) => text.push_str(&format!(", at least {min}")),
        (None, Some(max)) => text.push_str(&format!(", at most {max}")),
        (None, None) => {}
    }
    match (bound("minItems"), bound("maxItems")) {
        (Some(min), Some(max)) => text.push_str(&format!(", {min} to {max} items")),
        (Some(min), None) => text.push_str(&format!(", at least {min} item(s)")),
        (None, Some(max)) => text.push_str(&format!(", at most {max} items")),
        (None, None) => {}
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        text.push_str(&format!(" matching `{pattern}`"));
    }
    text
}

fn base_type(name: &str, schema: &Value) -> String {
    match name {
        "array" => match schema.get("items") {
            Some(items) => format!("list of {}", type_of(items)),
            None => "list".to_owned(),
        },
        "object" => match schema.get("additionalProperties") {
            Some(Value::Bool(false)) | None => "object".to_owned(),
            Some(values) => format!("map of name to {}", type_of(values)),
        },
        other => other.to_owned(),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_and_type_is_rendered_with_links_that_have_a_heading() {
        let page = render(&crate::desired::schema::desired_state_schema()).unwrap();
        for section in [
            "cluster",
            "policy",
            "classes",
            "nodes",
            "instances",
            "secrets",
            "notifications",
        ] {
            assert!(page.contains(&format!("| `{section}` |")), "{section}");
        }
        assert!(page.contains("## Cluster\n"), "{page}");
        assert!(page.contains("| `name` | string | yes |"), "{page}");
        // Every link into the page names a heading of the page.
        for link in page.split("](#").skip(1) {
            let anchor = link.split(')').next().unwrap();
            let heading = page.lines().any(|l| {
                l.strip_prefix("## ")
                    .is_some_and(|h| h.to_lowercase() == anchor)
            });
            assert!(heading, "no heading for #{anchor}");
        }
    }

    #[test]
    fn types_read_as_words() {
        let schema: Value = serde_json::json!({
            "type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 64
        });
        assert_eq!(type_of(&schema), "list of string, 1 to 64 items");
        let schema: Value = serde_json::json!({"type": "integer", "minimum": 1, "maximum": 20});
        assert_eq!(type_of(&schema), "integer, 1 to 20");
        let schema: Value = serde_json::json!({"$ref": "#/$defs/RawNic"});
        assert_eq!(type_of(&schema), "[Nic](#nic)");
    }
}
