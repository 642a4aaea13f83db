//! The real engine: renders the prompt, tokenizes it, and hands it to the
//! engine thread that owns the runner (see `scheduler`).

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::contract::*;
use crate::replies::ReplyMemory;
use crate::runner::{Runner, Tokenizer};
use crate::scheduler::{self, Job, SchedulerConfig};
use crate::template::{hf_messages, ChatTemplate, TemplateError};

/// Builds the runner on the engine thread (llama.cpp contexts stay on the
/// thread that made them).
pub type RunnerFactory = Box<dyn FnOnce() -> Result<Box<dyn Runner>, String> + Send>;

/// How a prompt becomes text: the model's chat template.
pub trait PromptFormat: Send + Sync {
    fn render(&self, prompt: &Prompt, options: &RenderOptions) -> Result<String, EngineError>;
    /// The template can switch thinking on and off.
    fn supports_thinking(&self) -> bool;
}

/// Template switches derived from the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    /// Some(false): ask the template not to think (`enable_thinking=false`).
    pub enable_thinking: Option<bool>,
}

/// Settings of an engine instance.
#[derive(Debug, Clone)]
pub struct LlmEngineConfig {
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// Largest maxOutputTokens accepted.
    pub max_output_tokens: u32,
    /// Prompt tokens prefilled per step across all sequences.
    pub prefill_chunk: usize,
    /// Requests waiting for a free sequence before 429s start.
    pub queue_limit: usize,
}

pub struct LlmEngine {
    info: ModelInfo,
    tokenizer: Arc<dyn Tokenizer>,
    format: Arc<dyn PromptFormat>,
    jobs: std_mpsc::SyncSender<Job>,
    replies: Arc<ReplyMemory>,
}

impl LlmEngine {
    /// Starts the engine thread, which builds its runner with `factory` and
    /// owns it from then on.
    pub fn start(
        config: LlmEngineConfig,
        tokenizer: Arc<dyn Tokenizer>,
        format: Arc<dyn PromptFormat>,
        factory: RunnerFactory,
    ) -> Result<Self, EngineError> {
        let (jobs, rx) = std_mpsc::sync_channel(config.queue_limit.max(1));
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let tok = tokenizer.clone();
        let prefill_chunk = config.prefill_chunk.max(1);
        let replies = Arc::new(ReplyMemory::new(1024));
        let thread_replies = replies.clone();
        std::thread::Builder::new()
            .name(format!("hearth-engine-{}", config.id))
            .spawn(move || {
                let runner = match factory() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let seq_ctx = runner.kv_capacity() / runner.max_sequences().max(1);
                let _ = ready_tx.send(Ok(seq_ctx));
                let config = SchedulerConfig {
                    seq_ctx,
                    prefill_chunk,
                    replies: thread_replies,
                };
                scheduler::run(runner, tok, config, rx)
            })
            .map_err(|e| EngineError::Internal(format!("cannot start the engine thread: {e}")))?;
        let seq_ctx = ready_rx
            .recv()
            .map_err(|_| EngineError::Internal("the engine thread died while starting".into()))?
            .map_err(EngineError::Internal)?;
        let info = ModelInfo {
            id: config.id.clone(),
            display_name: config.display_name.clone(),
            description: config.description.clone(),
            context_length: seq_ctx,
            max_output_tokens: config.max_output_tokens.min(seq_ctx),
            capabilities: Capabilities::default(),
        };
        Ok(LlmEngine {
            info,
            tokenizer,
            format,
            jobs,
            replies,
        })
    }

