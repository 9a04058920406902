//! The one check for URLs in the desired state (`cluster.rapiUrl`, `cluster.store.baseUrl`,
//! a class's `rotation.healthCheck.url`), and the redaction of credentials in any text
//! quoted back to the user. The schema checks only the scheme, so that every other
//! problem gets this module's words, and none of them repeats the URL.

use std::borrow::Cow;

/// What is wrong with a URL. The messages never quote it: it may carry a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("it carries credentials (`user:password@`), which do not belong in the desired state")]
    Credentials,
    #[error("it names no host")]
    NoHost,
    #[error("it has a query or fragment, which cannot be extended with a path")]
    QueryOrFragment,
}

/// Whether a URL may end in `?query` or `#fragment`: a health check may, a base that
/// paths are appended to may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Allowed,
    Refused,
}

/// Checks what the schema does not: a host, no credentials, and (for a base URL) no
/// query or fragment. The scheme is the schema's business.
pub fn check(url: &str, query: Query) -> Result<(), UrlProblem> {
    let Some((authority, rest)) = split(url) else {
        return Err(UrlProblem::NoHost);
    };
    // Anywhere before a query, not only in the authority: a password with an unescaped
    // `/` in it would otherwise pass for a host and a path.
    let before_query = url.split(['?', '#']).next().unwrap_or(url);
    if before_query.contains('@') {
        return Err(UrlProblem::Credentials);
    }
    if host_of(authority).is_empty() {
        return Err(UrlProblem::NoHost);
    }
    if query == Query::Refused && rest.contains(['?', '#']) {
        return Err(UrlProblem::QueryOrFragment);
    }
    Ok(())
}

/// The authority of `scheme://authority/rest`, and the rest.
fn split(url: &str) -> Option<(&str, &str)> {
    let after = url.split_once("://")?.1;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some(after.split_at(end))
}

/// The host of an authority without userinfo: `[::1]:80` gives `[::1]`, `:80` nothing.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority;
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _port)| host)
}

/// `text` with the userinfo of every `scheme://user:password@host` in it replaced by
/// `***`, for quoting a line or a value back to the user.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // As far as `check` looks for credentials (a password may hold a `/`).
        let end = after
            .find(|c: char| "?#\"'".contains(c) || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("***");
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_needs_a_host_and_no_credentials() {
        for good in [
            "https://cluster.example.org:5080",
            "https://[::1]:5080/",
            "http://{host}:8080/health?full=1",
        ] {
            assert_eq!(check(good, Query::Allowed), Ok(()), "{good}");
        }
        for (bad, problem) in [
            ("https://", UrlProblem::NoHost),
            ("https://:5080", UrlProblem::NoHost),
            ("http:///health", UrlProblem::NoHost),
            ("https://user:pw@host", UrlProblem::Credentials),
            ("https://user@host/x", UrlProblem::Credentials),
            ("https://user:pa/ss@host", UrlProblem::Credentials),
        ] {
            assert_eq!(check(bad, Query::Allowed), Err(problem), "{bad}");
        }
        assert_eq!(
            check("http://s/x?y", Query::Refused),
            Err(UrlProblem::QueryOrFragment)
        );
    }

    #[test]
    fn redaction_hides_only_the_userinfo() {
        assert_eq!(
            redact(r#"  rapiUrl: "https://admin:s3cret@c.example.org:5080/x" # a@b"#),
            r#"  rapiUrl: "https://***@c.example.org:5080/x" # a@b"#
        );
        assert_eq!(redact("url: https://u:pa/ss@h/p"), "url: https://***@h/p");
        assert_eq!(
            redact("a: http://u:p@h, b: https://h2"),
            "a: http://***@h, b: https://h2"
        );
        assert_eq!(redact("mail: a@b.c"), "mail: a@b.c");
    }
}
