//! Naming rules: Ganeti host names for nodes and instances, short names for the rest,
//! and Ganeti's tag alphabet for anything that ends up in a tag.

use std::collections::BTreeSet;

/// Every tag the operator owns starts with this; users may not write it themselves.
pub const TAG_PREFIX: &str = "ganeti-operator:";
pub const MANAGED_TAG: &str = "ganeti-operator:managed";
pub const CLASS_TAG_PREFIX: &str = "ganeti-operator:class:";
/// What a host runs and was proven healthy on.
pub const IMAGE_TAG_PREFIX: &str = "ganeti-operator:image:";
/// The public half of a host key the operator generated at create (`secrets::host_key`).
pub const HOST_KEY_TAG_PREFIX: &str = "ganeti-operator:hostkey:";
/// Set while the desired entry says `protect: true`. It stays on the instance when the
/// entry is removed, so that pruning still refuses to delete it.
pub const PROTECTED_TAG: &str = "ganeti-operator:protected";
/// On the cluster: a person promoted a class's rollout to an image (`rollout promote`).
pub const PROMOTED_TAG_PREFIX: &str = "ganeti-operator:promoted:";
/// On an instance: its rotation failed and it is going back to its tagged image. Names
/// the image it failed on (cut, see [`short_image`]); written before its pointer goes back.
pub const ROLLBACK_TAG_PREFIX: &str = "ganeti-operator:rollback:";
/// On a node: its upgrade to an image (cut) is under way; written before its master
/// failover or drain, removed once it is tagged with the image or has failed.
pub const UPGRADING_TAG_PREFIX: &str = "ganeti-operator:upgrading:";
/// On a node whose upgrade to an image (cut) failed: it stays drained on its old image
/// while the class's stall holds, and the cluster names it as the node that failed.
pub const UPGRADE_FAILED_TAG_PREFIX: &str = "ganeti-operator:upgrade-failed:";
/// On a node under upgrade: its reboot was started at these Unix seconds, with its
/// pointer flipped; from then on it is waited for and never rebooted again.
pub const REBOOTED_TAG_PREFIX: &str = "ganeti-operator:rebooted:";
/// On the cluster: a class's rollout of one kind stalled at one entry of the class
/// (`stall:<kind>:<class>:<fingerprint>`); it holds until the entry changes.
pub const STALL_TAG_PREFIX: &str = "ganeti-operator:stall:";
/// Ganeti's limit on a tag's length (`constants.MAX_TAG_LEN`).
pub const MAX_TAG_LEN: usize = 128;

pub const HOST_NAME_EXPECTED: &str = "a host name: lowercase letters, digits and '-', in dot-separated labels of at most 63 characters, at most 253 in all";
pub const SHORT_NAME_EXPECTED: &str = "a short name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
pub const TAG_EXPECTED: &str = "Ganeti tag characters only: letters, digits and . + * / : @ _ - (no spaces, no '='), at most 128 characters";

/// Nodes and instances: what Ganeti accepts as a node or instance name (a DNS host name).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_HOST_NAME && name.split('.').all(is_label)
}

