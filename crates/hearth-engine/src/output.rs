//! What a sequence may say, step by step: the thinking phase (opened and
//! closed by the model's markers, capped by the budget), the answer's
//! constraint (an llguidance matcher masking the logits), and function
//! calls in the model's own syntax, cut out of the answer text and parsed.

use std::collections::VecDeque;
use std::sync::Arc;

use llguidance::Matcher;
use serde_json::{Map, Value};

use crate::contract::TextKind;

/// The model's thinking markup, as token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkMarkers {
    /// Forced at the start of a thinking reply (`<think>`, `<|channel>thought\n`).
    pub open: Vec<i32>,
    /// Ends the thought (`</think>`, `<channel|>`); forced when the budget is spent.
    pub close: Vec<i32>,
}

/// How thinking runs for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ThinkPlan {
    /// The model does not think (or was told not to): its opening marker is banned.
    Off { banned: Vec<i32> },
    /// Thought first, at most `budget` tokens (markers included).
    On { markers: ThinkMarkers, budget: u32 },
}

/// How a model writes a function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (Qwen, Hermes, the fallback).
    Hermes,
    /// `<tool_call>\n<function=name>\n<parameter=key>\nvalue\n</parameter>\n</function>\n</tool_call>`
    /// (Qwen 3.5, Qwen3-Coder).
    QwenXml,
    /// `<|tool_call>call:name{key:<|"|>text<|"|>,…}<tool_call|>` (Gemma 4).
    Gemma4,
    /// The whole answer is `{"name": …, "parameters": {…}}` (Llama 3.1+).
    Json,
}

impl Dialect {
    pub fn markers(self) -> Option<(&'static str, &'static str)> {
        match self {
            Dialect::Hermes | Dialect::QwenXml => Some(("<tool_call>", "</tool_call>")),
            Dialect::Gemma4 => Some(("<|tool_call>", "<tool_call|>")),
            Dialect::Json => None,
        }
    }

    /// Parses one call's text (between the markers, or the whole answer).
    pub fn parse(self, raw: &str) -> Option<(String, Value)> {
        match self {
            Dialect::Hermes | Dialect::Json => {
                let v: Value = serde_json::from_str(raw.trim()).ok()?;
                let name = v.get("name")?.as_str()?.to_string();
                let args = v
                    .get("arguments")
                    .or_else(|| v.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Object(Map::new()));
                let args = match args {
                    // Some models write the arguments as a JSON string.
                    Value::String(s) => serde_json::from_str(&s).ok()?,
                    other => other,
                };
                args.is_object().then_some((name, args))
            }
            Dialect::QwenXml => {
                let mut rest = raw.trim().strip_prefix("<function=")?;
                let end = rest.find('>')?;
                let name = rest[..end].trim().to_string();
                rest = rest[end + 1..].trim_start();
                let mut args = Map::new();
                while let Some(r) = rest.strip_prefix("<parameter=") {
                    let end = r.find('>')?;
                    let key = r[..end].trim().to_string();
                    let r = &r[end + 1..];
                    let close = r.find("</parameter>")?;
                    let raw = r[..close].strip_prefix('\n').unwrap_or(&r[..close]);
                    let raw = raw.strip_suffix('\n').unwrap_or(raw);
                    // Typed values are written as JSON; anything else is text.
                    let value = match serde_json::from_str::<Value>(raw) {
                        Ok(v) if !v.is_string() => v,
                        _ => Value::String(raw.to_string()),
                    };
                    args.insert(key, value);
                    rest = r[close + "</parameter>".len()..].trim_start();
                }
                let rest = rest.strip_prefix("</function>")?;
                (rest.trim().is_empty() && !name.is_empty()).then_some((name, Value::Object(args)))
            }
            Dialect::Gemma4 => {
                let body = raw.trim().strip_prefix("call:")?;
                let brace = body.find('{')?;
                let name = body[..brace].trim().to_string();
                let (args, rest) = gemma::value(&body[brace..])?;
                (rest.trim().is_empty() && args.is_object() && !name.is_empty())
                    .then_some((name, args))
            }
        }
    }
}

