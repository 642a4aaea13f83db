//! The per-candidate output pipeline: a candidate's state on its KV
//! sequence, and what becomes of each token it takes (thought or answer
//! text through UTF-8 assembly, stop sequences and the function-call
//! scanner, counted, sent as events), up to its end.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::contract::*;
use crate::output::{CallScanner, Dialect, Output, Piece, ToolPlan};
use crate::replies::ReplyMemory;
use crate::runner::{MediaPrompt, Tokenizer};
use crate::sampler::{log_sum_exp, Sampled, Sampler};
use crate::text::{StopMatcher, Utf8Assembler};

/// What [`Sequence::accept`] reads of the engine.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub tokenizer: &'a dyn Tokenizer,
    /// KV cells each sequence may use.
    pub seq_ctx: u32,
    /// Where finished plain replies leave their ids.
    pub replies: &'a ReplyMemory,
}

/// One candidate being generated, on its own KV sequence.
pub(super) struct Sequence {
    pub(super) seq: u32,
    pub(super) candidate: u32,
    /// Prompt tokens (shared by the candidates of a job).
    pub(super) prompt: Arc<Vec<i32>>,
    /// Prompt tokens already in the KV cache.
    pub(super) prefilled: usize,
    /// Positions (prompt and generated) in the KV cache.
    pub(super) in_kv: usize,
    /// Waits for the first candidate's prefill, then forks from it.
    pub(super) fork_of: Option<u32>,
    /// A prompt with media, not prefilled yet (the runner prefills it whole).
    pub(super) media: Option<MediaPrompt>,
    /// `(source, n)`: the active sequence `source` is prefilling the first
    /// `n` tokens of this prompt too; they enter this sequence as they enter
    /// the source (one computation, shared KV cells), and this sequence's own
    /// prefill waits until it holds them.
    pub(super) share: Option<(u32, usize)>,
    pub(super) generated: Vec<i32>,
    /// The sampled token not yet decoded.
    pub(super) next: Option<i32>,
    /// Tokens the grammar forced after `next` (jump-forward), accepted and
    /// shown already: decoded with it in one step, logits for the last only.
    pub(super) ahead: Vec<i32>,
    /// Speculation: steps to go without drafting, and drafts rejected in a
    /// row (each doubles the wait, so text that quotes nothing costs little).
    pub(super) spec_wait: u32,
    pub(super) spec_misses: u32,
    /// The next draft's length: doubles when a draft is taken whole, falls
    /// back to what was taken (at least `DRAFT_MIN`) otherwise.
    pub(super) spec_len: usize,
    pub(super) sampler: Sampler,
    pub(super) output: Output,
    pub(super) utf8: Utf8Assembler,
    pub(super) thought_utf8: Utf8Assembler,
    pub(super) stops: StopMatcher,
    /// Function calls cut out of the answer, when functions are declared.
    pub(super) calls: Option<(CallScanner, ToolPlan)>,
    /// Leading whitespace of the thought / of the answer after a thought is dropped.
    pub(super) thought_started: bool,
    pub(super) answer_started: bool,
    /// The reply held thoughts or calls (its text is not the plain decoding of its ids).
    pub(super) not_plain: bool,
    /// The answer text sent so far.
    pub(super) shown: String,
    pub(super) usage: CandidateUsage,
    pub(super) max_tokens: u32,
    pub(super) logprobs: bool,
    pub(super) events: mpsc::UnboundedSender<EngineEvent>,
    /// The scheduler's step count when it was admitted (prefill aging).
    pub(super) admitted: u64,
    /// Its request's log span (the server's request id).
    pub(super) span: tracing::Span,
}

impl Sequence {
    pub(super) fn pos(&self) -> u32 {
        (self.prefilled + self.generated.len()) as u32
    }

