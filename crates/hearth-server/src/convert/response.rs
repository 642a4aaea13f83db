//! Engine events -> GenerateContentResponse (whole, or as stream chunks).

use std::collections::BTreeMap;

use hearth_engine::{
    CandidateUsage, EngineEvent, FinishReason, PromptTokens, StepLogprobs, TextKind, TokenLogprob,
};
use hearth_wire as wire;
use wire::{
    Candidate, Content, GenerateContentResponse, LogprobsResult, Modality, ModalityTokenCount,
    Part, UsageMetadata,
};

use crate::error::ApiError;

/// What every response of one request shares.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub response_id: String,
    pub model_version: String,
    pub include_thoughts: bool,
    pub response_logprobs: bool,
    pub candidate_count: u32,
}

impl ResponseMeta {
    /// Whether text of this kind is returned (thoughts only when asked).
    fn shows(&self, kind: TextKind, text: &str) -> bool {
        !text.is_empty() && (kind == TextKind::Answer || self.include_thoughts)
    }
}

fn finish_reason(r: FinishReason) -> wire::FinishReason {
    match r {
        FinishReason::Stop => wire::FinishReason::Stop,
        FinishReason::MaxTokens => wire::FinishReason::MaxTokens,
        FinishReason::MalformedFunctionCall => wire::FinishReason::MalformedFunctionCall,
    }
}

fn logprobs_result(steps: &[StepLogprobs]) -> LogprobsResult {
    let cand = |t: &TokenLogprob| wire::LogprobsCandidate {
        token: Some(t.token.clone()),
        token_id: Some(t.token_id),
        log_probability: Some(f64::from(t.logprob)),
    };
    LogprobsResult {
        chosen_candidates: steps.iter().map(|s| cand(&s.chosen)).collect(),
        top_candidates: steps
            .iter()
            .map(|s| wire::TopCandidates {
                candidates: s.top.iter().map(cand).collect(),
            })
            .collect(),
        log_probability_sum: Some(steps.iter().map(|s| f64::from(s.chosen.logprob)).sum()),
    }
}

/// Appends text to the parts, merging with the previous part of the same
/// kind; true when a new part was started.
fn push_text(parts: &mut Vec<Part>, kind: TextKind, text: &str) -> bool {
    let thought = (kind == TextKind::Thought).then_some(true);
    if let Some(last) = parts.last_mut() {
        if last.thought == thought {
            if let Some(t) = &mut last.text {
                t.push_str(text);
                return false;
            }
        }
    }
    parts.push(Part {
        thought,
        ..Part::text(text)
    });
    true
}

/// The opaque signature of a reply that was thought through: it goes on the
/// first part after the thought, and comes back with the history (where
/// hearth accepts it; the thought itself is not kept).
const THOUGHT_SIGNATURE: &str = "aGVhcnRoLXRob3VnaHQtdjE="; // "hearth-thought-v1"

/// Signs the first answer or call part of a candidate that thought.
#[derive(Debug, Default)]
struct Signer {
    thought: std::collections::BTreeSet<u32>,
    signed: std::collections::BTreeSet<u32>,
}

impl Signer {
    fn saw(&mut self, candidate: u32, kind: TextKind) {
        if kind == TextKind::Thought {
            self.thought.insert(candidate);
        }
    }

    /// Call with the part just started (answer text or function call).
    fn sign(&mut self, candidate: u32, part: Option<&mut Part>) {
        if let Some(part) = part {
            if part.thought.is_none()
                && self.thought.contains(&candidate)
                && self.signed.insert(candidate)
            {
                part.thought_signature = Some(THOUGHT_SIGNATURE.into());
            }
        }
    }
}

fn function_call_part(id: &Option<String>, name: &str, args: &serde_json::Value) -> Part {
    Part {
        function_call: Some(wire::FunctionCall {
            id: id.clone(),
            name: name.to_string(),
            args: args.as_object().cloned(),
        }),
        ..Part::default()
    }
}

/// Token counts of the whole request so far.
#[derive(Debug, Default, Clone)]
struct Usage {
    prompt: u32,
    cached: u32,
    /// Prompt tokens that are images.
    images: u32,
    /// Prompt tokens of documents.
    documents: u32,
    /// Prompt tokens that are audio.
    audio: u32,
    /// Prompt tokens that are video frames.
    video: u32,
    per_candidate: BTreeMap<u32, CandidateUsage>,
}