/// Why `name` breaks the rule (`host` for host names, else a short name), in words that
/// show what cannot be seen: an invisible or look-alike character is named by its code
/// point and position. `None` when the only fault is its case (the caller hints at that).
pub fn why_invalid(name: &str, host: bool) -> Option<String> {
    if let Some((position, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || (host && *c == '.')))
    {
        return Some(format!(
            "it has {} at position {}",
            describe_char(c),
            position + 1
        ));
    }
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if host && name.len() > MAX_HOST_NAME {
        return Some(format!(
            "it is {} characters long; a host name has at most {MAX_HOST_NAME}",
            name.len()
        ));
    }
    let labels: Vec<&str> = if host {
        name.split('.').collect()
    } else {
        vec![name]
    };
    for label in labels {
        if label.is_empty() {
            return Some("it has an empty label (a dot at an end, or two in a row)".into());
        }
        if label.len() > MAX_LABEL {
            return Some(format!(
                "`{label}` is {} characters long; at most {MAX_LABEL}",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("`{label}` starts or ends with '-'"));
        }
    }
    None
}

/// The message for a `kind` name that breaks its rule, with the reason when there is one.
pub fn invalid_name(name: &str, kind: &str, host: bool) -> String {
    match why_invalid(name, host) {
        Some(why) => format!("`{name}` is not a valid {kind} name: {why}"),
        None => format!("`{name}` is not a valid {kind} name"),
    }
}

/// `'_'` for a visible ASCII character; `U+200B ZERO WIDTH SPACE` for the rest (the name
/// where it is one people meet in copied text, the code point alone otherwise).
fn describe_char(c: char) -> String {
    if c.is_ascii_graphic() {
        return format!("'{c}'");
    }
    let name = match c {
        ' ' => Some("SPACE"),
        '\u{a0}' => Some("NO-BREAK SPACE"),
        '\u{ad}' => Some("SOFT HYPHEN"),
        '\u{200b}' => Some("ZERO WIDTH SPACE"),
        '\u{200c}' => Some("ZERO WIDTH NON-JOINER"),
        '\u{200d}' => Some("ZERO WIDTH JOINER"),
        '\u{2010}' => Some("HYPHEN"),
        '\u{2011}' => Some("NON-BREAKING HYPHEN"),
        '\u{2013}' => Some("EN DASH"),
        '\u{feff}' => Some("ZERO WIDTH NO-BREAK SPACE"),
        '\u{430}' => Some("CYRILLIC SMALL LETTER A"),
        '\u{435}' => Some("CYRILLIC SMALL LETTER IE"),
        '\u{43e}' => Some("CYRILLIC SMALL LETTER O"),
        '\u{440}' => Some("CYRILLIC SMALL LETTER ER"),
        '\u{441}' => Some("CYRILLIC SMALL LETTER ES"),
        '\u{445}' => Some("CYRILLIC SMALL LETTER HA"),
        '\u{456}' => Some("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"),
        '\u{3bf}' => Some("GREEK SMALL LETTER OMICRON"),
        _ => None,
    };
    let code = format!("U+{:04X}", u32::from(c));
    match name {
        Some(name) => format!("{code} {name}"),
        None if c.is_control() => format!("the control character {code}"),
        None => format!("{code} '{c}'"),
    }
}

const MAX_HOST_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Classes, secrets and node groups.
pub fn is_short_name(name: &str) -> bool {
    is_label(name)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Ganeti's `_TAG_REGEX` is `^[\w.+*/:@-]+$`; we keep to its ASCII part so tags survive any locale.
pub fn is_tag_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+*/:@-".contains(&b))
}

pub fn is_valid_tag(tag: &str) -> bool {
    is_tag_text(tag) && tag.len() <= MAX_TAG_LEN
}

/// Names the `did you mean` hint offers: the closest candidate within a small edit distance.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(wrong, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The schema pattern for a class's image: an artifact id exactly as the store makes it
/// (`crate::store::manifest::is_image_id`), so a typo or a cut id fails without a store.
pub const IMAGE_ID_PATTERN: &str = "^sha256-[0-9a-f]{64}$";
pub const IMAGE_ID_EXPECTED: &str = "an image id: sha256- followed by 64 lowercase hex digits, as `ganeti-operator image import` prints it";

/// What to say about `text`, which is not an image id: the one image in the store it
/// was probably cut from, else how it differs from an id.
pub fn image_id_hint(text: &str, store: Option<&BTreeSet<String>>) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let hex = ["sha256-", "sha256:", "sha256_"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(images) = store
        && is_hex
    {
        let mut matches = images.iter().filter(|i| {
            i.strip_prefix("sha256-")
                .is_some_and(|h| h.starts_with(hex))
        });
        if let (Some(only), None) = (matches.next(), matches.next()) {
            return Some(format!("did you mean `{only}`?"));
        }
    }
    if !is_hex {
        return None;
    }
    let id = format!("sha256-{hex}");
    if hex.len() == 64 {
        return Some(format!("write it as `{id}`"));
    }
    if hex.len() < 64 && lower.starts_with("sha256-") {
        return Some(format!(
            "it has {} hex digits, not 64: a cut id? `ganeti-operator image list` prints whole ones",
            hex.len()
        ));
    }
    None
}

/// An image id cut to its first 23 characters (`sha256-` and 16 hex digits), to fit a tag
/// beside a class name.
pub fn short_image(image: &str) -> &str {
    image.get(..23).unwrap_or(image)
}

/// The cluster tag that records a promotion of `class`'s rollout to `image`.
pub fn promotion_tag(class: &str, image: &str) -> String {
    format!("{PROMOTED_TAG_PREFIX}{class}:{}", short_image(image))
}

/// The instance tag of a rollback away from `image`.
pub fn rollback_tag(image: &str) -> String {
    format!("{ROLLBACK_TAG_PREFIX}{}", short_image(image))
}

/// The node tag of an upgrade to `image` under way.
pub fn upgrading_tag(image: &str) -> String {
    format!("{UPGRADING_TAG_PREFIX}{}", short_image(image))
}

/// The node tag of a failed upgrade to `image`.
pub fn upgrade_failed_tag(image: &str) -> String {
    format!("{UPGRADE_FAILED_TAG_PREFIX}{}", short_image(image))
}

/// The node tag of a reboot started at `seconds`.
pub fn rebooted_tag(seconds: u64) -> String {
    format!("{REBOOTED_TAG_PREFIX}{seconds}")
}

/// The cluster tag of a stalled rollout: `kind` is `instances` or `nodes`, and the class
/// entry's fingerprint (24 hex digits) says which entry failed. At most 120 characters.
pub fn stall_tag(kind: &str, class: &str, fingerprint: &str) -> String {
    format!("{STALL_TAG_PREFIX}{kind}:{class}:{fingerprint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(is_host_name("navidrome.home.arpa"));
        assert!(is_host_name("node1"));
        for bad in [
            "",
            "Navidrome",
            "a..b",
            "-a",
            "a-",
            "a_b",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_name_says_what_is_wrong_with_it() {
        let why = |name: &str| why_invalid(name, true).unwrap();
        assert_eq!(
            why("web\u{200b}1.example.org"),
            "it has U+200B ZERO WIDTH SPACE at position 4"
        );
        assert_eq!(
            why("w\u{435}b1.example.org"),
            "it has U+0435 CYRILLIC SMALL LETTER IE at position 2"
        );
        assert_eq!(why("web_1"), "it has '_' at position 4");
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert_eq!(long.len(), 254);
        assert_eq!(
            why(&long),
            "it is 254 characters long; a host name has at most 253"
        );
        assert_eq!(
            why(&"x".repeat(64)),
            format!("`{}` is 64 characters long; at most 63", "x".repeat(64))
        );
        assert_eq!(
            why("a..b"),
            "it has an empty label (a dot at an end, or two in a row)"
        );
        assert_eq!(
            why_invalid("a.b", false).unwrap(),
            "it has '.' at position 2"
        );
        assert_eq!(why_invalid("Web", true), None);
    }

    #[test]
    fn tags_follow_ganeti_alphabet() {
        assert!(is_valid_tag("ganeti-operator:image:sha256-00ff"));
        assert!(is_valid_tag("owner@team/x+y*z"));
        for bad in ["", "a=b", "a b", "é", &"t".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_image_pattern_is_the_store_rule() {
        let schema = serde_json::json!({"type": "string", "pattern": IMAGE_ID_PATTERN});
        let validator = jsonschema::validator_for(&schema).expect("the pattern compiles");
        let full = format!("sha256-{}", "0a".repeat(32));
        for text in [
            full.as_str(),
            "sha256-01",
            "myimage",
            &full.to_uppercase(),
            &format!("{full}0"),
            &format!(" {full}"),
            &full[7..],
        ] {
            assert_eq!(
                validator.is_valid(&serde_json::Value::from(text)),
                crate::store::manifest::is_image_id(text),
                "{text}"
            );
        }
        let store = BTreeSet::from([full.clone()]);
        assert_eq!(image_id_hint("myimage", Some(&store)), None);
        assert_eq!(
            image_id_hint("sha256-0b", Some(&store)),
            Some(
                "it has 2 hex digits, not 64: a cut id? `ganeti-operator image list` prints whole ones"
                    .into()
            )
        );
        assert_eq!(
            image_id_hint("SHA256:0A0a", Some(&store)),
            Some(format!("did you mean `{full}`?"))
        );
        assert_eq!(
            image_id_hint(&full.to_uppercase(), None),
            Some(format!("write it as `{full}`"))
        );
    }

    #[test]
    fn closest_name_hint() {
        let names = ["navidrome", "calibre-web", "ganeti-node"];
        assert_eq!(closest("navidrom", names), Some("navidrome"));
        assert_eq!(closest("calibreweb", names), Some("calibre-web"));
        assert_eq!(closest("postgres", names), None);
    }
}
