//! A deterministic engine for tests of the layers above the engine (HTTP,
//! validation, conversion). It is no model: its "logits" are a hash of the
//! context over a small word vocabulary. They go through the real sampler,
//! stop matcher and event contract, so every sampling field behaves as it
//! does with a real model. Behind the `testing` feature, never shipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::contract::*;
use crate::sampler::Sampler;
use crate::text::StopMatcher;

const WORDS: &[&str] = &[
    "the", "model", "answers", "with", "words", "from", "a", "small", "list", "and", "stops",
    "when", "end", "token", "wins", "light", "river", "stone", "cat", "Neko", "purrs", "AI",
    "learns", "patterns", "data", "yes", "no", "maybe", "blue", "green", "é", "日本", "🙂",
    "think", "hearth", "fire", "warm", "tea", "cup", "book", "sky", "rain", "sun", "moon", "star",
    "road", "home", "door",
];
const EOS: i32 = WORDS.len() as i32;
/// Thought words emitted before the answer when the model "thinks".
const THOUGHT_WORDS: u32 = 4;

/// Options of the deterministic engine.
#[derive(Debug, Clone)]
pub struct TestEngineOptions {
    pub info: ModelInfo,
    /// Pause between tokens (to observe streaming and cancellation).
    pub token_delay: Duration,
    /// Never sample the end token: answers run to maxOutputTokens.
    pub endless: bool,
}

impl TestEngineOptions {
    pub fn named(id: &str) -> Self {
        TestEngineOptions {
            info: ModelInfo {
                id: id.to_string(),
                display_name: format!("Deterministic test engine ({id})"),
                description: "Hash-of-context logits over a word list; for tests only.".into(),
                context_length: 4096,
                max_output_tokens: 1024,
                capabilities: Capabilities::default(),
                sampling: Default::default(),
            },
            token_delay: Duration::ZERO,
            endless: false,
        }
    }
}

pub struct TestEngine {
    opts: TestEngineOptions,
    cancelled: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

impl TestEngine {
    pub fn new(opts: TestEngineOptions) -> Self {
        TestEngine {
            opts,
            cancelled: Arc::default(),
            started: Arc::default(),
        }
    }