impl Usage {
    /// Token bookkeeping of one event (Finished carries the final counts).
    fn observe(&mut self, ev: &EngineEvent) {
        match ev {
            EngineEvent::Started {
                prompt_tokens,
                cached_tokens,
                image_tokens,
                document_tokens,
                audio_tokens,
                video_tokens,
            } => {
                self.prompt = *prompt_tokens;
                self.cached = *cached_tokens;
                self.images = *image_tokens;
                self.documents = *document_tokens;
                self.audio = *audio_tokens;
                self.video = *video_tokens;
            }
            EngineEvent::Delta {
                candidate,
                kind,
                tokens,
                ..
            } => self.count(*candidate, *kind, *tokens),
            EngineEvent::Finished {
                candidate, usage, ..
            } => {
                self.per_candidate.insert(*candidate, *usage);
            }
            EngineEvent::ToolCall { .. } | EngineEvent::Failed(_) => {}
        }
    }

    fn metadata(&self) -> UsageMetadata {
        let out: u32 = self.per_candidate.values().map(|u| u.output_tokens).sum();
        let thoughts: u32 = self.per_candidate.values().map(|u| u.thought_tokens).sum();
        let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        UsageMetadata {
            prompt_token_count: Some(n(self.prompt)),
            cached_content_token_count: (self.cached > 0).then(|| n(self.cached)),
            candidates_token_count: (out > 0).then(|| n(out)),
            thoughts_token_count: (thoughts > 0).then(|| n(thoughts)),
            total_token_count: Some(n(self.prompt + out + thoughts)),
            prompt_tokens_details: Some(prompt_details(PromptTokens {
                total: self.prompt,
                image: self.images,
                document: self.documents,
                audio: self.audio,
                video: self.video,
            })),
            cache_tokens_details: (self.cached > 0).then(|| {
                vec![ModalityTokenCount {
                    modality: Modality::Text,
                    token_count: n(self.cached),
                }]
            }),
            ..UsageMetadata::default()
        }
    }

    fn count(&mut self, candidate: u32, kind: TextKind, tokens: u32) {
        let u = self.per_candidate.entry(candidate).or_default();
        match kind {
            TextKind::Answer => u.output_tokens += tokens,
            TextKind::Thought => u.thought_tokens += tokens,
        }
    }
}

#[derive(Debug, Default)]
struct CandidateState {
    parts: Vec<Part>,
    logprobs: Vec<StepLogprobs>,
    finish: Option<FinishReason>,
}

/// Collects a whole generation into one response (generateContent).
pub struct CandidateSet {
    meta: ResponseMeta,
    usage: Usage,
    candidates: BTreeMap<u32, CandidateState>,
    signer: Signer,
}

impl CandidateSet {
    pub fn new(meta: ResponseMeta) -> Self {
        CandidateSet {
            meta,
            usage: Usage::default(),
            candidates: BTreeMap::new(),
            signer: Signer::default(),
        }
    }

