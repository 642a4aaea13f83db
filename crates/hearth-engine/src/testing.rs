//! The real engine ([`LlmEngine`] and its scheduler) over the deterministic
//! byte runner, for tests of the layers above the engine (HTTP, validation,
//! conversion, the client). Only the model is fake: tokenization, the
//! prompt's template, sampling, thinking, grammars, function calls, stop
//! sequences, batching and the KV cache are the ones hearth serves with.
//! Behind the `testing` feature, never shipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::contract::*;
use crate::llm::{LlmEngine, LlmEngineConfig, PromptFormat, RenderOptions};
use crate::runner::Runner;
use crate::test_runner::{ByteRunner, ByteTokenizer};

/// How to build a byte engine.
#[derive(Debug, Clone)]
pub struct ByteEngineOptions {
    pub id: String,
    /// The template can think: replies open with `<think>`, which the model
    /// closes after a few tokens.
    pub thinking: bool,
    /// A pause in every decode step (to observe streaming and cancellation).
    pub token_delay: Duration,
    /// The model never ends an answer by itself.
    pub endless: bool,
    /// Each sequence's context, in tokens (bytes).
    pub context_length: u32,
    /// Sequences decoded together.
    pub sequences: u32,
    /// The model's default and largest maxOutputTokens.
    pub max_output_tokens: u32,
    /// Requests waiting for a free sequence before 429s start.
    pub queue_limit: usize,
    /// The model's default sampling.
    pub sampling: SamplingDefaults,
}

impl ByteEngineOptions {
    pub fn named(id: &str) -> Self {
        ByteEngineOptions {
            id: id.to_string(),
            thinking: false,
            token_delay: Duration::ZERO,
            endless: false,
            context_length: 4096,
            sequences: 4,
            max_output_tokens: 1024,
            queue_limit: 64,
            sampling: SamplingDefaults::default(),
        }
    }

    /// Starts the engine thread.
    pub fn start(self) -> ByteEngine {
        let decoded: Arc<AtomicUsize> = Arc::default();
        let counter = decoded.clone();
        let (context, sequences) = (self.context_length.max(1), self.sequences.max(1));
        let (endless, delay) = (self.endless, self.token_delay);
        let config = LlmEngineConfig {
            id: self.id.clone(),
            display_name: format!("Byte-level test model ({})", self.id),
            description: "Hash-of-history logits over bytes; for tests only.".into(),
            max_output_tokens: self.max_output_tokens,
            prefill_chunk: 64,
            queue_limit: self.queue_limit,
            max_thinking_tokens: None,
            sampling: self.sampling,
            jump_forward: true,
            speculate: true,
        };
        let engine = LlmEngine::start(
            config,
            Arc::new(ByteTokenizer::default()),
            Arc::new(ByteChat {
                thinking: self.thinking,
            }),
            Box::new(move || {
                let mut r = ByteRunner::new(context.saturating_mul(sequences), sequences);
                r.endless = endless;
                r.delay = delay;
                r.decoded = counter.clone();
                Ok(Box::new(r) as Box<dyn Runner>)
            }),
        );
        match engine {
            Ok(engine) => ByteEngine { engine, decoded },
            // The byte runner's factory cannot fail.
            Err(e) => unreachable!("the byte engine did not start: {e}"),
        }
    }
}

/// A started byte engine: an [`LlmEngine`], and what its runner decoded.
pub struct ByteEngine {
    engine: LlmEngine,
    decoded: Arc<AtomicUsize>,
}

impl ByteEngine {
    /// Tokens the runner has decoded so far (prompts and answers).
    pub fn decoded(&self) -> usize {
        self.decoded.load(Ordering::SeqCst)
    }
}

impl Engine for ByteEngine {
    fn info(&self) -> &ModelInfo {
        self.engine.info()
    }
    fn stats(&self) -> EngineStats {
        self.engine.stats()
    }
    fn count_tokens(&self, prompt: &Prompt) -> Result<PromptTokens, EngineError> {
        self.engine.count_tokens(prompt)
    }
    fn generate(&self, request: GenerateRequest) -> Result<EventStream, EngineError> {
        self.engine.generate(request)
    }
}

/// The byte model's chat template: a line per turn, the model's turn opened
/// by `<|model|>`.
struct ByteChat {
    thinking: bool,
}

impl PromptFormat for ByteChat {
    fn render(&self, prompt: &Prompt, _: &RenderOptions) -> Result<String, EngineError> {
        let mut out = String::new();
        if let Some(s) = prompt.system_text() {
            out.push_str(&format!("<system> {s}\n"));
        }
        for turn in &prompt.turns {
            out.push_str(match turn.role {
                Role::User => "<user>",
                Role::Model => "<|model|>",
            });
            for seg in &turn.segments {
                match seg {
                    Segment::Text(t) => out.push_str(t),
                    // The engine inlines calls and results as text (this
                    // template renders no tools) and refuses media (no
                    // projector): neither reaches a template.
                    _ => {
                        return Err(EngineError::Internal(
                            "the byte template renders text only".into(),
                        ))
                    }
                }
            }
            out.push('\n');
        }
        out.push_str("<|model|>");
        Ok(out)
    }
    fn supports_thinking(&self) -> bool {
        self.thinking
    }
}
