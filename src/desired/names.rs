//! Naming rules: Ganeti host names for nodes and instances, short names for the rest,
//! and Ganeti's tag alphabet for anything that ends up in a tag.

/// Every tag the operator owns starts with this; users may not write it themselves.
pub const TAG_PREFIX: &str = "ganeti-operator:";
pub const MANAGED_TAG: &str = "ganeti-operator:managed";
pub const CLASS_TAG_PREFIX: &str = "ganeti-operator:class:";
/// What a host runs and was proven healthy on.
pub const IMAGE_TAG_PREFIX: &str = "ganeti-operator:image:";
/// Set while the desired entry says `protect: true`. It stays on the instance when the
/// entry is removed, so that pruning still refuses to delete it.
pub const PROTECTED_TAG: &str = "ganeti-operator:protected";
/// Ganeti's limit on a tag's length (`constants.MAX_TAG_LEN`).
pub const MAX_TAG_LEN: usize = 128;

pub const HOST_NAME_EXPECTED: &str = "a host name: lowercase letters, digits and '-', in dot-separated labels of at most 63 characters";
pub const SHORT_NAME_EXPECTED: &str = "a short name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
pub const TAG_EXPECTED: &str = "Ganeti tag characters only: letters, digits and . + * / : @ _ - (no spaces, no '='), at most 128 characters";

/// Nodes and instances: what Ganeti accepts as a node or instance name (a DNS host name).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_label)
}

/// Classes, secrets and node groups.
pub fn is_short_name(name: &str) -> bool {
    is_label(name)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
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
    fn tags_follow_ganeti_alphabet() {
        assert!(is_valid_tag("ganeti-operator:image:sha256-00ff"));
        assert!(is_valid_tag("owner@team/x+y*z"));
        for bad in ["", "a=b", "a b", "é", &"t".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn closest_name_hint() {
        let names = ["navidrome", "calibre-web", "ganeti-node"];
        assert_eq!(closest("navidrom", names), Some("navidrome"));
        assert_eq!(closest("calibreweb", names), Some("calibre-web"));
        assert_eq!(closest("postgres", names), None);
    }
}
