//! Host names and aliases: what every server accepts as a compute host's name, checked in
//! one place so the attestation server, the scheduler and the CLI refuse the same things.
//!
//! A name is a DNS name (RFC 1035 §2.3.4 lengths, RFC 1123 §2.1 letters, digits and
//! hyphens; underscores too, as service labels and some hypervisor names have them): at
//! most 253 bytes, labels of 1–63 bytes separated by single dots. Nothing else: no `/`,
//! `?`, `#` or `%` (a name goes into URL paths), no spaces, control characters, escapes or
//! right-to-left overrides (a name goes into logs, terminals and pages), no empty label
//! (so never `.` or `..`).

/// Longest host name or alias, in bytes (RFC 1035: 255 on the wire, 253 as text).
pub const MAX_NAME_LEN: usize = 253;

/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Most aliases one host may have.
pub const MAX_ALIASES: usize = 16;

/// Why a name was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NameError {
    /// The field (`host_name`, `aliases[2]`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks one host name or alias.
///
/// # Errors
/// A [`NameError`] naming `field` and what is wrong.
pub fn check_name(name: &str, field: &str) -> Result<(), NameError> {
    let fail = |reason: String| {
        Err(NameError {
            field: field.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return fail(format!(
            "is {} bytes; a DNS name has at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return fail(format!(
            "{} is not allowed: only letters, digits, '-', '_' and '.' (a DNS name)",
            describe(c)
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return fail("has an empty label (a leading, trailing or double '.')".to_owned());
        }
        if label.len() > MAX_LABEL_LEN {
            return fail(format!(
                "label {label:?} is {} bytes; a DNS label has at most {MAX_LABEL_LEN}",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return fail(format!(
                "label {label:?} starts or ends with '-' (not a DNS label)"
            ));
        }
    }
    Ok(())
}

/// Checks a host's aliases: at most [`MAX_ALIASES`], each a name, none twice and none equal
/// to the host's own name.
///
/// # Errors
/// A [`NameError`] naming the field (`aliases` or `aliases[i]`).
pub fn check_aliases(host_name: &str, aliases: &[String]) -> Result<(), NameError> {
    if aliases.len() > MAX_ALIASES {
        return Err(NameError {
            field: "aliases".to_owned(),
            reason: format!(
                "{} aliases; a host has at most {MAX_ALIASES}",
                aliases.len()
            ),
        });
    }
    for (i, alias) in aliases.iter().enumerate() {
        let field = format!("aliases[{i}]");
        check_name(alias, &field)?;
        if alias == host_name || aliases.iter().take(i).any(|a| a == alias) {
            return Err(NameError {
                field,
                reason: format!("{alias} is listed twice (or is the host's own name)"),
            });
        }
    }
    Ok(())
}

/// A character as an operator can read it in an error, even an invisible one.
fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("{c:?}")
    } else {
        format!("character U+{:04X}", u32::from(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_pass() {
        for good in [
            "compute-1",
            "compute-1.example.com",
            "node_7.rack-2",
            "a",
            "1.2.3.4",
            &format!(
                "{}.{}.{}.{}",
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61)
            ),
        ] {
            assert_eq!(check_name(good, "host_name"), Ok(()), "{good}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_the_field_and_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("x/../compute-1", "'/'"),
            ("compute-1?x", "'?'"),
            ("compute-1#", "'#'"),
            ("a%2fb", "'%'"),
            ("compute 1", "U+0020"),
            ("compute-1\n", "U+000A"),
            ("\u{1b}[31mcompute-1", "U+001B"),
            ("compute-\u{202e}1", "U+202E"),
            ("..", "empty label"),
            (".compute-1", "empty label"),
            ("compute-1.", "empty label"),
            ("a..b", "empty label"),
            ("-a.b", "starts or ends"),
            (&"a".repeat(64), "at most 63"),
            (
                &format!("{}.{}", "a".repeat(63), "b".repeat(190)),
                "at most 253",
            ),
        ] {
            let err = check_name(bad, "host_name").unwrap_err();
            assert_eq!(err.field, "host_name");
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn aliases_are_bounded_distinct_and_dns_shaped() {
        let ok: Vec<String> = (0..16).map(|i| format!("h{i}")).collect();
        assert_eq!(check_aliases("host", &ok), Ok(()));
        let many: Vec<String> = (0..100_000).map(|i| format!("h{i}")).collect();
        let err = check_aliases("host", &many).unwrap_err();
        assert!(err.to_string().contains("at most 16"), "{err}");
        let err = check_aliases("host", &["a".to_owned(), "b/c".to_owned()]).unwrap_err();
        assert_eq!(err.field, "aliases[1]");
        let err = check_aliases("host", &["a".to_owned(), "a".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(check_aliases("host", &["host".to_owned()]).is_err());
    }
}
