//! The engine contract: what the server sends an engine and what comes back.
//! Wire-neutral: no Gemini JSON, no HTTP.

use std::sync::Arc;

use tokio::sync::mpsc;

/// What a loaded model is and can do.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The local model id (`models/<id>` on the wire).
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// Context window in tokens (prompt + output).
    pub context_length: u32,
    /// Largest maxOutputTokens accepted.
    pub max_output_tokens: u32,
    pub capabilities: Capabilities,
    /// Sampling used where a request sets none (Gemini's `Model.temperature`,
    /// `topP`, `topK`).
    pub sampling: SamplingDefaults,
}

/// A model's own default sampling: Gemini gives each model its own, and a
/// small open model at Gemini's 1.0 / 0.95 / 64 easily degenerates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
}

impl Default for SamplingDefaults {
    /// Gemini 2.5's defaults.
    fn default() -> Self {
        SamplingDefaults {
            temperature: 1.0,
            top_p: 0.95,
            top_k: 64,
        }
    }
}

/// Features a model (and the engine running it) supports. Anything a request
/// asks for beyond these is a 400 naming the field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    /// The model can think (emits thought text before its answer).
    pub thinking: bool,
    /// Media kinds the model can read, as MIME type prefixes ("image/").
    pub media: Vec<String>,
    /// The side, in pixels, of the images its projector reads (pages of
    /// documents are rendered to it); `None`: unknown or no projector.
    pub image_size: Option<u32>,
    /// Function declarations can be rendered and calls parsed.
    pub function_calling: bool,
    /// Output can be constrained by a JSON schema / an enum.
    pub constrained_output: bool,
}

impl Capabilities {
    pub fn reads(&self, mime_type: &str) -> bool {
        self.media.iter().any(|p| mime_type.starts_with(p.as_str()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Model,
}

/// One piece of a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text(String),
    /// Bytes the model reads (image, audio, video, document).
    Media {
        mime_type: String,
        data: Arc<Vec<u8>>,
        /// The image tokens wanted (`mediaResolution`); None: the
        /// projector's own count. Only projectors with a token budget
        /// (Gemma 4's) honour it; others refuse it.
        tokens: Option<u32>,
    },
    /// A function call the model made earlier.
    ToolCall {
        id: Option<String>,
        name: String,
        args: serde_json::Value,
    },
    /// The result of a function call, sent back by the user.
    ToolResult {
        id: Option<String>,
        name: String,
        response: serde_json::Value,
    },
    /// A document (a PDF) as the model reads it: its text and page images
    /// in order. Its tokens are reported as the DOCUMENT modality.
    Document(Vec<DocumentPart>),
    /// A video as the model reads it: sampled frames, each after its
    /// timestamp, then its audio track. Frames are reported as VIDEO, the
    /// track as AUDIO.
    Video {
        parts: Vec<VideoPart>,
        /// The tokens wanted for each frame, as [`Segment::Media`]'s.
        tokens: Option<u32>,
    },
}

/// A piece of a [`Segment::Video`].
#[derive(Debug, Clone, PartialEq)]
pub enum VideoPart {
    /// Where the next frame is in the video (`MM:SS`).
    Timestamp(String),
    /// A frame (PNG).
    Frame(Arc<Vec<u8>>),
    /// The audio track (WAV), for a model that reads audio.
    Audio(Arc<Vec<u8>>),
}

/// The `mime_type` of a [`Segment::Media`] that is a frame of a video (PNG
/// bytes): read as an image, counted as VIDEO.
pub const VIDEO_FRAME: &str = "video/x-hearth-frame";

/// A piece of a [`Segment::Document`].
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentPart {
    Text(String),
    /// A page rendered as an image (PNG), for a model that reads images.
    Image(Arc<Vec<u8>>),
}

/// A prompt's tokens, and those of them that images and documents fill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptTokens {
    pub total: u32,
    /// Positions filled by images (not those of document pages).
    pub image: u32,
    /// Tokens of documents: their text and page images.
    pub document: u32,
    /// Positions filled by audio clips.
    pub audio: u32,
    /// Positions filled by the frames of videos.
    pub video: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub role: Role,
    pub segments: Vec<Segment>,
}

/// A function the model may call; `parameters` is JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Option<serde_json::Value>,
}

