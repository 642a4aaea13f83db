//! The real engine: renders the prompt, tokenizes it, and hands it to the
//! engine thread that owns the runner (see `scheduler`).

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use crate::contract::*;
use crate::grammar::{self, Grammars};
use crate::output::{Dialect, OutputPlan, ThinkMarkers, ThinkPlan, ToolPlan};
pub use crate::prompt_format::{PromptFormat, RenderOptions};
use crate::replies::ReplyMemory;
use crate::runner::{MediaItem, MediaReader, MediaTokens, Runner, RunnerError, Tokenizer};
use crate::scheduler::{self, Job, SchedulerConfig};
use crate::template::system_media_to_first_user;

/// Builds the runner on the engine thread (llama.cpp contexts stay on the
/// thread that made them); again after the thread recovered from a panic.
pub type RunnerFactory = Box<dyn Fn() -> Result<Box<dyn Runner>, RunnerError> + Send>;

/// Settings of an engine instance.
#[derive(Debug, Clone)]
pub struct LlmEngineConfig {
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// Largest maxOutputTokens accepted.
    pub max_output_tokens: u32,
    /// Prompt tokens prefilled per step while other sequences run (alone, a
    /// prompt goes by the runner's batch).
    pub prefill_chunk: usize,
    /// Requests waiting for a free sequence before 429s start.
    pub queue_limit: usize,
    /// Caps every thought (dynamic thinking included); None: no cap.
    pub max_thinking_tokens: Option<u32>,
    /// The model's default sampling.
    pub sampling: crate::contract::SamplingDefaults,
    /// Jump-forward constrained decoding: tokens the grammar forces are
    /// appended without sampling, several a step.
    pub jump_forward: bool,
    /// Prompt-lookup speculation for a lone stream (see the scheduler).
    pub speculate: bool,
}

