//! A server-sent events reader (the WHATWG `text/event-stream` format, the subset servers
//! send: `event:`, `data:`, comments, blank-line dispatch). Bytes come from the network:
//! lines and events are bounded, and invalid UTF-8 is an error, never a panic.

/// Longest line or event accepted.
pub const MAX_EVENT: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (default `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why the stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line or event longer than [`MAX_EVENT`].
    #[error("event stream line or event longer than {MAX_EVENT} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("event stream is not UTF-8")]
    NotUtf8,
}

/// Incremental parser: feed chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Parses `chunk`, returning every event it completes.
    ///
    /// # Errors
    /// [`SseError`]: the stream must be dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                if self.line.len() >= MAX_EVENT {
                    return Err(SseError::TooLong);
                }
                self.line.push(b);
                continue;
            }
            let mut line = core::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    out.push(SseEvent {
                        event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                        data,
                    });
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => {
                    let data = self.data.get_or_insert_with(String::new);
                    if data.len().saturating_add(value.len()) >= MAX_EVENT {
                        return Err(SseError::TooLong);
                    }
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks() {
        let mut p = SseParser::default();
        let mut all = Vec::new();
        for chunk in [
            &b": keep-alive\n\nevent: tr"[..],
            b"ust\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n",
            b"\nevent: lonely\n\n",
        ] {
            all.extend(p.push(chunk).unwrap());
        }
        assert_eq!(
            all,
            vec![
                SseEvent {
                    event: "trust".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn bounded_and_utf8() {
        let mut p = SseParser::default();
        assert_eq!(p.push(&[0xff, b'\n']), Err(SseError::NotUtf8));
        let mut p = SseParser::default();
        assert_eq!(p.push(&vec![b'a'; MAX_EVENT + 1]), Err(SseError::TooLong));
    }
}