/// Function calling for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolPlan {
    pub dialect: Dialect,
    /// Declared function names (a call of anything else is malformed).
    pub names: Vec<String>,
    /// NONE: the call marker is banned and no call is parsed.
    pub blocked: Option<Vec<i32>>,
}

/// Per request: what every candidate's `Output` starts from.
pub struct OutputPlan {
    pub think: ThinkPlan,
    /// Compiled constraint on the answer (cloned per candidate).
    pub matcher: Option<Matcher>,
    pub tools: Option<ToolPlan>,
    /// End-of-generation tokens (banned inside a thought).
    pub ends: Arc<Vec<i32>>,
    /// Thinking markup, banned in the answer (a thought comes first or never).
    pub markup: Vec<i32>,
    /// The prompt itself ends inside an open thought (templates that always
    /// think, such as DeepSeek R1's, write the opening marker themselves).
    pub opened: bool,
}

impl OutputPlan {
    pub fn plain(ends: Arc<Vec<i32>>) -> Self {
        OutputPlan {
            think: ThinkPlan::Off { banned: Vec::new() },
            matcher: None,
            tools: None,
            ends,
            markup: Vec::new(),
            opened: false,
        }
    }

    pub fn start(&self) -> Output {
        let (phase, forced, tail) = match &self.think {
            // The prompt opened the thought: no second opening; a budget
            // too small for anything but the closing marker closes it at once.
            ThinkPlan::On { markers, budget } if self.opened => (
                Phase::Think { count: 0 },
                if markers.close.len() as u32 >= *budget {
                    markers.close.iter().copied().collect()
                } else {
                    VecDeque::new()
                },
                markers.open.clone(),
            ),
            ThinkPlan::On { markers, .. } => (
                Phase::Think { count: 0 },
                markers.open.iter().copied().collect(),
                Vec::new(),
            ),
            ThinkPlan::Off { .. } => (Phase::Answer, VecDeque::new(), Vec::new()),
        };
        let mut banned = match &self.think {
            ThinkPlan::Off { banned } => banned.clone(),
            ThinkPlan::On { .. } => Vec::new(),
        };
        banned.extend(&self.markup);
        if let Some(b) = self.tools.as_ref().and_then(|t| t.blocked.as_ref()) {
            banned.extend(b);
        }
        Output {
            phase,
            forced,
            think: self.think.clone(),
            matcher: self.matcher.as_ref().map(Matcher::deep_clone),
            banned,
            ends: self.ends.clone(),
            tail,
            failed: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Think { count: u32 },
    Answer,
}

/// What a token was, once accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub kind: TextKind,
    /// Markup (thinking markers): counted, never shown.
    pub markup: bool,
}

/// One sequence's output state.
pub struct Output {
    phase: Phase,
    forced: VecDeque<i32>,
    think: ThinkPlan,
    matcher: Option<Matcher>,
    banned: Vec<i32>,
    ends: Arc<Vec<i32>>,
    /// The thought's last tokens (to see the closing marker).
    tail: Vec<i32>,
    /// The constraint broke (a bug or an impossible grammar state).
    failed: Option<String>,
}

impl Output {
    /// The token that must come next, if any (markers, budget closes).
    pub fn forced(&mut self) -> Option<i32> {
        self.forced.front().copied()
    }

    /// Jump-forward: the tokens the answer's grammar allows as its only
    /// continuation (JSON keys and punctuation, forced call syntax), as
    /// llguidance tokenizes the forced bytes. Not consumed: each goes through
    /// [`Output::accept`] like a sampled token.
    pub fn jump_forward(&mut self) -> Vec<i32> {
        if self.phase != Phase::Answer || self.failed.is_some() || !self.forced.is_empty() {
            return Vec::new();
        }
        let Some(m) = self.matcher.as_mut() else {
            return Vec::new();
        };
        if m.is_stopped() {
            return Vec::new();
        }
        m.compute_ff_tokens()
            .into_iter()
            .filter_map(|t| i32::try_from(t).ok())
            .collect()
    }

    /// No grammar constrains what comes next (speculation drafts only then).
    pub fn unconstrained(&self) -> bool {
        self.matcher.is_none() && self.failed.is_none()
    }