    /// Accepts one token into the candidate's output, shows its text,
    /// counts it; `Some(finished)` when the candidate ends here.
    pub(super) fn accept(&mut self, picked: Sampled, ctx: &Context<'_>) -> Option<bool> {
        let Context {
            tokenizer,
            seq_ctx,
            replies,
        } = *ctx;
        let s = self;
        if tokenizer.is_end(picked.token) && !s.output.thinking() {
            return Some(finish(s, FinishReason::Stop, Some(replies)));
        }
        let accepted = s.output.accept(picked.token);
        s.generated.push(picked.token);
        match accepted.kind {
            TextKind::Thought => {
                s.usage.thought_tokens += 1;
                s.not_plain = true;
            }
            TextKind::Answer => s.usage.output_tokens += 1,
        }
        let lp = if s.logprobs && accepted.kind == TextKind::Answer {
            let tl = |(t, l): (i32, f32)| TokenLogprob {
                token: String::from_utf8_lossy(&tokenizer.token_bytes(t)).into_owned(),
                token_id: t,
                logprob: l,
            };
            vec![StepLogprobs {
                chosen: tl((picked.token, picked.logprob)),
                top: picked.top.into_iter().map(tl).collect(),
            }]
        } else {
            Vec::new()
        };
        let bytes = tokenizer.token_bytes(picked.token);
        let mut stopped = false;
        if accepted.kind == TextKind::Thought {
            if !accepted.markup {
                let mut text = s.thought_utf8.push(&bytes);
                if !s.thought_started {
                    text = text.trim_start().to_string();
                    s.thought_started = !text.is_empty();
                }
                if !text.is_empty() && !send_text(s, TextKind::Thought, text, 1, Vec::new()) {
                    return Some(true);
                }
            } else if !s.output.thinking() {
                // The thought closed: what it held back (a cut UTF-8 sequence) goes now.
                let rest = s.thought_utf8.finish();
                if !rest.trim().is_empty() && !send_text(s, TextKind::Thought, rest, 0, Vec::new())
                {
                    return Some(true);
                }
            }
        } else {
            let text = s.utf8.push(&bytes);
            let out = s.stops.push(&text);
            stopped = out.stopped;
            match emit_answer(s, out.text, lp) {
                Emit::Ok => {}
                Emit::Closed => return Some(true),
                Emit::Malformed => {
                    return Some(finish(s, FinishReason::MalformedFunctionCall, None))
                }
            }
        }
        if stopped {
            s.stops = StopMatcher::new(Vec::new());
            s.utf8 = Utf8Assembler::default();
            return Some(finish(s, FinishReason::Stop, None));
        }
        if s.output.constraint_done() {
            // Only an end may follow a complete constrained answer.
            return Some(finish(s, FinishReason::Stop, None));
        }
        if s.generated.len() as u32 >= s.max_tokens || s.pos() >= seq_ctx {
            return Some(finish(s, FinishReason::MaxTokens, Some(replies)));
        }
        None
    }
}

/// What became of answer text.
enum Emit {
    Ok,
    /// The receiver is gone.
    Closed,
    /// A function call did not parse (or named an undeclared function).
    Malformed,
}

/// The next token as plain decoding picks it: a forced one (markers), or a
/// sample from the masked logits.
pub(super) fn pick(s: &mut Sequence, logits: &mut [f32]) -> Sampled {
    match s.output.forced() {
        Some(t) => {
            let log_z = log_sum_exp(logits);
            Sampled {
                token: t,
                logprob: logits
                    .get(t as usize)
                    .map_or(f32::NEG_INFINITY, |l| l - log_z),
                top: Vec::new(),
            }
        }
        None => {
            s.output.mask(logits);
            s.sampler.sample(&s.generated, logits)
        }
    }
}

/// Sends one delta; false when the receiver is gone.
fn send_text(
    s: &mut Sequence,
    kind: TextKind,
    text: String,
    tokens: u32,
    logprobs: Vec<StepLogprobs>,
) -> bool {
    if kind == TextKind::Answer {
        s.shown.push_str(&text);
    }
    s.events
        .send(EngineEvent::Delta {
            candidate: s.candidate,
            kind,
            text,
            tokens,
            logprobs,
        })
        .is_ok()
}