/// The conversation to continue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// The system instruction: text, and media where the model reads them
    /// (empty: none).
    pub system: Vec<Segment>,
    pub turns: Vec<Turn>,
    pub tools: Vec<ToolSpec>,
}

/// Sampling parameters, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Same seed + same request = same output on the same machine.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

/// How much the model may think.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThinkingBudget {
    /// The model decides.
    #[default]
    Dynamic,
    Off,
    Tokens(u32),
}

/// A constraint on the answer's text.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputConstraint {
    /// Any JSON value.
    Json,
    /// JSON valid against this JSON Schema.
    JsonSchema(serde_json::Value),
    /// Exactly one of these strings.
    Enum(Vec<String>),
}

/// A validated generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub sampling: SamplingParams,
    /// None: until the end of turn or the end of the context window.
    pub max_output_tokens: Option<u32>,
    pub stop_sequences: Vec<String>,
    /// Independent samples of the same prompt (>= 1).
    pub candidate_count: u32,
    /// Some(n): report the chosen token's logprob and the top n alternatives.
    pub logprobs: Option<u32>,
    pub thinking: ThinkingBudget,
    pub constraint: Option<OutputConstraint>,
    pub tool_choice: ToolChoice,
    /// Detail at which media are read (None: the model's default).
    pub media_resolution: Option<MediaDetail>,
    /// Cached prefixes are reused only between requests of one scope (the
    /// server gives each API key its own when keys are configured), so one
    /// tenant never learns through `cachedContentTokenCount` or time to
    /// first token what another sent. 0: the shared scope.
    pub cache_scope: u64,
    /// Where the engine's log lines about this request go: the server's
    /// request span, so that they carry its request id.
    pub span: LogSpan,
}

/// A tracing span carried with a request; it takes no part in comparisons.
#[derive(Debug, Clone)]
pub struct LogSpan(pub tracing::Span);

impl Default for LogSpan {
    fn default() -> Self {
        LogSpan(tracing::Span::none())
    }
}

impl PartialEq for LogSpan {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Prompt {
    /// The system instruction's text (None: no system instruction, or one
    /// holding no text).
    pub fn system_text(&self) -> Option<String> {
        let texts: Vec<&str> = self
            .system
            .iter()
            .filter_map(|s| match s {
                Segment::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (!texts.is_empty()).then(|| texts.concat())
    }

    /// Every segment in the order the model reads them: the system
    /// instruction's, then each turn's.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.system
            .iter()
            .chain(self.turns.iter().flat_map(|t| &t.segments))
    }

    /// One user turn of text, no system instruction, no tools.
    pub fn user(text: impl Into<String>) -> Self {
        Prompt {
            system: Vec::new(),
            turns: vec![Turn {
                role: Role::User,
                segments: vec![Segment::Text(text.into())],
            }],
            tools: Vec::new(),
        }
    }
}

impl GenerateRequest {
    /// `prompt` with the defaults of a request that sets nothing else:
    /// sampling defaults, the model's output limit, one candidate, dynamic
    /// thinking, no constraint, AUTO function calling.
    pub fn new(prompt: Prompt) -> Self {
        GenerateRequest {
            prompt,
            sampling: SamplingParams::default(),
            max_output_tokens: None,
            stop_sequences: Vec::new(),
            candidate_count: 1,
            logprobs: None,
            thinking: ThinkingBudget::Dynamic,
            constraint: None,
            tool_choice: ToolChoice::Auto,
            media_resolution: None,
            cache_scope: 0,
            span: LogSpan::default(),
        }
    }
}

/// Whether and which functions the model may call.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must call one of these functions (all declared ones if empty).
    Any(Vec<String>),
    /// The model must not call functions.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDetail {
    Low,
    Medium,
    High,
}

/// Why a candidate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End of turn or a stop sequence.
    Stop,
    MaxTokens,
    MalformedFunctionCall,
}

/// Kind of text in a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Answer,
    Thought,
}

/// One alternative token with its log probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub token_id: i32,
    pub logprob: f32,
}

/// The chosen token and the top alternatives at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLogprobs {
    pub chosen: TokenLogprob,
    pub top: Vec<TokenLogprob>,
}