    /// Masks `logits` to what may come next.
    pub fn mask(&mut self, logits: &mut [f32]) {
        if self.phase == Phase::Answer {
            for &t in &self.banned {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        match self.phase {
            Phase::Think { .. } => {
                // The answer's bans (markup, NONE's call marker) wait for the answer.
                // A thought always closes before the turn ends.
                for &t in self.ends.iter() {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            Phase::Answer => {
                let Some(m) = self.matcher.as_mut() else {
                    return;
                };
                match m.compute_mask_or_eos() {
                    Ok(mask) => {
                        let n = logits.len().min(mask.len());
                        mask.iter_unset_entries(|i| {
                            if i < n {
                                logits[i] = f32::NEG_INFINITY;
                            }
                        });
                        if mask.len() < logits.len() {
                            logits[mask.len()..].fill(f32::NEG_INFINITY);
                        }
                    }
                    Err(e) => self.failed = Some(e.to_string()),
                }
            }
        }
    }

    /// Records the token that was picked.
    pub fn accept(&mut self, token: i32) -> Accepted {
        let was_forced = self.forced.front() == Some(&token);
        if was_forced {
            self.forced.pop_front();
        }
        match (&mut self.phase, &self.think) {
            (Phase::Think { count }, ThinkPlan::On { markers, budget }) => {
                *count += 1;
                self.tail.push(token);
                let opening = self.tail.len() <= markers.open.len()
                    && self.tail[..] == markers.open[..self.tail.len()];
                if !markers.close.is_empty() && self.tail.ends_with(&markers.close) {
                    self.phase = Phase::Answer;
                    self.forced.clear();
                    return Accepted {
                        kind: TextKind::Thought,
                        markup: true,
                    };
                }
                if self.forced.is_empty() && *count + markers.close.len() as u32 >= *budget {
                    self.forced.extend(markers.close.iter().copied());
                }
                Accepted {
                    kind: TextKind::Thought,
                    // Forced tokens are markers (the opening, a budget close).
                    markup: opening || was_forced,
                }
            }
            _ => {
                if let Some(m) = self.matcher.as_mut() {
                    if !self.ends.contains(&token) {
                        if let Err(e) = m.consume_token(token as u32) {
                            self.failed = Some(e.to_string());
                        }
                    }
                }
                Accepted {
                    kind: TextKind::Answer,
                    markup: false,
                }
            }
        }
    }

    /// Whether the answer's constraint is complete (only an end may follow).
    pub fn constraint_done(&self) -> bool {
        self.matcher.as_ref().is_some_and(Matcher::is_stopped) && self.failed.is_none()
    }

    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn thinking(&self) -> bool {
        matches!(self.phase, Phase::Think { .. })
    }
}

/// A piece of answer text once function calls are cut out.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// A call's raw text (between the markers, or the whole JSON answer).
    Call(String),
}

/// Cuts function calls out of the answer text as it streams.
pub struct CallScanner {
    dialect: Dialect,
    /// Text held back: a possible start of a marker, a call in progress,
    /// or (JSON dialect) an answer that may be a call.
    held: String,
    in_call: bool,
    /// JSON dialect: still deciding whether the answer is a call.
    undecided: bool,
}

impl CallScanner {
    pub fn new(dialect: Dialect) -> Self {
        CallScanner {
            dialect,
            held: String::new(),
            in_call: false,
            undecided: dialect == Dialect::Json,
        }
    }

    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.held.push_str(text);
        let mut out = Vec::new();
        let Some((open, close)) = self.dialect.markers() else {
            if self.undecided {
                let t = self.held.trim_start();
                if t.is_empty() {
                    return out;
                }
                if t.starts_with('{') {
                    self.in_call = true;
                } else {
                    out.push(Piece::Text(std::mem::take(&mut self.held)));
                }
                self.undecided = false;
            } else if !self.in_call && !self.held.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut self.held)));
            }
            return out;
        };
        loop {
            if self.in_call {
                let Some(at) = self.held.find(close) else {
                    return out;
                };
                out.push(Piece::Call(self.held[..at].to_string()));
                self.held.drain(..at + close.len());
                self.in_call = false;
            } else if let Some(at) = self.held.find(open) {
                if at > 0 {
                    out.push(Piece::Text(self.held[..at].to_string()));
                }
                self.held.drain(..at + open.len());
                self.in_call = true;
            } else {
                // Keep back what could be the start of the marker.
                let keep = (1..open.len().min(self.held.len() + 1))
                    .rev()
                    .find(|&k| {
                        self.held.is_char_boundary(self.held.len() - k)
                            && open.starts_with(&self.held[self.held.len() - k..])
                    })
                    .unwrap_or(0);
                let cut = self.held.len() - keep;
                if cut > 0 {
                    out.push(Piece::Text(self.held[..cut].to_string()));
                    self.held.drain(..cut);
                }
                return out;
            }
        }
    }

    /// The end of the answer: an unterminated call is returned as a call
    /// (JSON dialect: the whole answer), so that it is parsed or reported malformed.
    pub fn finish(&mut self) -> Vec<Piece> {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Vec::new();
        }
        if self.in_call {
            self.in_call = false;
            vec![Piece::Call(held)]
        } else {
            vec![Piece::Text(held)]
        }
    }
}

