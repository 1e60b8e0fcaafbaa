//! The INI dialect of `nova.conf` as oslo.config reads it: `[section]` headers,
//! `key = value` or `key=value`, whole-line comments (`#`, `;`), continuation lines
//! (indented), repeated keys kept in order (MultiStrOpt). Values are verbatim: like
//! oslo.config, `a = b # c` has the value `b # c`.

use std::collections::BTreeMap;

/// One `key = value` with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The value, trimmed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// Section (lower-cased `DEFAULT` stays `DEFAULT`) → key → every value given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// The sections.
    pub sections: BTreeMap<String, BTreeMap<String, Vec<Item>>>,
}

/// A syntax error, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// 1-based.
    pub line: usize,
    /// What.
    pub message: String,
}

impl Ini {
    /// Parses a whole file.
    ///
    /// # Errors
    /// A line that is neither a section, an option, a comment nor a continuation.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut ini = Self::default();
        let mut section: Option<String> = None;
        let mut last: Option<(String, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: &str| SyntaxError {
                line,
                message: message.to_owned(),
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                // A continuation of the previous value.
                let (s, k) = last
                    .as_ref()
                    .ok_or_else(|| err("indented line outside an option"))?;
                if let Some(item) = ini
                    .sections
                    .get_mut(s)
                    .and_then(|sec| sec.get_mut(k))
                    .and_then(|items| items.last_mut())
                {
                    item.value.push('\n');
                    item.value.push_str(trimmed);
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[') {
                let name = name
                    .strip_suffix(']')
                    .ok_or_else(|| err("a section header must end with ]"))?
                    .trim();
                if name.is_empty() {
                    return Err(err("empty section name"));
                }
                section = Some(name.to_owned());
                ini.sections.entry(name.to_owned()).or_default();
                last = None;
                continue;
            }
            let s = section
                .clone()
                .ok_or_else(|| err("an option before any [section]"))?;
            let (key, value) = trimmed
                .split_once(['=', ':'])
                .ok_or_else(|| err("expected key = value"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(err("an option without a name"));
            }
            ini.sections
                .entry(s.clone())
                .or_default()
                .entry(key.to_owned())
                .or_default()
                .push(Item {
                    value: value.trim().to_owned(),
                    line,
                });
            last = Some((s, key.to_owned()));
        }
        Ok(ini)
    }

    /// The last value of `key` in `section`.
    #[must_use]
    pub fn get(&self, section: &str, key: &str) -> Option<&Item> {
        self.sections.get(section)?.get(key)?.last()
    }

    /// Every value of `key` in `section`.
    #[must_use]
    pub fn all(&self, section: &str, key: &str) -> &[Item] {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_dialect() {
        let ini = Ini::parse(
            "# top comment\n[DEFAULT]\na=1\nb = two words # not a comment\n; also a comment\n\
             multi = x\nmulti = y\nlong = first\n  second\n[other]\nc: 3\n",
        )
        .unwrap();
        assert_eq!(ini.get("DEFAULT", "a").unwrap().value, "1");
        assert_eq!(
            ini.get("DEFAULT", "b").unwrap().value,
            "two words # not a comment"
        );
        assert_eq!(ini.all("DEFAULT", "multi").len(), 2);
        assert_eq!(ini.get("DEFAULT", "multi").unwrap().value, "y");
        assert_eq!(ini.get("DEFAULT", "long").unwrap().value, "first\nsecond");
        assert_eq!(ini.get("other", "c").unwrap().line, 11);
        for (bad, line) in [
            ("a = 1\n", 1),
            ("[DEFAULT\n", 1),
            ("[DEFAULT]\nnovalue\n", 2),
            ("[]\n", 1),
            ("[DEFAULT]\n=1\n", 2),
        ] {
            assert_eq!(Ini::parse(bad).unwrap_err().line, line, "{bad:?}");
        }
    }
}
