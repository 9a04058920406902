//! Whether a secret file is really an age file: the header line, at least one recipient
//! stanza, the header MAC and a payload (age-encryption.org/v1). Only the start of the
//! file is needed; nothing is decrypted. The ASCII armor is decoded first.

use base64::Engine as _;

const VERSION_LINE: &[u8] = b"age-encryption.org/v1";
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";
/// The payload's nonce and the tag of its (possibly empty) first chunk.
const MIN_PAYLOAD: usize = 16 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AgeProblem {
    #[error("it does not start with `age-encryption.org/v1`")]
    NoVersionLine,
    #[error("its header has no recipient stanza (`-> …`)")]
    NoRecipient,
    #[error("its header does not end with a MAC line (`--- …`)")]
    NoMac,
    #[error("it has a header but no encrypted body")]
    NoPayload,
    #[error("its ASCII armor is not valid base64")]
    BadArmor,
}

/// Checks the first bytes of a file (up to `SECRET_HEAD_BYTES`).
pub fn check(head: &[u8]) -> Result<(), AgeProblem> {
    let text_start = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    if text_start.starts_with(ARMOR_BEGIN.as_bytes()) {
        return check_binary(&dearmor(text_start)?);
    }
    check_binary(head)
}

fn dearmor(armored: &[u8]) -> Result<Vec<u8>, AgeProblem> {
    let text = String::from_utf8_lossy(armored);
    let mut base64 = String::new();
    for line in text.lines().skip(1) {
        let line = line.trim();
        if line == ARMOR_END {
            break;
        }
        base64.push_str(line);
    }
    // A head cut mid-line leaves a partial base64 group; it adds nothing to the check.
    base64.truncate(base64.len() / 4 * 4);
    base64::engine::general_purpose::STANDARD
        .decode(base64.as_bytes())
        .map_err(|_| AgeProblem::BadArmor)
}

fn check_binary(bytes: &[u8]) -> Result<(), AgeProblem> {
    let mut lines = bytes.split(|b| *b == b'\n');
    if lines.next() != Some(VERSION_LINE) {
        return Err(AgeProblem::NoVersionLine);
    }
    let mut offset = VERSION_LINE.len() + 1;
    let mut stanzas = 0;
    for line in lines {
        offset += line.len() + 1;
        if let Some(args) = line.strip_prefix(b"-> ") {
            if args.iter().all(u8::is_ascii_whitespace) {
                return Err(AgeProblem::NoRecipient);
            }
            stanzas += 1;
        } else if line.starts_with(b"---") {
            if stanzas == 0 {
                return Err(AgeProblem::NoRecipient);
            }
            let payload = bytes.len().saturating_sub(offset);
            return if payload >= MIN_PAYLOAD {
                Ok(())
            } else {
                Err(AgeProblem::NoPayload)
            };
        } else if stanzas == 0 {
            return Err(AgeProblem::NoRecipient);
        }
    }
    Err(if stanzas == 0 {
        AgeProblem::NoRecipient
    } else {
        AgeProblem::NoMac
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_age_file() -> Vec<u8> {
        let mut file = b"age-encryption.org/v1\n-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nEmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n".to_vec();
        file.extend_from_slice(&[0x5a; 48]);
        file
    }

    #[test]
    fn a_real_age_file_passes_binary_and_armored() {
        let file = real_age_file();
        assert_eq!(check(&file), Ok(()));
        let body = base64::engine::general_purpose::STANDARD.encode(&file);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let armored = format!("{ARMOR_BEGIN}\n{}\n{ARMOR_END}\n", lines.join("\n"));
        assert_eq!(check(armored.as_bytes()), Ok(()));
    }

    #[test]
    fn a_header_alone_or_a_plaintext_fails() {
        assert_eq!(
            check(b"age-encryption.org/v1\n"),
            Err(AgeProblem::NoRecipient)
        );
        assert_eq!(
            check(b"age-encryption.org/v1"),
            Err(AgeProblem::NoRecipient)
        );
        assert_eq!(check(b"password=hunter2\n"), Err(AgeProblem::NoVersionLine));
        assert_eq!(
            check(b"age-encryption.org/v1\n--- AAAA\n"),
            Err(AgeProblem::NoRecipient)
        );
        assert_eq!(
            check(b"age-encryption.org/v1\n-> X25519 abc\nAAAA\n"),
            Err(AgeProblem::NoMac)
        );
        let file = real_age_file();
        let header_only = &file[..file.len() - 48];
        assert_eq!(check(header_only), Err(AgeProblem::NoPayload));
        let armored = format!("{ARMOR_BEGIN}\n{ARMOR_END}\n");
        assert_eq!(check(armored.as_bytes()), Err(AgeProblem::NoVersionLine));
    }
}