    /// Generations that stopped because their receiver was dropped.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Generations started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// The prompt as text: what a chat template would produce.
    pub fn render(prompt: &Prompt) -> String {
        let mut out = String::new();
        if let Some(s) = &prompt.system {
            out.push_str(&format!("<system> {s}\n"));
        }
        for tool in &prompt.tools {
            out.push_str(&format!("<tool> {} {}\n", tool.name, tool.description));
        }
        for turn in &prompt.turns {
            out.push_str(match turn.role {
                Role::User => "<user>",
                Role::Model => "<model>",
            });
            for seg in &turn.segments {
                match seg {
                    Segment::Text(t) => out.push_str(&format!(" {t}")),
                    Segment::Media { mime_type, data } => {
                        out.push_str(&format!(" [{mime_type} {} bytes]", data.len()))
                    }
                    Segment::ToolCall { name, args, .. } => {
                        out.push_str(&format!(" call {name} {args}"))
                    }
                    Segment::ToolResult { name, response, .. } => {
                        out.push_str(&format!(" result {name} {response}"))
                    }
                    Segment::Document(parts) => {
                        for part in parts {
                            match part {
                                DocumentPart::Text(t) => out.push_str(&format!(" {t}")),
                                DocumentPart::Image(d) => {
                                    out.push_str(&format!(" [page {} bytes]", d.len()))
                                }
                            }
                        }
                    }
                }
            }
            out.push('\n');
        }
        out.push_str("<model>");
        out
    }
}

/// One token per whitespace-separated word.
fn count(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}

fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Deterministic logits for the next token after `context` + `generated`.
fn logits(context_hash: u64, generated: &[i32]) -> Vec<f32> {
    let mut h = context_hash;
    for t in generated {
        h = fnv(&t.to_le_bytes(), h);
    }
    let mut out = Vec::with_capacity(WORDS.len() + 1);
    for i in 0..WORDS.len() {
        let x = fnv(&(i as u32).to_le_bytes(), h);
        out.push(((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0);
    }
    // The end token grows likelier with length: answers end by themselves.
    out.push(-3.0 + 0.5 * generated.len() as f32);
    out
}

impl Engine for TestEngine {
    fn info(&self) -> &ModelInfo {
        &self.opts.info
    }

    fn count_tokens(&self, prompt: &Prompt) -> Result<PromptTokens, EngineError> {
        Ok(PromptTokens {
            total: count(&Self::render(prompt)),
            image: 0,
            document: document_tokens(prompt),
        })
    }

    fn generate(&self, req: GenerateRequest) -> Result<EventStream, EngineError> {
        let rendered = Self::render(&req.prompt);
        let prompt_tokens = count(&rendered);
        let limit = self.opts.info.context_length;
        if prompt_tokens >= limit {
            return Err(EngineError::PromptTooLong {
                tokens: prompt_tokens,
                limit,
            });
        }
        let max_tokens = req
            .max_output_tokens
            .unwrap_or(self.opts.info.max_output_tokens)
            .min(limit - prompt_tokens);
        let (tx, rx) = mpsc::unbounded_channel();
        let delay = self.opts.token_delay;
        let endless = self.opts.endless;
        let cancelled = self.cancelled.clone();
        let thinks = self.opts.info.capabilities.thinking;
        self.started.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            let run = Run {
                req,
                max_tokens,
                tx,
                delay,
                thinks,
                endless,
                hash: fnv(rendered.as_bytes(), 0xcbf2_9ce4_8422_2325),
            };
            if run.go(prompt_tokens).is_err() {
                cancelled.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(rx)
    }
}

struct Run {
    req: GenerateRequest,
    max_tokens: u32,
    tx: mpsc::UnboundedSender<EngineEvent>,
    delay: Duration,
    thinks: bool,
    endless: bool,
    hash: u64,
}

/// The receiver was dropped: the client went away.
struct Gone;

impl Run {
    fn send(&self, ev: EngineEvent) -> Result<(), Gone> {
        self.tx.send(ev).map_err(|_| Gone)
    }

    fn go(&self, prompt_tokens: u32) -> Result<(), Gone> {
        self.send(EngineEvent::Started {
            prompt_tokens,
            cached_tokens: 0,
            image_tokens: 0,
            document_tokens: document_tokens(&self.req.prompt),
        })?;
        for c in 0..self.req.candidate_count {
            self.candidate(c)?;
        }
        Ok(())
    }

    fn candidate(&self, c: u32) -> Result<(), Gone> {
        let top = self.req.logprobs.unwrap_or(0) as usize;
        let mut sampler = Sampler::new(self.req.sampling.clone(), c as u64, top);
        let mut usage = CandidateUsage::default();
        let thought_budget = match (self.thinks, self.req.thinking) {
            (false, _) | (_, ThinkingBudget::Off) => 0,
            (true, ThinkingBudget::Dynamic) => THOUGHT_WORDS,
            (true, ThinkingBudget::Tokens(n)) => n.min(THOUGHT_WORDS),
        };
        for i in 0..thought_budget {
            let word = WORDS[(self.hash as usize + i as usize) % (WORDS.len() - 3)];
            let text = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            usage.thought_tokens += 1;
            self.send(EngineEvent::Delta {
                candidate: c,
                kind: TextKind::Thought,
                text,
                tokens: 1,
                logprobs: vec![],
            })?;
        }
        let mut stops = StopMatcher::new(self.req.stop_sequences.clone());
        let mut generated: Vec<i32> = Vec::new();
        let reason = loop {
            if usage.output_tokens >= self.max_tokens {
                break FinishReason::MaxTokens;
            }
            if !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            if self.tx.is_closed() {
                return Err(Gone);
            }
            let mut l = logits(self.hash, &generated);
            if self.endless {
                l[EOS as usize] = f32::NEG_INFINITY;
            }
            let s = sampler.sample(&generated, &mut l);
            if s.token == EOS {
                break FinishReason::Stop;
            }
            generated.push(s.token);
            usage.output_tokens += 1;
            let word = WORDS[s.token as usize];
            let piece = if generated.len() == 1 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            let logprobs = if self.req.logprobs.is_some() {
                let tl = |(t, lp): (i32, f32)| TokenLogprob {
                    token: token_text(t),
                    token_id: t,
                    logprob: lp,
                };
                vec![StepLogprobs {
                    chosen: tl((s.token, s.logprob)),
                    top: s.top.into_iter().map(tl).collect(),
                }]
            } else {
                vec![]
            };
            let out = stops.push(&piece);
            if !out.text.is_empty() || !logprobs.is_empty() {
                self.send(EngineEvent::Delta {
                    candidate: c,
                    kind: TextKind::Answer,
                    text: out.text,
                    tokens: 1,
                    logprobs,
                })?;
            }
            if out.stopped {
                break FinishReason::Stop;
            }
        };
        let rest = stops.finish();
        if !rest.is_empty() {
            self.send(EngineEvent::Delta {
                candidate: c,
                kind: TextKind::Answer,
                text: rest,
                tokens: 0,
                logprobs: vec![],
            })?;
        }
        self.send(EngineEvent::Finished {
            candidate: c,
            reason,
            usage,
        })
    }
}

fn token_text(t: i32) -> String {
    WORDS
        .get(t as usize)
        .map_or("<eos>".to_string(), |w| w.to_string())
}

/// The words of a prompt's documents, as `count` counts them.
fn document_tokens(prompt: &Prompt) -> u32 {
    let text: String = prompt
        .turns
        .iter()
        .flat_map(|t| &t.segments)
        .filter_map(|s| match s {
            Segment::Document(parts) => Some(parts),
            _ => None,
        })
        .flatten()
        .map(|p| match p {
            DocumentPart::Text(t) => format!(" {t}"),
            DocumentPart::Image(d) => format!(" [page {} bytes]", d.len()),
        })
        .collect();
    count(&text)
}