/// Answer text: function calls cut out and parsed, the rest sent as text.
fn emit_answer(s: &mut Sequence, text: String, lp: Vec<StepLogprobs>) -> Emit {
    let pieces = match s.calls.as_mut() {
        Some((scanner, _)) => scanner.push(&text),
        None => vec![Piece::Text(text)],
    };
    emit_pieces(s, pieces, lp, 1)
}

/// Sends pieces of answer text; the first delta carries `tokens`.
fn emit_pieces(
    s: &mut Sequence,
    pieces: Vec<Piece>,
    mut lp: Vec<StepLogprobs>,
    mut tokens: u32,
) -> Emit {
    let had_tokens = tokens;
    for piece in pieces {
        match piece {
            Piece::Text(mut text) => {
                if !s.answer_started && s.not_plain {
                    text = text.trim_start().to_string();
                }
                if text.is_empty() {
                    continue;
                }
                s.answer_started = true;
                if !send_text(s, TextKind::Answer, text, tokens, std::mem::take(&mut lp)) {
                    return Emit::Closed;
                }
                tokens = 0;
            }
            Piece::Call(raw) => {
                let Some((_, plan)) = s.calls.as_ref() else {
                    continue;
                };
                s.not_plain = true;
                match plan.dialect.parse(&raw) {
                    // A JSON answer that is no call at all is text.
                    None if plan.dialect == Dialect::Json && !raw.contains("\"name\"") => {
                        s.answer_started = true;
                        if !send_text(s, TextKind::Answer, raw, tokens, std::mem::take(&mut lp)) {
                            return Emit::Closed;
                        }
                        tokens = 0;
                    }
                    Some((name, args)) if plan.names.contains(&name) => {
                        let ev = EngineEvent::ToolCall {
                            candidate: s.candidate,
                            id: None,
                            name,
                            args,
                        };
                        if s.events.send(ev).is_err() {
                            return Emit::Closed;
                        }
                    }
                    _ => return Emit::Malformed,
                }
            }
        }
    }
    if tokens == had_tokens
        && !lp.is_empty()
        && !send_text(s, TextKind::Answer, String::new(), tokens, lp)
    {
        return Emit::Closed;
    }
    Emit::Ok
}

/// Flushes held text and reports the end of a candidate. Always true.
/// `replies`: where a plain reply (no thought, no call, not cut by a stop
/// sequence) leaves its ids under the exact text the client received.
pub(super) fn finish(
    s: &mut Sequence,
    mut reason: FinishReason,
    replies: Option<&ReplyMemory>,
) -> bool {
    let thought = s.thought_utf8.finish();
    if !thought.trim().is_empty() {
        let _ = send_text(s, TextKind::Thought, thought, 0, Vec::new());
    }
    let tail = s.utf8.finish();
    let mut text = s.stops.push(&tail).text;
    text.push_str(&s.stops.finish());
    if reason != FinishReason::MalformedFunctionCall {
        let mut pieces = match s.calls.as_mut() {
            Some((scanner, _)) => scanner.push(&text),
            None => vec![Piece::Text(text)],
        };
        if let Some((scanner, _)) = s.calls.as_mut() {
            pieces.extend(scanner.finish());
        }
        if let Emit::Malformed = emit_pieces(s, pieces, Vec::new(), 0) {
            reason = FinishReason::MalformedFunctionCall;
        }
    }
    if let Some(replies) = replies {
        if !s.not_plain && reason != FinishReason::MalformedFunctionCall && !s.shown.is_empty() {
            replies.remember(s.shown.clone(), s.generated.clone());
        }
    }
    let _ = s.events.send(EngineEvent::Finished {
        candidate: s.candidate,
        reason,
        usage: s.usage,
    });
    true
}