/// Token counts of one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateUsage {
    /// Answer tokens.
    pub output_tokens: u32,
    /// Thought tokens.
    pub thought_tokens: u32,
}

/// What an engine emits for one request, in order: `Started`, then deltas
/// and one `Finished` per candidate (candidates interleave), or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Started {
        prompt_tokens: u32,
        /// Prompt tokens whose KV was reused from an earlier request.
        cached_tokens: u32,
        /// Prompt positions filled by images (included in `prompt_tokens`).
        image_tokens: u32,
        /// Prompt tokens of documents (included in `prompt_tokens`).
        document_tokens: u32,
        /// Prompt positions filled by audio (included in `prompt_tokens`).
        audio_tokens: u32,
        /// Prompt positions filled by video frames (included in `prompt_tokens`).
        video_tokens: u32,
    },
    Delta {
        candidate: u32,
        kind: TextKind,
        text: String,
        /// Tokens behind this text (0 when text was held back earlier).
        tokens: u32,
        logprobs: Vec<StepLogprobs>,
    },
    ToolCall {
        candidate: u32,
        id: Option<String>,
        name: String,
        args: serde_json::Value,
    },
    Finished {
        candidate: u32,
        reason: FinishReason,
        usage: CandidateUsage,
    },
    Failed(EngineError),
}

/// The receiving end of a generation. Dropping it cancels the generation.
/// Unbounded so that the engine thread never waits on a slow reader: what a
/// stalled client leaves unread is bounded by its maxOutputTokens.
pub type EventStream = mpsc::UnboundedReceiver<EngineEvent>;

/// The part of a request an error is about, in the engine's own terms; the
/// server names it as its API does (for Gemini, a field path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The conversation as a whole (its length, its rendering).
    Contents,
    /// The parts of the conversation's i-th turn.
    TurnParts(usize),
    SystemInstruction,
    CandidateCount,
    /// JSON output without a schema (JSON mode), and output constraints in
    /// general.
    JsonOutput,
    /// The schema the answer must follow.
    Schema,
    /// Forced function calling.
    FunctionCalling,
    /// The functions a forced call may name.
    AllowedFunctions,
    /// The resolution media are read at.
    MediaResolution,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The request cannot be served as asked (a 400).
    #[error("{message}")]
    InvalidRequest {
        field: Option<Field>,
        message: String,
    },
    /// The prompt does not fit the context (a 400 on the conversation).
    #[error("the prompt has {tokens} tokens; at most {limit} fit")]
    PromptTooLong { tokens: u32, limit: u32 },
    /// No capacity now (a 429).
    #[error("{0}")]
    Overloaded(String),
    /// The engine is shutting down or gone (a 503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a backend failure (a 500).
    #[error("{0}")]
    Internal(String),
}

/// What an engine is doing now, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineStats {
    /// Requests being prefilled or decoded.
    pub running: u64,
    /// Requests accepted and waiting for a sequence.
    pub waiting: u64,
    /// Share of the KV cache's cells holding tokens (running and kept for
    /// reuse), 0 to 1.
    pub kv_usage: f64,
}

/// Counters the engine thread keeps up to date ([`EngineStats`]).
#[derive(Debug, Default)]
pub struct StatsCell {
    pub running: std::sync::atomic::AtomicU64,
    pub waiting: std::sync::atomic::AtomicU64,
    /// `kv_usage`'s bits (f64).
    pub kv_usage: std::sync::atomic::AtomicU64,
}

impl StatsCell {
    pub fn read(&self) -> EngineStats {
        use std::sync::atomic::Ordering::Relaxed;
        EngineStats {
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_usage: f64::from_bits(self.kv_usage.load(Relaxed)),
        }
    }
}

/// A loaded model behind the contract. Implementations own their threads;
/// calls here never block on generation.
pub trait Engine: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// What it is doing now (for `/metrics`); zeros where it does not say.
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }

    /// Tokens the prompt occupies once rendered through the chat template,
    /// with those of images and documents.
    fn count_tokens(&self, prompt: &Prompt) -> Result<PromptTokens, EngineError>;

    /// Starts a generation. Events arrive on the returned stream; dropping
    /// it stops the generation and frees its resources.
    fn generate(&self, request: GenerateRequest) -> Result<EventStream, EngineError>;
}