pub struct LlmEngine {
    info: ModelInfo,
    /// The model's own description, before what [`describe_shaping`] adds.
    description: String,
    tokenizer: Arc<dyn Tokenizer>,
    format: Arc<dyn PromptFormat>,
    jobs: std_mpsc::SyncSender<Job>,
    replies: Arc<ReplyMemory>,
    /// End-of-generation tokens.
    ends: Arc<Vec<i32>>,
    /// The model's thinking markup (None: the model does not think).
    markers: Option<ThinkMarkers>,
    think_cap: Option<u32>,
    /// How function calls are written, and whether the template renders them.
    dialect: Dialect,
    native_tools: bool,
    /// llguidance over this vocabulary, built on first use.
    grammars: OnceLock<Result<Arc<Grammars>, grammar::GrammarError>>,
    /// The multimodal projector, when one is loaded.
    media: Option<Arc<dyn MediaReader>>,
    /// What the engine thread is doing ([`Engine::stats`]).
    stats: Arc<crate::contract::StatsCell>,
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
        let jump_forward = config.jump_forward;
        let speculate = config.speculate;
        let replies = Arc::new(ReplyMemory::new(1024));
        let thread_replies = replies.clone();
        let stats = Arc::new(crate::contract::StatsCell::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name(format!("hearth-engine-{}", config.id))
            .spawn(move || {
                let mut runner = match factory() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let seq_ctx = runner.kv_capacity() / runner.max_sequences().max(1);
                let _ = ready_tx.send(Ok(seq_ctx));
                let config = SchedulerConfig {
                    stats: thread_stats,
                    seq_ctx,
                    prefill_chunk,
                    replies: thread_replies,
                    jump_forward,
                    speculate,
                };
                // A panic fails the requests running (the scheduler's Drop)
                // and the thread starts over with a new runner: queued and
                // later requests are served, the model stays listed.
                loop {
                    let run = std::panic::AssertUnwindSafe(|| {
                        scheduler::run(runner, tok.clone(), config.clone(), &rx)
                    });
                    if std::panic::catch_unwind(run).is_ok() {
                        return;
                    }
                    tracing::error!("the engine thread panicked: restarting it with a new context");
                    runner = match factory() {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!("the engine cannot restart: {e}");
                            return;
                        }
                    };
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start the engine thread: {e}")))?;
        let seq_ctx = ready_rx
            .recv()
            .map_err(|_| EngineError::Internal("the engine thread died while starting".into()))?
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let vocab = tokenizer.meta().vocab_size as i32;
        let ends: Vec<i32> = (0..vocab).filter(|&t| tokenizer.is_end(t)).collect();
        let markers = format
            .supports_thinking()
            .then(|| think_markers(tokenizer.as_ref()))
            .flatten();
        let (dialect, native_tools) = match format.tool_dialect() {
            Some(d) => (d, true),
            None => (Dialect::Hermes, false),
        };
        let info = ModelInfo {
            id: config.id.clone(),
            display_name: config.display_name.clone(),
            description: describe_shaping(
                &config.description,
                format.as_ref(),
                !ends.is_empty(),
                false,
            ),
            context_length: seq_ctx,
            max_output_tokens: config.max_output_tokens.min(seq_ctx),
            capabilities: Capabilities {
                thinking: markers.is_some(),
                media: Vec::new(),
                image_size: None,
                function_calling: !ends.is_empty(),
                constrained_output: !ends.is_empty(),
            },
            sampling: config.sampling,
        };
        Ok(LlmEngine {
            info,
            description: config.description.clone(),
            tokenizer,
            format,
            jobs,
            replies,
            ends: Arc::new(ends),
            markers,
            think_cap: config.max_thinking_tokens,
            dialect,
            native_tools,
            grammars: OnceLock::new(),
            media: None,
            stats,
        })
    }

    /// Reads media through `reader` (the model's multimodal projector): the
    /// model then accepts the media kinds it names.
    pub fn with_media(mut self, reader: Arc<dyn MediaReader>) -> Self {
        self.info.capabilities.media = reader.kinds();
        self.info.capabilities.image_size = reader.image_size();
        self.media = Some(reader);
        self.info.description = describe_shaping(
            &self.description,
            self.format.as_ref(),
            self.info.capabilities.function_calling,
            true,
        );
        self
    }

    fn grammars(&self) -> Result<Arc<Grammars>, EngineError> {
        self.grammars
            .get_or_init(|| Grammars::new(self.tokenizer.clone()).map(Arc::new))
            .clone()
            .map_err(|e| EngineError::Internal(format!("constrained decoding unavailable: {e}")))
    }

    /// The marker's token as a lark item: the special token by id when the
    /// vocabulary has it, else its text.
    fn lark_marker(&self, text: &str) -> String {
        match self.tokenizer.single_token(text) {
            Some(t) if self.tokenizer.is_special(t) => format!("<[{t}]>"),
            _ => grammar::lark_string(text),
        }
    }

    /// Thinking, constraint and function calls of one request.
    fn plan(&self, request: &GenerateRequest) -> Result<(OutputPlan, RenderOptions), EngineError> {
        let mut plan = OutputPlan::plain(self.ends.clone());
        let mut options = RenderOptions::default();
        if let Some(m) = &self.markers {
            let cap = self.think_cap.unwrap_or(u32::MAX);
            plan.think = match request.thinking {
                ThinkingBudget::Off => ThinkPlan::Off {
                    banned: m.open.first().copied().into_iter().collect(),
                },
                ThinkingBudget::Tokens(n) => ThinkPlan::On {
                    markers: m.clone(),
                    budget: n.min(cap),
                },
                ThinkingBudget::Dynamic => ThinkPlan::On {
                    markers: m.clone(),
                    budget: cap,
                },
            };
            options.enable_thinking = Some(matches!(plan.think, ThinkPlan::On { .. }));
            plan.markup = m.open.iter().take(1).chain(&m.close).copied().collect();
        }
        let tools = &request.prompt.tools;
        if !tools.is_empty() {
            let names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
            let blocked = match &request.tool_choice {
                ToolChoice::None => Some(
                    self.dialect
                        .markers()
                        .and_then(|(open, _)| self.tokenizer.single_token(open))
                        .into_iter()
                        .collect(),
                ),
                _ => None,
            };
            if request.constraint.is_some() && blocked.is_none() {
                return Err(EngineError::InvalidRequest {
                    field: Some(Field::JsonOutput),
                    message: "a response schema cannot be combined with function calling; turn calls off (mode NONE) or drop the schema".into(),
                });
            }
            if let ToolChoice::Any(allowed) = &request.tool_choice {
                let allowed: Vec<&ToolSpec> = tools
                    .iter()
                    .filter(|t| allowed.is_empty() || allowed.contains(&t.name))
                    .collect();
                if allowed.is_empty() {
                    return Err(EngineError::InvalidRequest {
                        field: Some(Field::AllowedFunctions),
                        message: "the allowed function names name no declared function".into(),
                    });
                }
                let g = self.call_grammar(&allowed)?;
                plan.matcher = Some(self.grammars()?.matcher(
                    llguidance::api::TopLevelGrammar::from_lark(g),
                    Field::FunctionCalling,
                )?);
            }
            plan.tools = Some(ToolPlan {
                dialect: self.dialect,
                names,
                blocked,
            });
        }
        if let Some(c) = &request.constraint {
            let (g, field) = match c {
                OutputConstraint::Json => (grammar::json_grammar(None), Field::JsonOutput),
                OutputConstraint::JsonSchema(schema) => {
                    let mut schema = schema.clone();
                    grammar::close_objects(&mut schema);
                    (grammar::json_grammar(Some(&schema)), Field::Schema)
                }
                OutputConstraint::Enum(values) => (grammar::enum_grammar(values), Field::Schema),
            };
            plan.matcher = Some(self.grammars()?.matcher(g, field)?);
        }
        Ok((plan, options))
    }

    /// A lark grammar for one call of one of `tools` in the model's syntax.
    fn call_grammar(&self, tools: &[&ToolSpec]) -> Result<String, EngineError> {
        let args_key = match self.dialect {
            Dialect::Json => "parameters",
            _ => "arguments",
        };
        let alts: Vec<serde_json::Value> = tools
            .iter()
            .map(|t| {
                let mut params = t
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
                grammar::close_objects(&mut params);
                serde_json::json!({
                    "type": "object",
                    "properties": {"name": {"const": t.name}, args_key: params},
                    "required": ["name", args_key],
                    "additionalProperties": false,
                })
            })
            .collect();
        let schema = if alts.len() == 1 {
            alts.into_iter().next().unwrap_or_default()
        } else {
            serde_json::json!({ "anyOf": alts })
        };
        let body = grammar::lark_json(&schema);
        let params = |t: &ToolSpec| {
            let mut p = t
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
            grammar::close_objects(&mut p);
            p
        };
        match self.dialect {
            Dialect::Json => Ok(format!("start: {body}\n")),
            Dialect::Hermes => Ok(format!(
                "start: {} \"\\n\" {body} \"\\n\" {}\n",
                self.lark_marker("<tool_call>"),
                self.lark_marker("</tool_call>")
            )),
            Dialect::QwenXml => {
                let calls: Vec<String> = tools
                    .iter()
                    .map(|t| {
                        let p = params(t);
                        let mut out = grammar::lark_string(&format!("{}>\n", t.name));
                        if let Some(props) = p.get("properties").and_then(|v| v.as_object()) {
                            for (k, v) in props {
                                out.push_str(&format!(
                                    " {} {} {}",
                                    grammar::lark_string(&format!("<parameter={k}>\n")),
                                    grammar::xml_value(v),
                                    grammar::lark_string("\n</parameter>\n")
                                ));
                            }
                        }
                        format!("({out})")
                    })
                    .collect();
                Ok(format!(
                    "start: {} \"\\n<function=\" ({}) \"</function>\\n\" {}\n",
                    self.lark_marker("<tool_call>"),
                    calls.join(" | "),
                    self.lark_marker("</tool_call>")
                ))
            }
            Dialect::Gemma4 => {
                let q = self.lark_marker("<|\"|>");
                let calls: Vec<String> = tools
                    .iter()
                    .map(|t| {
                        let mut p = params(t);
                        if let serde_json::Value::Object(m) = &mut p {
                            m.insert("type".into(), "object".into());
                        }
                        format!(
                            "({} {})",
                            grammar::lark_string(&t.name),
                            grammar::gemma_value(&p, &q)
                        )
                    })
                    .collect();
                Ok(format!(
                    "start: {} \"call:\" ({}) {}\n",
                    self.lark_marker("<|tool_call>"),
                    calls.join(" | "),
                    self.lark_marker("<tool_call|>")
                ))
            }
        }
    }

    /// The prompt as the template gets it: when the template cannot render
    /// function declarations, calls and results, they become text.
    fn with_inline_tools(&self, prompt: &Prompt) -> Option<Prompt> {
        if self.native_tools {
            return None;
        }
        crate::inline_tools::tools_as_text(prompt)
    }

    /// The prompt's tokens, what the runner prefills when it holds media,
    /// and the tokens of its images and documents.
    fn tokens(
        &self,
        prompt: &Prompt,
        options: &RenderOptions,
    ) -> Result<(Vec<i32>, Option<crate::runner::MediaPrompt>, PromptTokens), EngineError> {
        let videos = expand_videos(prompt);
        let prompt = videos.as_ref().unwrap_or(prompt);
        let inlined = self.with_inline_tools(prompt);
        let prompt = inlined.as_ref().unwrap_or(prompt);
        let moved = (self.format.shaping().move_system_media
            && prompt
                .system
                .iter()
                .any(|s| matches!(s, Segment::Media { .. })))
        .then(|| {
            let mut moved = prompt.clone();
            system_media_to_first_user(&mut moved);
            moved
        });
        let prompt = moved.as_ref().unwrap_or(prompt);
        let (expanded, documents) = expand_documents(prompt);
        let prompt = expanded.as_ref().unwrap_or(prompt);
        let has_media = prompt
            .segments()
            .any(|s| matches!(s, Segment::Media { .. }));
        let (tokens, media, mut counts) = if has_media {
            let (tokens, out) = self.media_tokens(prompt, options)?;
            let kinds: Vec<&str> = prompt
                .segments()
                .filter_map(|s| match s {
                    Segment::Media { mime_type, .. } => Some(mime_type.as_str()),
                    _ => None,
                })
                .collect();
            let mut counts = PromptTokens::default();
            for (i, &n) in out.item_positions.iter().enumerate() {
                if documents.media.get(i).copied().unwrap_or(false) {
                    counts.document += n;
                } else if kinds.get(i).is_some_and(|m| m.starts_with("audio/")) {
                    counts.audio += n;
                } else if kinds.get(i) == Some(&VIDEO_FRAME) {
                    counts.video += n;
                } else {
                    counts.image += n;
                }
            }
            (tokens, Some(out.prompt), counts)
        } else {
            let text = self.format.render(prompt, options)?;
            let tokens = self.text_tokens(prompt, &text)?;
            (tokens, None, PromptTokens::default())
        };
        if let Some((with, without)) = &documents.text_views {
            // Documents' text in context: the prompt's text tokens with it,
            // less those without it (media as a placeholder in both).
            let count = |p: &Prompt| -> Result<usize, EngineError> {
                let text = self.format.render(p, options)?;
                self.tokenizer
                    .encode(&text, false)
                    .map(|t| t.len())
                    .map_err(|e| {
                        EngineError::Internal(format!("tokenizing a document failed: {e}"))
                    })
            };
            counts.document += count(with)?.saturating_sub(count(without)?) as u32;
        }
        counts.total = tokens.len() as u32;
        counts.document = counts.document.min(
            counts
                .total
                .saturating_sub(counts.image + counts.audio + counts.video),
        );
        Ok((tokens, media, counts))
    }

    /// Templates that write BOS themselves must not get a second one.
    fn adds_bos(&self, text: &str) -> bool {
        let meta = self.tokenizer.meta();
        let has_bos = meta
            .bos_token
            .as_deref()
            .is_some_and(|b| !b.is_empty() && text.starts_with(b));
        meta.add_bos && !has_bos
    }

    /// A prompt with media: each item becomes the reader's marker in the
    /// rendered text, and the reader tokenizes text and media together.
    fn media_tokens(
        &self,
        prompt: &Prompt,
        options: &RenderOptions,
    ) -> Result<(Vec<i32>, MediaTokens), EngineError> {
        let Some(reader) = &self.media else {
            return Err(EngineError::InvalidRequest {
                field: Some(Field::Contents),
                message: format!(
                    "model '{}' is a text-only model: no multimodal projector is loaded for it",
                    self.info.id
                ),
            });
        };
        let marker = reader.marker();
        let mut marked = prompt.clone();
        let mut media: Vec<(String, Arc<Vec<u8>>, Option<u32>)> = Vec::new();
        let system = marked.system.iter_mut().map(|s| (None, s));
        let turns = marked
            .turns
            .iter_mut()
            .enumerate()
            .flat_map(|(i, t)| t.segments.iter_mut().map(move |s| (Some(i), s)));
        for (index, seg) in system.chain(turns) {
            match seg {
                Segment::Text(t) if t.contains(marker) => {
                    return Err(EngineError::InvalidRequest {
                        field: Some(index.map_or(Field::SystemInstruction, Field::TurnParts)),
                        message: format!(
                            "text may not contain {marker:?}: this model's projector reads it as the place of an image"
                        ),
                    })
                }
                Segment::Media {
                    mime_type,
                    data,
                    tokens,
                } => {
                    media.push((mime_type.clone(), data.clone(), *tokens));
                    *seg = Segment::Text(marker.to_string());
                }
                _ => {}
            }
        }
        let text = self.format.render(&marked, options)?;
        if text.matches(marker).count() != media.len() {
            return Err(EngineError::InvalidRequest {
                field: Some(Field::Contents),
                message: "the model's chat template dropped or repeated a media part of this conversation".into(),
            });
        }
        if media.iter().any(|m| m.2.is_some()) && reader.image_tokens().is_none() {
            return Err(EngineError::InvalidRequest {
                field: Some(Field::MediaResolution),
                message: format!(
                    "model '{}' reads each image at its projector's own resolution (a fixed number of tokens); a media resolution cannot change it",
                    self.info.id
                ),
            });
        }
        if let (Some((lo, hi)), Some(n)) = (
            reader.image_tokens(),
            media.iter().filter_map(|m| m.2).find(|&n| {
                reader
                    .image_tokens()
                    .is_some_and(|(lo, hi)| n < lo || n > hi)
            }),
        ) {
            return Err(EngineError::InvalidRequest {
                field: Some(Field::MediaResolution),
                message: format!("{n} image tokens: this model reads {lo} to {hi} a picture"),
            });
        }
        let items: Vec<MediaItem<'_>> = media
            .iter()
            .map(|(mime_type, data, tokens)| MediaItem {
                mime_type,
                data: data.as_slice(),
                tokens: *tokens,
            })
            .collect();
        let mut out = reader
            .tokenize(&text, self.adds_bos(&text), &items)
            .map_err(|e| EngineError::InvalidRequest {
                field: Some(Field::Contents),
                message: format!("cannot read the media of this request: {e}"),
            })?;
        Ok((std::mem::take(&mut out.tokens), out))
    }

    /// A text-only prompt; earlier replies of this model go back as the ids
    /// it generated.
    fn text_tokens(&self, prompt: &Prompt, text: &str) -> Result<Vec<i32>, EngineError> {
        let bos = self.adds_bos(text);
        let encode = |piece: &str, bos: bool| {
            self.tokenizer
                .encode(piece, bos)
                .map_err(|e| EngineError::Internal(format!("tokenizing the prompt failed: {e}")))
        };
        // Earlier replies of this model come back with the ids it generated.
        let mut out = Vec::new();
        let mut cursor = 0;
        for (reply, ids) in self.remembered_replies(prompt) {
            // Templates that trim replies (Llama 3, Gemma) drop the leading
            // space the model generated: the generated ids go back in all the
            // same, so that the model reads its own words and the KV cache
            // stays reusable through the reply.
            let found = text[cursor..]
                .find(&reply)
                .map(|i| (cursor + i, reply.len()))
                .or_else(|| {
                    let t = reply.trim();
                    (!t.is_empty() && t.len() < reply.len())
                        .then(|| text[cursor..].find(t).map(|i| (cursor + i, t.len())))
                        .flatten()
                });
            let Some((at, len)) = found else {
                continue;
            };
            if at > cursor {
                out.extend(encode(&text[cursor..at], bos && cursor == 0)?);
            } else if cursor == 0 && bos {
                out.extend(encode("", true)?);
            }
            out.extend(ids);
            cursor = at + len;
        }
        if cursor == 0 {
            return encode(text, bos);
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

    fn stats(&self) -> EngineStats {
        self.stats.read()
    }

    /// The prompt as a request that sets nothing else renders it: a model
    /// that thinks renders it for dynamic thinking (Gemma 4's template
    /// otherwise appends an empty thought), so the count equals such a
    /// request's promptTokenCount.
    fn count_tokens(&self, prompt: &Prompt) -> Result<PromptTokens, EngineError> {
        let options = RenderOptions {
            enable_thinking: self.markers.as_ref().map(|_| true),
        };
        Ok(self.tokens(prompt, &options)?.2)
    }

    fn generate(&self, request: GenerateRequest) -> Result<EventStream, EngineError> {
        let (mut plan, options) = self.plan(&request)?;
        let (tokens, media, counts) = self.tokens(&request.prompt, &options)?;
        // A media resolution reaches the engine on each media segment
        // (`Segment::Media::tokens`), where the projector honours or refuses it.
        if tokens.is_empty() {
            return Err(EngineError::InvalidRequest {
                field: Some(Field::Contents),
                message: "the conversation renders to an empty prompt".into(),
            });
        }
        if let Some(m) = &self.markers {
            // The template may open the thought itself (always-thinking
            // models): the last opening marker comes after the last closing one.
            let last = |t: Option<&i32>| t.and_then(|t| tokens.iter().rposition(|x| x == t));
            if last(m.open.first()) > last(m.close.first()) {
                plan.opened = true;
                if let ThinkPlan::Off { .. } = plan.think {
                    // Thinking off on a model that was made to think: close it at once.
                    plan.think = ThinkPlan::On {
                        markers: m.clone(),
                        budget: 0,
                    };
                }
            }
        }
        let limit = self.info.context_length as usize;
        if tokens.len() >= limit {
            return Err(EngineError::PromptTooLong {
                tokens: u32::try_from(tokens.len()).unwrap_or(u32::MAX),
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
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
            counts,
            request,
            max_tokens,
            plan,
            media,
            events: tx,
        };
        // Counted before it is sent: the engine thread counts it off when
        // it takes it, which may be at once.
        let waiting = &self.stats.waiting;
        waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.jobs.try_send(job).map_err(|e| {
            let _ = waiting.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| Some(n.saturating_sub(1)),
            );
            match e {
                std_mpsc::TrySendError::Full(_) => EngineError::Overloaded(format!(
                    "model '{}' has too many requests waiting; try again shortly",
                    self.info.id
                )),
                std_mpsc::TrySendError::Disconnected(_) => {
                    EngineError::Unavailable("the engine thread has stopped".into())
                }
            }
        })?;
        Ok(rx)
    }
}

/// The model's description, and what hearth does to conversations for its
/// chat template (`GET models/{m}` says it).
fn describe_shaping(
    description: &str,
    format: &dyn PromptFormat,
    calls: bool,
    media: bool,
) -> String {
    let mut clauses = format.shaping().describe(media);
    if calls && format.tool_dialect().is_none() {
        clauses.push("function declarations, calls and responses are written into the prompt as text (the template renders none)");
    }
    if clauses.is_empty() {
        return description.to_owned();
    }
    let sep = if description.is_empty() { "" } else { " " };
    format!("{description}{sep}Chat template: {}.", clauses.join("; "))
}

/// The model's thinking markup, found in its vocabulary: Qwen 3's
/// `<think>`…`</think>`, Gemma 4's `<|channel>thought`…`<channel|>`.
fn think_markers(tokenizer: &dyn Tokenizer) -> Option<ThinkMarkers> {
    if let (Some(open), Some(close)) = (
        tokenizer.single_token("<think>"),
        tokenizer.single_token("</think>"),
    ) {
        return Some(ThinkMarkers {
            open: vec![open],
            close: vec![close],
        });
    }
    if let (Some(_), Some(close)) = (
        tokenizer.single_token("<|channel>"),
        tokenizer.single_token("<channel|>"),
    ) {
        let open = tokenizer.encode("<|channel>thought\n", false).ok()?;
        return Some(ThinkMarkers {
            open,
            close: vec![close],
        });
    }
    None
}

/// What [`expand_documents`] took out of a prompt's documents.
#[derive(Default)]
struct DocumentItems {
    /// The expanded prompt with every media item as a placeholder, and the
    /// same without the documents' text (`None`: documents hold no text).
    text_views: Option<(Prompt, Prompt)>,
    /// For each media item of the expanded prompt, in order: whether it is
    /// a document's page.
    media: Vec<bool>,
}

/// The prompt with each document's parts as text and image segments
/// (`None`: it holds no document).
/// The prompt with its videos as the model reads them: each frame's
/// timestamp as text, the frame as media ([`VIDEO_FRAME`]), then the audio
/// track (None: no video in it).
fn expand_videos(prompt: &Prompt) -> Option<Prompt> {
    let has_video = prompt
        .turns
        .iter()
        .flat_map(|t| &t.segments)
        .any(|s| matches!(s, Segment::Video { .. }));
    if !has_video {
        return None;
    }
    let mut out = prompt.clone();
    for turn in &mut out.turns {
        let mut segments = Vec::with_capacity(turn.segments.len());
        for seg in std::mem::take(&mut turn.segments) {
            let Segment::Video { parts, tokens } = seg else {
                segments.push(seg);
                continue;
            };
            for part in parts {
                segments.push(match part {
                    VideoPart::Timestamp(t) => Segment::Text(t),
                    VideoPart::Frame(data) => Segment::Media {
                        mime_type: VIDEO_FRAME.into(),
                        data,
                        tokens,
                    },
                    VideoPart::Audio(data) => Segment::Media {
                        mime_type: "audio/wav".into(),
                        data,
                        tokens: None,
                    },
                });
            }
        }
        turn.segments = segments;
    }
    Some(out)
}

fn expand_documents(prompt: &Prompt) -> (Option<Prompt>, DocumentItems) {
    let mut items = DocumentItems::default();
    let has_documents = prompt
        .turns
        .iter()
        .flat_map(|t| &t.segments)
        .any(|s| matches!(s, Segment::Document(_)));
    if !has_documents {
        return (None, items);
    }
    // The system instruction's media come first in the prompt.
    items.media = prompt
        .system
        .iter()
        .filter(|s| matches!(s, Segment::Media { .. }))
        .map(|_| false)
        .collect();
    let mut out = prompt.clone();
    let (mut with, mut without) = (prompt.clone(), prompt.clone());
    let mut has_text = false;
    let placeholder = || Segment::Text("\u{fffc}".into());
    // The views are rendered as text: the system instruction's media too
    // become the placeholder.
    for view in [&mut with, &mut without] {
        for seg in &mut view.system {
            if matches!(seg, Segment::Media { .. }) {
                *seg = placeholder();
            }
        }
    }
    for (k, turn) in out.turns.iter_mut().enumerate() {
        let mut segments = Vec::with_capacity(turn.segments.len());
        let (mut w, mut wo) = (Vec::new(), Vec::new());
        for seg in &turn.segments {
            match seg {
                Segment::Document(parts) => {
                    for part in parts {
                        match part {
                            DocumentPart::Text(t) => {
                                has_text = true;
                                w.push(Segment::Text(t.clone()));
                            }
                            DocumentPart::Image(_) => {
                                w.push(placeholder());
                                wo.push(placeholder());
                            }
                        }
                    }
                }
                Segment::Media { .. } => {
                    w.push(placeholder());
                    wo.push(placeholder());
                }
                other => {
                    w.push(other.clone());
                    wo.push(other.clone());
                }
            }
        }
        with.turns[k].segments = w;
        without.turns[k].segments = wo;
        for seg in std::mem::take(&mut turn.segments) {
            match seg {
                Segment::Document(parts) => {
                    for part in parts {
                        match part {
                            DocumentPart::Text(t) => segments.push(Segment::Text(t)),
                            DocumentPart::Image(data) => {
                                items.media.push(true);
                                segments.push(Segment::Media {
                                    mime_type: "image/png".into(),
                                    data,
                                    tokens: None,
                                });
                            }
                        }
                    }
                }
                Segment::Media {
                    mime_type,
                    data,
                    tokens,
                } => {
                    items.media.push(false);
                    segments.push(Segment::Media {
                        mime_type,
                        data,
                        tokens,
                    });
                }
                other => segments.push(other),
            }
        }
        turn.segments = segments;
    }
    items.text_views = has_text.then_some((with, without));
    (Some(out), items)
}
