//! Reading typed options out of the parsed file: the first of several names that is set
//! (newest name first), parsed, with errors naming `[section] key (line N)`.

use super::ini::{Ini, Item};
use super::{ConfigError, DEFAULT, TRUSTPOOL};

pub(super) struct Reader<'a> {
    pub(super) ini: &'a Ini,
    pub(super) notes: Vec<String>,
}

pub(super) fn where_(section: &str, key: &str, item: &Item) -> String {
    format!("[{section}] {key} (line {})", item.line)
}

impl Reader<'_> {
    /// The first of `names` (section, key) that is set, newest name first.
    pub(super) fn find(
        &self,
        names: &[(&'static str, &'static str)],
    ) -> Option<(&'static str, &'static str, &Item)> {
        names
            .iter()
            .find_map(|&(s, k)| self.ini.get(s, k).map(|item| (s, k, item)))
    }

    pub(super) fn string(&self, names: &[(&'static str, &'static str)]) -> Option<String> {
        self.find(names)
            .map(|(_, _, i)| i.value.clone())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn parsed<T: std::str::FromStr>(
        &self,
        names: &[(&'static str, &'static str)],
        what: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.find(names) {
            None => Ok(None),
            Some((s, k, item)) => item.value.parse().map(Some).map_err(|_| {
                ConfigError(format!(
                    "{}: {:?} is not {what}",
                    where_(s, k, item),
                    item.value
                ))
            }),
        }
    }

    pub(super) fn boolean(
        &self,
        names: &[(&'static str, &'static str)],
    ) -> Result<Option<bool>, ConfigError> {
        match self.find(names) {
            None => Ok(None),
            Some((s, k, item)) => match item.value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "off" | "0" => Ok(Some(false)),
                _ => Err(ConfigError(format!(
                    "{}: {:?} is not a boolean",
                    where_(s, k, item),
                    item.value
                ))),
            },
        }
    }

    pub(super) fn ratio(&self, key: &'static str, default: f64) -> Result<f64, ConfigError> {
        let value: Option<f64> = self.parsed(&[(DEFAULT, key)], "a number")?;
        match value {
            // Liberty–Rocky: 0.0 means "use the default".
            None => Ok(default),
            Some(0.0) => Ok(default),
            Some(v) if v > 0.0 && v.is_finite() => Ok(v),
            Some(_) => Err(ConfigError(format!("[DEFAULT] {key} must be positive"))),
        }
    }

    pub(super) fn hashes(&self, key: &'static str) -> Result<Vec<Vec<u8>>, ConfigError> {
        let mut out = Vec::new();
        for item in self.ini.all(TRUSTPOOL, key) {
            for h in item
                .value
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
            {
                let bytes = trustpool_api::bytes::from_hex(h)
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "{}: not a hex SHA-256 (64 hex digits)",
                            where_(TRUSTPOOL, key, item)
                        ))
                    })?;
                out.push(bytes);
            }
        }
        Ok(out)
    }
}
