//! Server-sent events as the Gemini API frames them: `data: {json}` events
//! separated by a blank line (`\n\n`, `\r\r` or `\r\n\r\n`). A `data:` event
//! whose JSON is `{"error": {...}}` is a mid-stream error; other events
//! (comments, `event:` lines) carry nothing for us and are skipped.

use serde::de::DeserializeOwned;

use crate::error::{error_value, Error};

/// Incremental decoder: feed bytes as they arrive, take complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes and returns the payloads of the events now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = next_boundary(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
            if let Some(data) = payload(&event) {
                out.push(data);
            }
        }
        out
    }

    /// At the end of the body: the last event if it was not terminated by a
    /// blank line, or an error for leftover bytes that are not an event.
    pub fn finish(&mut self) -> Result<Option<String>, Error> {
        let rest = std::mem::take(&mut self.buf);
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        match payload(&rest) {
            Some(data) => Ok(Some(data)),
            None => Err(Error::Protocol(format!(
                "incomplete event at the end of the stream: {}",
                String::from_utf8_lossy(&rest)
            ))),
        }
    }
}

/// The earliest event separator: (offset, separator length).
fn next_boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
        if let Some(at) = buf.windows(sep.len()).position(|w| w == sep) {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, sep.len()));
            }
        }
    }
    best
}

/// The data of one event: its `data:` lines joined with newlines.
fn payload(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let data: Vec<&str> = text
        .split(['\n', '\r'])
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        None
    } else {
        Some(data.join("\n"))
    }
}

/// Parses one event's data: an error event becomes `Error::Api`.
pub fn parse_event<T: DeserializeOwned>(data: &str) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_str(data)
        .map_err(|e| Error::Protocol(format!("stream event is not JSON ({e}): {data}")))?;
    if let Some(err) = error_value(&value) {
        return Err(err);
    }
    serde_json::from_value(value)
        .map_err(|e| Error::Protocol(format!("unexpected stream event ({e}): {data}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_every_separator_and_across_pushes() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: {\"a\":1}\r").is_empty());
        assert_eq!(
            d.push(b"\n\r\ndata: {\"a\":2}\n\n"),
            vec!["{\"a\":1}", "{\"a\":2}"]
        );
        assert_eq!(d.push(b"data: 3\r\rdata:4\n\n"), vec!["3", "4"]);
        assert_eq!(d.finish().expect("clean end"), None);
    }

    #[test]
    fn skips_comments_and_keeps_an_unterminated_last_event() {
        let mut d = SseDecoder::new();
        assert!(d.push(b": keep-alive\n\n").is_empty());
        assert!(d.push(b"data: {\"x\":true}").is_empty());
        assert_eq!(d.finish().expect("event"), Some("{\"x\":true}".into()));
        let mut d = SseDecoder::new();
        d.push(b"garbage");
        assert!(d.finish().is_err());
    }

    #[test]
    fn error_events_become_api_errors() {
        let data = r#"{"error":{"code":500,"message":"engine failed","status":"INTERNAL"}}"#;
        let err = parse_event::<serde_json::Value>(data).expect_err("error event");
        match err {
            Error::Api {
                code,
                status,
                message,
                ..
            } => {
                assert_eq!((code, status.as_str()), (500, "INTERNAL"));
                assert_eq!(message, "engine failed");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_event::<serde_json::Value>("{\"error\": \"not an object\"}").is_ok());
        assert!(parse_event::<serde_json::Value>("[DONE]").is_err());
    }
}
