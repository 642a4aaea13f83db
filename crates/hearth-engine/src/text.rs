//! Text assembly: UTF-8 from token bytes, and stop sequences matched on text.

/// Turns token byte pieces into text without ever splitting a UTF-8
/// character: an incomplete tail is held until the next piece completes it.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds a token's bytes and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: the prefix up to valid_up_to is valid UTF-8.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Invalid bytes: replace them, as a tokenizer decode would.
                        Some(len) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + len);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: an incomplete tail becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// What the stop matcher lets through.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StopOutput {
    /// Text safe to emit now.
    pub text: String,
    /// A stop sequence matched; `text` ends right before it.
    pub stopped: bool,
}

/// Matches stop sequences on the generated text. Text that could still turn
/// into a stop sequence is held back; a matched stop sequence is never emitted.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        StopMatcher {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> StopOutput {
        self.held.push_str(text);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let text = self.held[..at].to_string();
            self.held.clear();
            return StopOutput {
                text,
                stopped: true,
            };
        }
        let keep = self.longest_partial_suffix();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        StopOutput {
            text,
            stopped: false,
        }
    }

    /// Releases what was held back (the generation ended without a match).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length in bytes of the longest suffix of `held` that is a proper
    /// prefix of some stop sequence (always on a char boundary).
    fn longest_partial_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in self.held.char_indices() {
                let suffix = &self.held[i..];
                if suffix.len() < stop.len() && stop.starts_with(suffix) {
                    best = best.max(suffix.len());
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_never_split() {
        let mut a = Utf8Assembler::default();
        let bytes = "é日🙂".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&a.push(&[*b]));
        }
        assert_eq!(out, "é日🙂");
        assert_eq!(a.push(&[0xE6]), "");
        assert_eq!(a.finish(), "\u{FFFD}");
        assert_eq!(a.push(&[0xFF, b'a']), "\u{FFFD}a");
    }

    #[test]
    fn stop_sequences_are_held_and_excluded() {
        let mut m = StopMatcher::new(vec!["END".into(), "\n\n".into()]);
        assert_eq!(m.push("Hello E").text, "Hello ");
        assert_eq!(m.push("N").text, "");
        let out = m.push("D and more");
        assert_eq!(
            out,
            StopOutput {
                text: String::new(),
                stopped: true
            }
        );
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("EN").text, "");
        assert_eq!(m.push("x").text, "ENx");
        assert_eq!(m.push("E").text, "");
        assert_eq!(m.finish(), "E");
        let mut m = StopMatcher::new(vec!["b\n\n".into(), "\n\n".into()]);
        let out = m.push("a\n\nb");
        assert_eq!(
            out,
            StopOutput {
                text: "a".into(),
                stopped: true
            }
        );
    }

    #[test]
    fn multibyte_text_holds_on_char_boundaries() {
        let mut m = StopMatcher::new(vec!["日本語".into()]);
        assert_eq!(m.push("é日本").text, "é");
        assert_eq!(m.push("x").text, "日本x");
    }
}