    fn tokens(&self, prompt: &Prompt, options: &RenderOptions) -> Result<Vec<i32>, EngineError> {
        let text = self.format.render(prompt, options)?;
        let meta = self.tokenizer.meta();
        // Templates that write BOS themselves must not get a second one.
        let has_bos = meta
            .bos_token
            .as_deref()
            .is_some_and(|b| !b.is_empty() && text.starts_with(b));
        let encode = |piece: &str, bos: bool| {
            self.tokenizer
                .encode(piece, bos)
                .map_err(|e| EngineError::Internal(format!("tokenizing the prompt failed: {e}")))
        };
        // Earlier replies of this model come back with the ids it generated.
        let mut out = Vec::new();
        let mut cursor = 0;
        for (reply, ids) in self.remembered_replies(prompt) {
            let Some(at) = text[cursor..].find(&reply).map(|i| cursor + i) else {
                continue;
            };
            if at > cursor {
                out.extend(encode(
                    &text[cursor..at],
                    meta.add_bos && !has_bos && cursor == 0,
                )?);
            } else if cursor == 0 && meta.add_bos && !has_bos {
                out.extend(encode("", true)?);
            }
            out.extend(ids);
            cursor = at + reply.len();
        }
        if cursor == 0 {
            return encode(&text, meta.add_bos && !has_bos);
        }
        if cursor < text.len() {
            out.extend(encode(&text[cursor..], false)?);
        }
        Ok(out)
    }

    /// The model turns of the prompt whose exact text an earlier generation produced.
    fn remembered_replies(&self, prompt: &Prompt) -> Vec<(String, Vec<i32>)> {
        prompt
            .turns
            .iter()
            .filter(|t| t.role == Role::Model)
            .filter_map(|t| {
                let text: String = t
                    .segments
                    .iter()
                    .filter_map(|s| match s {
                        Segment::Text(x) => Some(x.as_str()),
                        _ => None,
                    })
                    .collect();
                let ids = self.replies.get(&text)?;
                Some((text, ids))
            })
            .collect()
    }
}

impl Engine for LlmEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn count_tokens(&self, prompt: &Prompt) -> Result<u32, EngineError> {
        Ok(self.tokens(prompt, &RenderOptions::default())?.len() as u32)
    }

    fn generate(&self, request: GenerateRequest) -> Result<EventStream, EngineError> {
        let options = RenderOptions {
            enable_thinking: match request.thinking {
                ThinkingBudget::Off if self.format.supports_thinking() => Some(false),
                _ => None,
            },
        };
        let tokens = self.tokens(&request.prompt, &options)?;
        if tokens.is_empty() {
            return Err(EngineError::InvalidRequest {
                field: Some("contents".into()),
                message: "the conversation renders to an empty prompt".into(),
            });
        }
        let limit = self.info.context_length as usize;
        if tokens.len() >= limit {
            return Err(EngineError::InvalidRequest {
                field: Some("contents".into()),
                message: format!(
                    "The input token count ({}) exceeds the maximum number of tokens allowed ({limit}).",
                    tokens.len()
                ),
            });
        }
        let room = (limit - tokens.len()) as u32;
        let max_tokens = request
            .max_output_tokens
            .unwrap_or(self.info.max_output_tokens)
            .min(room);
        let (tx, rx) = mpsc::unbounded_channel();
        let job = Job {
            tokens,
            request,
            max_tokens,
            events: tx,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            std_mpsc::TrySendError::Full(_) => EngineError::Overloaded(format!(
                "model '{}' has too many requests waiting; try again shortly",
                self.info.id
            )),
            std_mpsc::TrySendError::Disconnected(_) => {
                EngineError::Unavailable("the engine thread has stopped".into())
            }
        })?;
        Ok(rx)
    }
}

impl PromptFormat for ChatTemplate {
    fn render(&self, prompt: &Prompt, options: &RenderOptions) -> Result<String, EngineError> {
        let (messages, tools) = hf_messages(prompt).map_err(template_error)?;
        let mut extra = serde_json::Map::new();
        if let Some(on) = options.enable_thinking {
            extra.insert("enable_thinking".into(), serde_json::Value::Bool(on));
        }
        ChatTemplate::render(self, &messages, tools.as_deref(), true, &extra)
            .map_err(template_error)
    }

    fn supports_thinking(&self) -> bool {
        ChatTemplate::supports_thinking(self)
    }
}

fn template_error(e: TemplateError) -> EngineError {
    match e {
        TemplateError::Raised(m) => EngineError::InvalidRequest {
            field: Some("contents".into()),
            message: format!("the model's chat template refuses this conversation: {m}"),
        },
        TemplateError::Unsupported(m) => EngineError::InvalidRequest {
            field: Some("contents".into()),
            message: m,
        },
        other => EngineError::Internal(format!("chat template: {other}")),
    }
}