    pub fn push(&mut self, ev: EngineEvent) -> Result<(), ApiError> {
        self.usage.observe(&ev);
        match ev {
            EngineEvent::Started { .. } => {}
            EngineEvent::Delta {
                candidate,
                kind,
                text,
                logprobs,
                ..
            } => {
                let c = self.candidates.entry(candidate).or_default();
                self.signer.saw(candidate, kind);
                if self.meta.shows(kind, &text) && push_text(&mut c.parts, kind, &text) {
                    self.signer.sign(candidate, c.parts.last_mut());
                }
                c.logprobs.extend(logprobs);
            }
            EngineEvent::ToolCall {
                candidate,
                id,
                name,
                args,
            } => {
                let c = self.candidates.entry(candidate).or_default();
                c.parts.push(function_call_part(&id, &name, &args));
                self.signer.sign(candidate, c.parts.last_mut());
            }
            EngineEvent::Finished {
                candidate, reason, ..
            } => {
                self.candidates.entry(candidate).or_default().finish = Some(reason);
            }
            EngineEvent::Failed(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The response, once the event stream has ended.
    pub fn finish(self) -> Result<GenerateContentResponse, ApiError> {
        let done = self
            .candidates
            .values()
            .filter(|c| c.finish.is_some())
            .count();
        if done < self.meta.candidate_count as usize {
            return Err(ApiError::internal(
                "the engine stopped before finishing every candidate",
            ));
        }
        let candidates = self
            .candidates
            .into_iter()
            .map(|(i, c)| {
                candidate(
                    i,
                    c.parts,
                    c.finish,
                    &c.logprobs,
                    self.meta.response_logprobs,
                )
            })
            .collect();
        Ok(GenerateContentResponse {
            candidates: Some(candidates),
            usage_metadata: Some(self.usage.metadata()),
            model_version: Some(self.meta.model_version),
            response_id: Some(self.meta.response_id),
            prompt_feedback: None,
        })
    }
}

fn candidate(
    index: u32,
    parts: Vec<Part>,
    finish: Option<FinishReason>,
    logprobs: &[StepLogprobs],
    with_logprobs: bool,
) -> Candidate {
    let avg = (with_logprobs && !logprobs.is_empty()).then(|| {
        logprobs
            .iter()
            .map(|s| f64::from(s.chosen.logprob))
            .sum::<f64>()
            / logprobs.len() as f64
    });
    Candidate {
        content: Some(Content {
            role: Some("model".into()),
            parts,
        }),
        finish_reason: finish.map(finish_reason),
        index: Some(index as i32),
        avg_logprobs: avg,
        logprobs_result: with_logprobs.then(|| logprobs_result(logprobs)),
        ..Candidate::default()
    }
}

/// Turns events into stream chunks. Events are gathered into the pending
/// parts of their candidate until [`ChunkBuilder::flush`] (the stream calls
/// it when no further event is ready, so what one engine step produced goes
/// out at once, in one chunk per candidate). Nothing waits for a later
/// step: a piece held until the next token would reach the client one step
/// late, and a step under load is hundreds of milliseconds. A candidate's
/// last chunk always has parts, with its finishReason: the text that came
/// with the end, else one empty text part (a chunk without parts makes both
/// SDKs' chats drop the whole turn; an empty text part does not).
pub struct ChunkBuilder {
    meta: ResponseMeta,
    usage: Usage,
    pending: BTreeMap<u32, CandidateState>,
    finished: u32,
    signer: Signer,
}

impl ChunkBuilder {
    pub fn new(meta: ResponseMeta) -> Self {
        ChunkBuilder {
            meta,
            usage: Usage::default(),
            pending: BTreeMap::new(),
            finished: 0,
            signer: Signer::default(),
        }
    }

    /// Chunks ready to send after this event (Err: a mid-stream error).
    pub fn push(&mut self, ev: EngineEvent) -> Result<Vec<GenerateContentResponse>, ApiError> {
        let mut out = Vec::new();
        self.usage.observe(&ev);
        match ev {
            EngineEvent::Started { .. } => {}
            EngineEvent::Delta {
                candidate,
                kind,
                text,
                logprobs,
                ..
            } => {
                let shown = self.meta.shows(kind, &text);
                self.signer.saw(candidate, kind);
                let p = self.pending.entry(candidate).or_default();
                if shown && push_text(&mut p.parts, kind, &text) {
                    self.signer.sign(candidate, p.parts.last_mut());
                }
                p.logprobs.extend(logprobs);
            }
            EngineEvent::ToolCall {
                candidate,
                id,
                name,
                args,
            } => {
                let p = self.pending.entry(candidate).or_default();
                p.parts.push(function_call_part(&id, &name, &args));
                self.signer.sign(candidate, p.parts.last_mut());
            }
            EngineEvent::Finished {
                candidate, reason, ..
            } => {
                self.finished += 1;
                let mut p = self.pending.remove(&candidate).unwrap_or_default();
                if p.parts.is_empty() {
                    p.parts.push(Part::text(""));
                    self.signer.sign(candidate, p.parts.last_mut());
                }
                p.finish = Some(reason);
                out.push(self.chunk(candidate, p));
            }
            EngineEvent::Failed(e) => return Err(e.into()),
        }
        Ok(out)
    }

    /// Whether every candidate has finished.
    pub fn complete(&self) -> bool {
        self.finished >= self.meta.candidate_count
    }

    /// One chunk per candidate with pending parts (what the events pushed
    /// since the last flush showed, also what is held when a stream breaks
    /// off before an error); logprobs go with their text.
    pub fn flush(&mut self) -> Vec<GenerateContentResponse> {
        let ready: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| !p.parts.is_empty())
            .map(|(i, _)| *i)
            .collect();
        ready
            .into_iter()
            .filter_map(|i| {
                let p = self.pending.remove(&i)?;
                Some(self.chunk(i, p))
            })
            .collect()
    }

    fn chunk(&self, index: u32, p: CandidateState) -> GenerateContentResponse {
        let with = self.meta.response_logprobs;
        GenerateContentResponse {
            candidates: Some(vec![candidate(index, p.parts, p.finish, &p.logprobs, with)]),
            usage_metadata: Some(self.usage.metadata()),
            model_version: Some(self.meta.model_version.clone()),
            response_id: Some(self.meta.response_id.clone()),
            prompt_feedback: None,
        }
    }
}

/// `promptTokensDetails`: the prompt's tokens by modality (TEXT always, the
/// others when present), as Gemini reports them.
pub fn prompt_details(t: PromptTokens) -> Vec<ModalityTokenCount> {
    let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let text = t
        .total
        .saturating_sub(t.image)
        .saturating_sub(t.document)
        .saturating_sub(t.audio)
        .saturating_sub(t.video);
    [
        (Modality::Text, text),
        (Modality::Image, t.image),
        (Modality::Video, t.video),
        (Modality::Audio, t.audio),
        (Modality::Document, t.document),
    ]
    .into_iter()
    .filter(|&(m, count)| count > 0 || m == Modality::Text)
    .map(|(modality, count)| ModalityTokenCount {
        modality,
        token_count: n(count),
    })
    .collect()
}