/// Gemma 4's argument syntax: JSON-like, keys bare, strings between `<|"|>`.
mod gemma {
    use serde_json::{Map, Number, Value};

    const QUOTE: &str = "<|\"|>";

    /// `<|"|>text<|"|>` at the start of `s`: the text and what follows.
    fn quoted(s: &str) -> Option<(String, &str)> {
        let rest = s.strip_prefix(QUOTE)?;
        let end = rest.find(QUOTE)?;
        Some((rest[..end].to_string(), &rest[end + QUOTE.len()..]))
    }

    pub fn value(s: &str) -> Option<(Value, &str)> {
        let s = s.trim_start();
        if s.starts_with(QUOTE) {
            let (text, rest) = quoted(s)?;
            return Some((Value::String(text), rest));
        }
        if let Some(mut rest) = s.strip_prefix('{') {
            let mut map = Map::new();
            loop {
                rest = rest.trim_start();
                if let Some(r) = rest.strip_prefix('}') {
                    return Some((Value::Object(map), r));
                }
                if !map.is_empty() {
                    rest = rest.strip_prefix(',')?.trim_start();
                }
                let (key, r) = if rest.starts_with(QUOTE) {
                    quoted(rest)?
                } else {
                    let end = rest.find(':')?;
                    (rest[..end].trim().to_string(), &rest[end..])
                };
                let r = r.trim_start().strip_prefix(':')?;
                let (v, r) = value(r)?;
                map.insert(key, v);
                rest = r;
            }
        }
        if let Some(mut rest) = s.strip_prefix('[') {
            let mut items = Vec::new();
            loop {
                rest = rest.trim_start();
                if let Some(r) = rest.strip_prefix(']') {
                    return Some((Value::Array(items), r));
                }
                if !items.is_empty() {
                    rest = rest.strip_prefix(',')?;
                }
                let (v, r) = value(rest)?;
                items.push(v);
                rest = r;
            }
        }
        let end = s.find([',', '}', ']']).unwrap_or(s.len());
        let word = s[..end].trim();
        let v = match word {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ => {
                if let Ok(i) = word.parse::<i64>() {
                    Value::Number(i.into())
                } else {
                    Value::Number(Number::from_f64(word.parse::<f64>().ok()?)?)
                }
            }
        };
        Some((v, &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dialects_parse_their_calls() {
        assert_eq!(
            Dialect::Hermes
                .parse("\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"),
            Some(("get_weather".into(), json!({"city": "Paris"})))
        );
        assert_eq!(
            Dialect::Json.parse("{\"name\": \"f\", \"parameters\": {\"x\": [1, 2]}}"),
            Some(("f".into(), json!({"x": [1, 2]})))
        );
        assert_eq!(
            Dialect::Gemma4.parse("call:get_weather{city:<|\"|>Paris, FR<|\"|>,days:3,opts:{metric:true},tags:[<|\"|>a<|\"|>]}"),
            Some((
                "get_weather".into(),
                json!({"city": "Paris, FR", "days": 3, "opts": {"metric": true}, "tags": ["a"]})
            ))
        );
        assert_eq!(
            Dialect::Hermes.parse("{\"name\": \"f\", \"arguments\": 3}"),
            None
        );
        assert_eq!(
            Dialect::QwenXml.parse("\n<function=get_weather>\n<parameter=city>\nLe Mans\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=opts>\n{\"metric\": true}\n</parameter>\n</function>\n"),
            Some((
                "get_weather".into(),
                json!({"city": "Le Mans", "days": 3, "opts": {"metric": true}})
            ))
        );
        assert_eq!(
            Dialect::QwenXml.parse("<function=f>\n<parameter=x>\n1"),
            None
        );
        assert_eq!(Dialect::Hermes.parse("{\"nam"), None);
        assert_eq!(Dialect::Gemma4.parse("call:f{x:"), None);
    }

    #[test]
    fn scanner_cuts_calls_across_pushes() {
        let mut s = CallScanner::new(Dialect::Hermes);
        let mut pieces = Vec::new();
        for chunk in [
            "Let me check.<tool",
            "_call>\n{\"name\": \"f\", ",
            "\"arguments\": {}}\n</tool_call>",
            "<tool_call>{",
        ] {
            pieces.extend(s.push(chunk));
        }
        pieces.extend(s.finish());
        assert_eq!(
            pieces,
            vec![
                Piece::Text("Let me check.".into()),
                Piece::Call("\n{\"name\": \"f\", \"arguments\": {}}\n".into()),
                Piece::Call("{".into()),
            ]
        );
        let mut s = CallScanner::new(Dialect::Json);
        assert!(s.push("  {\"name\"").is_empty());
        assert_eq!(s.finish(), vec![Piece::Call("  {\"name\"".into())]);
        let mut s = CallScanner::new(Dialect::Json);
        assert_eq!(s.push("Hi {"), vec![Piece::Text("Hi {".into())]);
    }

    #[test]
    fn thinking_is_opened_closed_and_capped() {
        let plan = OutputPlan {
            think: ThinkPlan::On {
                markers: ThinkMarkers {
                    open: vec![7],
                    close: vec![8],
                },
                budget: 4,
            },
            matcher: None,
            tools: None,
            ends: Arc::new(vec![0]),
            markup: vec![7, 8],
            opened: false,
        };
        let mut o = plan.start();
        assert_eq!(o.forced(), Some(7));
        assert!(o.accept(7).markup);
        let mut logits = vec![1.0; 10];
        o.mask(&mut logits);
        assert_eq!(logits[0], f32::NEG_INFINITY, "no end inside a thought");
        assert_eq!(o.forced(), None);
        assert_eq!(
            o.accept(3),
            Accepted {
                kind: TextKind::Thought,
                markup: false
            }
        );
        assert_eq!(o.accept(4).kind, TextKind::Thought);
        assert_eq!(o.forced(), Some(8), "budget 4: open + 2 + close");
        assert!(o.accept(8).markup);
        assert!(!o.thinking());
        assert_eq!(o.accept(5).kind, TextKind::Answer);
        // The model closing by itself ends the thought too.
        let mut o = plan.start();
        o.accept(7);
        assert!(o.accept(8).markup);
        assert!(!o.thinking());
        // A prompt that opened the thought: no second opening, and the
        // first token is thought text, not markup.
        let mut plan = plan;
        plan.opened = true;
        let mut o = plan.start();
        assert_eq!(o.forced(), None);
        assert_eq!(
            o.accept(3),
            Accepted {
                kind: TextKind::Thought,
                markup: false
            }
        );
        // ... and with budget 0 (thinking off) it is closed at once.
        plan.think = ThinkPlan::On {
            markers: ThinkMarkers {
                open: vec![7],
                close: vec![8],
            },
            budget: 0,
        };
        let mut o = plan.start();
        assert_eq!(o.forced(), Some(8));
        assert!(o.accept(8).markup);
        assert!(!o.thinking());
    }
}
