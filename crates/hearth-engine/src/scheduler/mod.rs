//! The engine thread: continuous batching over one runner. Every step,
//! each decoding sequence advances by one token and prompts are prefilled
//! in chunks, all in one multi-sequence decode. New requests join between
//! steps; a request whose receiver is gone is dropped and its KV freed.

//!
//! It is four parts: this loop (admission, the step, sampling); the owner
//! of KV sequence ids and their kept prefixes (`slots`, invariants checked
//! on every move); the pure step planner that picks the prompt tokens of a
//! step (`plan`); and the per-candidate output pipeline (`emit`).

mod emit;
mod plan;
mod slots;

use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::contract::*;
use crate::output::{CallScanner, OutputPlan};
use crate::replies::ReplyMemory;
use crate::runner::{BatchToken, MediaPrompt, Runner, Tokenizer, MEDIA_POSITION};
use crate::sampler::{Sampled, Sampler};
use crate::text::{StopMatcher, Utf8Assembler};
use emit::{pick, Context, Sequence};
use slots::Slots;

/// A tokenized request on its way to the engine thread.
/// Most tokens a sequence jumps forward in one step.
const JUMP_MAX: usize = 16;

/// Most draft tokens of prompt-lookup speculation in one step.
const DRAFT_MAX: usize = 8;

/// Draft tokens a sequence starts with: a rejected draft costs its rows'
/// compute (on a CPU a row costs nearly a token's decode), so drafts grow
/// only as they are taken.
const DRAFT_MIN: usize = 2;

/// Prompt-lookup drafting: the tokens that followed the most recent earlier
/// occurrence of the context's last n-gram (the longest of 5, 4, 3 tokens
/// found; shorter ones match ordinary text by chance), up to `max`. Empty
/// when the context repeats nothing.
fn draft(prompt: &[i32], generated: &[i32], max: usize) -> Vec<i32> {
    let all: Vec<i32> = prompt.iter().chain(generated).copied().collect();
    let len = all.len();
    for n in [5usize, 4, 3] {
        if len <= n || max == 0 {
            continue;
        }
        let key = &all[len - n..];
        if key.contains(&MEDIA_POSITION) {
            return Vec::new();
        }
        for start in (0..len - n).rev() {
            if &all[start..start + n] == key {
                let from = start + n;
                let out: Vec<i32> = all[from..(from + max).min(len)]
                    .iter()
                    .copied()
                    .take_while(|&t| t != MEDIA_POSITION)
                    .collect();
                if !out.is_empty() {
                    return out;
                }
            }
        }
    }
    Vec::new()
}

/// Where a request's events go.
type Events = mpsc::UnboundedSender<EngineEvent>;

/// Where a text prompt starts ([`Scheduler::place`]): its sequence, the
/// prompt tokens it already holds, and the running sequence (with how many
/// tokens) it takes the rest of its shared prefix from as that is computed.
type Placed = (u32, usize, Option<(u32, usize)>);

pub struct Job {
    pub tokens: Vec<i32>,
    /// The tokens of its images and documents.
    pub counts: PromptTokens,
    pub request: GenerateRequest,
    pub max_tokens: u32,
    /// Thinking, the answer's constraint, function calls.
    pub plan: OutputPlan,
    /// A prompt holding media: prefilled whole by the runner (`tokens` then
    /// has a placeholder at each media position).
    pub media: Option<MediaPrompt>,
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

#[derive(Clone)]
pub struct SchedulerConfig {
    /// Where the loop reports what it is doing ([`crate::EngineStats`]).
    pub stats: Arc<StatsCell>,
    /// KV cells each sequence may use (prompt + output).
    pub seq_ctx: u32,
    /// Tokens per step of long prompts while other sequences run: a prompt
    /// longer than this, or one that does not finish in the step, takes at
    /// most this many (all such prompts together). Short prompts are
    /// prefilled whole, up to the runner's batch.
    pub prefill_chunk: usize,
    /// Where finished replies leave their token ids for the next turn.
    pub replies: Arc<ReplyMemory>,
    /// Jump-forward constrained decoding (see `Scheduler::jump_room`).
    pub jump_forward: bool,
    /// Prompt-lookup speculation when one stream runs alone (see `draft`).
    pub speculate: bool,
}

struct Scheduler {
    runner: Box<dyn Runner>,
    tokenizer: Arc<dyn Tokenizer>,
    config: SchedulerConfig,
    /// The running candidates, each on a busy sequence of `slots`.
    active: Vec<Sequence>,
    /// Every sequence id, idle or busy.
    slots: Slots,
    /// The runner shares KV cells between sequences: a new prompt may take
    /// its prefix from any active sequence ([`Runner::shares_prefixes`]).
    share: bool,
    /// Steps run so far.
    steps: u64,
    /// Logits of the row being sampled (reused).
    row: Vec<f32>,
}

/// The engine thread's loop; returns when every engine handle is dropped.
pub fn run(
    runner: Box<dyn Runner>,
    tokenizer: Arc<dyn Tokenizer>,
    config: SchedulerConfig,
    jobs: &std_mpsc::Receiver<Job>,
) {
    let slots = Slots::new(
        runner.max_sequences(),
        runner.prefers_consecutive_sequences(),
    );
    let share = runner.shares_prefixes();
    let mut s = Scheduler {
        runner,
        tokenizer,
        config,
        active: Vec::new(),
        slots,
        share,
        steps: 0,
        row: Vec::new(),
    };
    loop {
        if s.active.is_empty() {
            s.report();
            match jobs.recv() {
                Ok(job) => s.take_job(job),
                Err(_) => return,
            }
        }
        while s.slots.idle() > 0 {
            match jobs.try_recv() {
                Ok(job) => s.take_job(job),
                Err(_) => break,
            }
        }
        s.step();
        s.report();
    }
}

/// When the engine thread panics (llama-cpp-2 panics on some invalid rows),
/// the requests it was running fail with an error as it unwinds, rather
/// than seeing their streams cut; the thread then starts over
/// ([`crate::llm::LlmEngine::start`]).
impl Drop for Scheduler {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let err = EngineError::Internal(
            "An internal error has occurred: the model's engine failed while running this request and was restarted; please retry.".into(),
        );
        let mut told: Vec<&Events> = Vec::new();
        for s in &self.active {
            if !told.iter().any(|e| e.same_channel(&s.events)) {
                let _ = s.events.send(EngineEvent::Failed(err.clone()));
                told.push(&s.events);
            }
        }
    }
}

impl Scheduler {
    /// A job off the queue: no longer waiting.
    fn take_job(&mut self, job: Job) {
        let w = &self.config.stats.waiting;
        let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
        self.admit(job);
    }

    /// Publishes what is running and how full the KV cache is.
    fn report(&self) {
        let running = self.active.iter().filter(|s| s.candidate == 0).count() as u64;
        let cells: usize =
            self.active.iter().map(|s| s.in_kv).sum::<usize>() + self.slots.kept_cells();
        let capacity = self.runner.kv_capacity().max(1) as f64;
        let stats = &self.config.stats;
        stats.running.store(running, Ordering::Relaxed);
        stats.kv_usage.store(
            (cells as f64 / capacity).min(1.0).to_bits(),
            Ordering::Relaxed,
        );
    }

    /// Takes a job if there are sequences for all its candidates (else it
    /// waits for the next step: the job stays first in line).
    fn admit(&mut self, job: Job) {
        // What is logged here is logged under the request's id.
        let span = job.request.span.0.clone();
        let _in_request = span.enter();
        let n = job.request.candidate_count.max(1) as usize;
        if self.slots.idle() < n {
            // Not enough sequences now: fail fast only if it can never fit.
            if n > self.runner.max_sequences() as usize {
                let _ = job
                    .events
                    .send(EngineEvent::Failed(EngineError::InvalidRequest {
                        field: Some(Field::CandidateCount),
                        message: format!(
                            "this server runs at most {} sequences at once",
                            self.runner.max_sequences()
                        ),
                    }));
                return;
            }
            self.wait_for_room(n);
        }
        // From here every candidate has a sequence: at least n are idle
        // (checked, not assumed: a request never gets Started without a
        // Finished or a Failed to follow).
        let no_room = || {
            EngineEvent::Failed(EngineError::Internal(
                "An internal error has occurred: no free sequence for this request.".into(),
            ))
        };
        if self.slots.idle() < n {
            tracing::error!(
                "admit: {} free sequences for {n} candidates",
                self.slots.idle()
            );
            let _ = job.events.send(no_room());
            return;
        }
        let prompt = Arc::new(job.tokens);
        let mut media = job.media;
        // A prompt with media is prefilled whole, from position 0.
        let (first_seq, reused, mut share) = if media.is_some() {
            let Some(seq) = self.slots.take_lru(self.runner.as_mut()) else {
                let _ = job.events.send(no_room());
                return;
            };
            (seq, 0, None)
        } else {
            let Some((seq, reused, share)) = self.place(&prompt, job.request.cache_scope) else {
                let _ = job.events.send(no_room());
                return;
            };
            let reused = if share.is_none() {
                self.fill_tile(seq, prompt.len(), reused)
            } else {
                reused
            };
            (seq, reused, share)
        };
        let _ = job.events.send(EngineEvent::Started {
            prompt_tokens: prompt.len() as u32,
            cached_tokens: reused as u32,
            image_tokens: job.counts.image,
            audio_tokens: job.counts.audio,
            video_tokens: job.counts.video,
            document_tokens: job.counts.document,
        });
        let top = job.request.logprobs.unwrap_or(0) as usize;
        for c in 0..n as u32 {
            let (seq, prefilled) = if c == 0 {
                (first_seq, reused)
            } else {
                let Some(seq) = self.slots.take_lru(self.runner.as_mut()) else {
                    // Unreachable (n were free); the ones taken go back.
                    for i in (0..self.active.len()).rev() {
                        if self.active[i].events.same_channel(&job.events) {
                            self.release(i);
                        }
                    }
                    let _ = job.events.send(no_room());
                    return;
                };
                (seq, 0)
            };
            self.slots.set_scope(seq, job.request.cache_scope);
            self.active.push(Sequence {
                seq,
                candidate: c,
                prompt: prompt.clone(),
                prefilled,
                in_kv: prefilled,
                fork_of: (c > 0).then_some(first_seq),
                media: if c == 0 { media.take() } else { None },
                share: if c == 0 { share.take() } else { None },
                generated: Vec::new(),
                next: None,
                ahead: Vec::new(),
                spec_wait: 0,
                spec_misses: 0,
                spec_len: DRAFT_MIN,
                sampler: Sampler::new(job.request.sampling.clone(), u64::from(c), top)
                    .with_logprob(job.request.logprobs.is_some()),
                output: job.plan.start(),
                utf8: Utf8Assembler::default(),
                thought_utf8: Utf8Assembler::default(),
                stops: StopMatcher::new(job.request.stop_sequences.clone()),
                calls: job
                    .plan
                    .tools
                    .as_ref()
                    .filter(|t| t.blocked.is_none())
                    .map(|t| (CallScanner::new(t.dialect), t.clone())),
                thought_started: false,
                answer_started: false,
                not_plain: false,
                shown: String::new(),
                usage: CandidateUsage::default(),
                max_tokens: job.max_tokens,
                logprobs: job.request.logprobs.is_some(),
                events: job.events.clone(),
                admitted: self.steps,
                span: span.clone(),
            });
        }
    }

    /// Where a text prompt starts. Its prefix comes from the sequence that
    /// shares the longest one with it (at least one prompt token is always
    /// recomputed, for its logits): an idle sequence is taken and truncated
    /// to it; an active one (when the runner shares KV between sequences)
    /// gives it to an emptied sequence: at once as far as its KV holds it,
    /// the rest as its prefill goes (the returned share). Returns the
    /// sequence, the reused token count and the share.
    fn place(&mut self, prompt: &[i32], scope: u64) -> Option<Placed> {
        let limit = prompt.len().saturating_sub(1);
        if self.share {
            let idle_best = self.slots.best_idle_prefix(prompt, scope).min(limit);
            let active = self
                .active
                .iter()
                .filter(|s| s.fork_of.is_none() && s.media.is_none() && s.share.is_none())
                .filter(|s| self.slots.scope(s.seq) == scope)
                .map(|s| {
                    let held = s.prompt.len().max(s.in_kv);
                    let common = s
                        .prompt
                        .iter()
                        .chain(&s.generated)
                        .take(held)
                        .zip(prompt)
                        .take_while(|(a, b)| a == b)
                        .count()
                        .min(limit);
                    (s.seq, common, common.min(s.in_kv))
                })
                .max_by_key(|&(_, common, ready)| (common, ready));
            if let Some((src, common, ready)) = active.filter(|a| a.1 > idle_best) {
                if let Some(seq) = self.slots.take_lru(self.runner.as_mut()) {
                    if ready > 0 {
                        if let Err(e) = self.runner.seq_copy(src, seq, 0, Some(ready as u32)) {
                            // Computed anew instead: nothing is taken from src.
                            tracing::warn!("prefix copy {src}->{seq} failed: {e}");
                            self.runner.seq_remove(seq, 0, None);
                            return Some((seq, 0, None));
                        }
                    }
                    return Some((seq, ready, (ready < common).then_some((src, common))));
                }
            }
        }
        let (seq, reused) = self
            .slots
            .take_best_prefix(prompt, scope, self.runner.as_mut())?;
        Some((seq, reused, None))
    }

    /// A prompt continuing a cached prefix with fewer new tokens than the
    /// runner's query tile ([`Runner::query_tile`]) recomputes a few cached
    /// ones to fill the tile when the row-by-row kernel would cost more:
    /// its extra cost per row grows with the context. Measured with
    /// llama-bench on the 1B (Q4_K_M, 2 threads), a row costs the row-by-row
    /// kernel 1.08x the tiled one's with no context, 1.18x at 300 tokens,
    /// 1.2-1.3x at 700: estimated as 1.05 + depth / 3000. Returns the
    /// reused count, the sequence truncated to it.
    fn fill_tile(&mut self, seq: u32, len: usize, reused: usize) -> usize {
        let Some(tile) = self.runner.query_tile() else {
            return reused;
        };
        let new = len.saturating_sub(reused);
        if reused == 0 || new >= tile || reused < tile - new {
            return reused;
        }
        let slower = 1.05 + reused as f64 / 3000.0;
        if tile as f64 >= new as f64 * slower {
            return reused;
        }
        let from = reused - (tile - new);
        if self.runner.seq_remove(seq, from as u32, None) {
            from
        } else {
            reused
        }
    }

    /// Runs steps until `n` sequences are free.
    fn wait_for_room(&mut self, n: usize) {
        while self.slots.idle() < n && !self.active.is_empty() {
            self.step();
        }
    }

    /// One multi-sequence decode, then sampling for every sequence that got logits.
    fn step(&mut self) {
        self.run_step();
        if cfg!(debug_assertions) {
            self.check();
        }
    }

    /// The running candidates hold exactly the busy sequences, one each;
    /// what they wait for (a fork's source, a shared prefix's source) runs.
    fn check(&self) {
        self.slots.check();
        let mut held: Vec<u32> = self.active.iter().map(|s| s.seq).collect();
        held.sort_unstable();
        let busy: Vec<u32> = self.slots.busy().collect();
        assert_eq!(held, busy, "running candidates and busy sequences differ");
        for s in &self.active {
            for src in s.fork_of.iter().chain(s.share.iter().map(|(src, _)| src)) {
                assert!(
                    self.active.iter().any(|a| a.seq == *src),
                    "sequence {} waits for {src}, which does not run",
                    s.seq
                );
            }
            assert!(
                s.in_kv <= s.prompt.len() + s.generated.len() + 1 + DRAFT_MAX + JUMP_MAX,
                "sequence {} holds more than it was given",
                s.seq
            );
        }
    }

    fn run_step(&mut self) {
        self.steps += 1;
        self.drop_cancelled();
        self.settle_shares();
        self.prefill_one_media();
        if self.active.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        // (active index, batch index) of the rows whose logits are sampled.
        let mut wants: Vec<(usize, usize)> = Vec::new();
        // Every decoding stream advances by one token (drafts and forced
        // tokens with it); prompts fill the rest as `plan::prefill` says.
        let decoding = self.active.iter().filter(|s| s.next.is_some()).count();
        let mut budget = self.runner.max_batch();
        let long_budget = if self.active.len() > 1 {
            self.config.prefill_chunk
        } else {
            usize::MAX
        };
        // A lone stream drafts from its own context (prompt lookup): the
        // draft is decoded with its sampled token, all rows with logits, and
        // `verify` keeps what the sampler itself picks.
        let lone = self.config.speculate && self.active.len() == 1 && self.runner.drops_tails();
        let seq_ctx = self.config.seq_ctx as usize;
        let max_batch = self.runner.max_batch();
        // (active index, batch index of the sampled token, draft)
        let mut spec: Option<(usize, usize, Vec<i32>)> = None;
        for (i, s) in self.active.iter_mut().enumerate() {
            if let Some(t) = s.next {
                if lone && s.ahead.is_empty() && s.output.unconstrained() {
                    if s.spec_wait > 0 {
                        s.spec_wait -= 1;
                    } else {
                        let room = (s.max_tokens as usize)
                            .saturating_sub(s.generated.len())
                            .min(seq_ctx.saturating_sub(s.pos() as usize + 1))
                            .min(max_batch.saturating_sub(1))
                            .min(s.spec_len);
                        let d = draft(&s.prompt, &s.generated, room);
                        if !d.is_empty() {
                            let first = s.pos() - 1;
                            spec = Some((i, batch.len(), d.clone()));
                            for (k, token) in std::iter::once(t).chain(d).enumerate() {
                                batch.push(BatchToken {
                                    token,
                                    pos: first + k as u32,
                                    seq: s.seq,
                                    logits: true,
                                });
                            }
                            s.in_kv = first as usize + 1 + spec.as_ref().map_or(0, |x| x.2.len());
                            budget = budget.saturating_sub(batch.len());
                            continue;
                        }
                    }
                }
                let n = 1 + s.ahead.len();
                let first = s.pos() as usize - n;
                let ahead = std::mem::take(&mut s.ahead);
                for (k, token) in std::iter::once(t).chain(ahead).enumerate() {
                    let last = k + 1 == n;
                    if last {
                        wants.push((i, batch.len()));
                    }
                    batch.push(BatchToken {
                        token,
                        pos: (first + k) as u32,
                        seq: s.seq,
                        logits: last,
                    });
                }
                s.in_kv += n;
                budget = budget.saturating_sub(n);
            }
        }
        let prompts: Vec<plan::PromptState> = self
            .active
            .iter()
            .map(|s| plan::PromptState {
                seq: s.seq,
                len: s.prompt.len(),
                prefilled: s.prefilled,
                ready: s.next.is_none() && s.fork_of.is_none() && s.media.is_none(),
                share: s.share,
                waited: self.steps - s.admitted,
            })
            .collect();
        let takes = plan::prefill(
            &prompts,
            plan::Budget {
                tokens: budget,
                room: max_batch.saturating_sub(batch.len()),
                long: long_budget,
                chunk: self.config.prefill_chunk,
            },
        );
        // (batch index, other sequence) of the tokens shared with waiters.
        let mut also: Vec<(usize, u32)> = Vec::new();
        for t in takes {
            let s = &mut self.active[t.index];
            debug_assert_eq!(s.prefilled, t.start, "the plan starts where the prompt is");
            let base = batch.len();
            for pos in t.start..t.start + t.take {
                let last = pos + 1 == s.prompt.len();
                if last {
                    wants.push((t.index, batch.len()));
                }
                batch.push(BatchToken {
                    token: s.prompt[pos],
                    pos: pos as u32,
                    seq: s.seq,
                    logits: last,
                });
            }
            s.prefilled += t.take;
            s.in_kv += t.take;
            for (w, end) in t.shared {
                let b = &mut self.active[w];
                debug_assert_eq!(b.prefilled, t.start, "a waiter holds what precedes");
                also.extend((b.prefilled..end).map(|pos| (base + pos - t.start, b.seq)));
                b.prefilled = end;
                b.in_kv = end;
                if b.share.is_some_and(|(_, n)| end >= n) {
                    b.share = None;
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        also.sort_unstable_by_key(|a| a.0);
        let started = std::time::Instant::now();
        if let Err(e) = self.runner.decode_shared(&batch, &also) {
            let mut seqs: Vec<u32> = batch.iter().map(|t| t.seq).collect();
            seqs.extend(also.iter().map(|a| a.1));
            self.fail_sequences(&seqs, EngineError::Internal(format!("decode failed: {e}")));
            return;
        }
        tracing::debug!(
            tokens = batch.len(),
            decoding,
            shared = also.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "step"
        );
        let mut done = Vec::new();
        // One buffer for every row, kept across steps: a fresh vocabulary-
        // sized allocation per token (0.5 MB for Llama 3) faults its pages in.
        let mut row = std::mem::take(&mut self.row);
        for (i, b) in wants {
            row.clear();
            row.extend_from_slice(self.runner.logits(b));
            self.prompt_done(i, &mut row, &mut done);
        }
        self.row = row;
        if let Some((i, base, d)) = spec {
            if self.verify(i, base, &d) {
                done.push(i);
            }
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            self.release(i);
        }
    }

    /// Brings waiting prompts up to date with their sources: what a source
    /// holds beyond what was shared in its batches (a generated token the
    /// waiting prompt also has) is shared by copy; a prompt whose source is
    /// gone prefills the rest itself.
    fn settle_shares(&mut self) {
        for i in 0..self.active.len() {
            let Some((src, n)) = self.active[i].share else {
                continue;
            };
            let held = self
                .active
                .iter()
                .find(|s| s.seq == src && s.share.is_none())
                .map(|s| s.in_kv);
            let b = &mut self.active[i];
            match held {
                Some(held) if held > b.prefilled => {
                    let to = held.min(n);
                    if let Err(e) =
                        self.runner
                            .seq_copy(src, b.seq, b.prefilled as u32, Some(to as u32))
                    {
                        // It prefills the rest itself, from what it holds.
                        b.span.in_scope(|| {
                            tracing::warn!("prefix copy {src}->{} failed: {e}", b.seq)
                        });
                        if !self.runner.seq_remove(b.seq, b.prefilled as u32, None) {
                            self.runner.seq_remove(b.seq, 0, None);
                            b.prefilled = 0;
                            b.in_kv = 0;
                        }
                        b.share = None;
                        continue;
                    }
                    b.prefilled = to;
                    b.in_kv = to;
                    if to >= n {
                        b.share = None;
                    }
                }
                Some(_) => {}
                None => b.share = None,
            }
        }
    }

    /// Samples from logits of sequence `i` (after its prompt is in: its
    /// waiting candidates fork first); finished ones are added to `done`.
    fn prompt_done(&mut self, i: usize, row: &mut [f32], done: &mut Vec<usize>) {
        let forks = self.forks_of(i);
        for j in forks {
            let (src, dst) = (self.active[i].seq, self.active[j].seq);
            let len = self.active[i].prompt.len();
            // The source holds exactly the prompt now: copy all of it
            // (backends with one KV stream per sequence copy whole streams only).
            self.active[j].fork_of = None;
            if let Err(e) = self.runner.seq_copy(src, dst, 0, None) {
                // This candidate prefills the prompt itself, in later steps.
                self.active[j]
                    .span
                    .in_scope(|| tracing::warn!("fork copy {src}->{dst} failed: {e}"));
                self.runner.seq_remove(dst, 0, None);
                continue;
            }
            self.active[j].prefilled = len;
            self.active[j].in_kv = len;
            if self.sample_and_emit(j, &mut row.to_vec()) {
                done.push(j);
            }
        }
        if self.sample_and_emit(i, row) {
            done.push(i);
        }
    }

    /// Prefills the first waiting prompt with media, whole, in its own
    /// decode calls (one per step, so running streams keep flowing between
    /// them), and samples its first token.
    fn prefill_one_media(&mut self) {
        let Some((i, media)) = self
            .active
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| s.media.take().map(|m| (i, m)))
        else {
            return;
        };
        let seq = self.active[i].seq;
        let mut done = Vec::new();
        match self.runner.prefill_media(seq, &media) {
            Ok(mut row) => {
                let s = &mut self.active[i];
                s.prefilled = s.prompt.len();
                s.in_kv = s.prompt.len();
                self.prompt_done(i, &mut row, &mut done);
            }
            Err(e) => {
                // The request fails (its candidates waiting to fork share its
                // event channel and go with it); its KV is dropped.
                let _ = self.active[i]
                    .events
                    .send(EngineEvent::Failed(EngineError::Internal(format!(
                        "reading the prompt's media failed: {e}"
                    ))));
                done.push(i);
                done.extend(self.forks_of(i));
            }
        }
        done.sort_unstable();
        done.dedup();
        for i in done.into_iter().rev() {
            self.release(i);
        }
    }

    /// Candidates waiting to fork from sequence at `i` once its prompt is in.
    fn forks_of(&self, i: usize) -> Vec<usize> {
        let s = &self.active[i];
        if !s.generated.is_empty() || s.fork_of.is_some() {
            return Vec::new();
        }
        let seq = s.seq;
        (0..self.active.len())
            .filter(|&j| self.active[j].fork_of == Some(seq))
            .collect()
    }

    /// Samples the next token of sequence `i`; returns true when it finished.
    fn sample_and_emit(&mut self, i: usize, logits: &mut [f32]) -> bool {
        let s = &mut self.active[i];
        let picked = pick(s, logits);
        if let Some(e) = s.output.failure() {
            // The grammar engine's own words (parser state, forced bytes) stay
            // in the server log: they say nothing useful to a client.
            s.span
                .in_scope(|| tracing::error!("constrained decoding failed: {e}"));
            let _ = s
                .events
                .send(EngineEvent::Failed(EngineError::Internal(
                    "An internal error has occurred: constrained decoding failed (details are in the server's log)."
                        .into(),
                )));
            return true;
        }
        let token = picked.token;
        if let Some(done) = self.accept(i, picked) {
            return done;
        }
        let room = self.jump_room();
        let s = &mut self.active[i];
        s.next = Some(token);
        if room == 0 || s.logprobs {
            return false;
        }
        // Jump-forward: what the grammar forces next is accepted now and
        // decoded with `token` in the next step.
        let forced = s.output.jump_forward();
        for t in forced.into_iter().take(room) {
            if self.tokenizer.is_end(t) {
                break;
            }
            let picked = Sampled {
                token: t,
                logprob: 0.0,
                top: Vec::new(),
            };
            if let Some(done) = self.accept(i, picked) {
                return done;
            }
            self.active[i].ahead.push(t);
        }
        false
    }

    /// Speculation's check: each row of the draft's decode is sampled as
    /// plain decoding would sample it (forced tokens, masks, the same
    /// sampler and its random draws, in order); drafts are kept while the
    /// sample equals them, and the first sample that differs is the next
    /// token. Rejected drafts leave the KV cache. True when it finished.
    fn verify(&mut self, i: usize, base: usize, draft: &[i32]) -> bool {
        let mut row = std::mem::take(&mut self.row);
        let mut kept = 0;
        let mut finished = None;
        for r in 0..=draft.len() {
            row.clear();
            row.extend_from_slice(self.runner.logits(base + r));
            let picked = pick(&mut self.active[i], &mut row);
            let token = picked.token;
            let hit = draft.get(r) == Some(&token);
            if let Some(done) = self.accept(i, picked) {
                finished = Some(done);
                if hit {
                    kept += 1;
                }
                break;
            }
            if hit {
                kept += 1;
                continue;
            }
            self.active[i].next = Some(token);
            break;
        }
        self.row = row;
        tracing::debug!(drafted = draft.len(), kept, "draft");
        let s = &mut self.active[i];
        if kept == 0 {
            s.spec_misses = (s.spec_misses + 1).min(5);
            s.spec_wait = 1 << s.spec_misses;
        } else {
            s.spec_misses = 0;
        }
        s.spec_len = if kept == draft.len() {
            (s.spec_len * 2).min(DRAFT_MAX)
        } else {
            kept.max(DRAFT_MIN)
        };
        // The KV holds the sampled token and the whole draft after it: keep
        // the drafts taken, drop the rest.
        let rejected = draft.len() - kept;
        if rejected > 0 {
            let seq = s.seq;
            s.in_kv -= rejected;
            if !self.runner.seq_remove(seq, s.in_kv as u32, None) {
                let s = &mut self.active[i];
                let _ = s.events.send(EngineEvent::Failed(EngineError::Internal(
                    "An internal error has occurred: the KV cache could not drop rejected draft tokens."
                        .into(),
                )));
                return true;
            }
        }
        finished.unwrap_or(false)
    }

    /// Tokens a sequence may decode beyond its sampled one in a step, so
    /// that every sequence's step fits one batch.
    fn jump_room(&self) -> usize {
        if !self.config.jump_forward {
            return 0;
        }
        let per_seq = self.runner.max_batch() / (self.runner.max_sequences().max(1) as usize);
        per_seq.saturating_sub(1).min(JUMP_MAX)
    }

    /// Sequence `i` takes a token ([`Sequence::accept`]).
    fn accept(&mut self, i: usize, picked: Sampled) -> Option<bool> {
        let ctx = Context {
            tokenizer: self.tokenizer.as_ref(),
            seq_ctx: self.config.seq_ctx,
            replies: self.config.replies.as_ref(),
        };
        self.active[i].accept(picked, &ctx)
    }

    fn drop_cancelled(&mut self) {
        for i in (0..self.active.len()).rev() {
            if self.active[i].events.is_closed() {
                self.release(i);
            }
        }
    }

    /// Returns a sequence to the idle list, keeping its KV for reuse: the
    /// prompt and the generated tokens that were decoded.
    fn release(&mut self, i: usize) {
        let s = self.active.swap_remove(i);
        // Prompts waiting for its prefix prefill the rest themselves.
        for w in &mut self.active {
            if w.share.is_some_and(|(src, _)| src == s.seq) {
                w.share = None;
            }
        }
        let kept: Vec<i32> = s
            .prompt
            .iter()
            .chain(&s.generated)
            .take(s.in_kv)
            .copied()
            .collect();
        self.slots.give_back(s.seq, kept, self.runner.as_mut());
    }

    /// A failed decode: the requests with a sequence in it fail (with the
    /// candidates of the same requests), the others go on. What the failed
    /// sequences held is dropped, and so is every idle sequence's kept
    /// prefix (the failed batch may have written anywhere in the cache
    /// those share).
    fn fail_sequences(&mut self, seqs: &[u32], err: EngineError) {
        let hit: Vec<&Events> = self
            .active
            .iter()
            .filter(|s| seqs.contains(&s.seq))
            .map(|s| &s.events)
            .collect();
        let failed: Vec<bool> = self
            .active
            .iter()
            .map(|s| hit.iter().any(|e| e.same_channel(&s.events)))
            .collect();
        let mut told: Vec<Events> = Vec::new();
        for i in (0..self.active.len()).rev() {
            if !failed[i] {
                continue;
            }
            let s = &mut self.active[i];
            if !told.iter().any(|e| e.same_channel(&s.events)) {
                s.span.in_scope(|| tracing::error!("{err}"));
                let _ = s.events.send(EngineEvent::Failed(err.clone()));
                told.push(s.events.clone());
            }
            s.in_kv = 0;
            self.release(i);
        }
        self.slots.forget_kept(self.runner.as_mut());
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::slots::PREFIX_OVER_NEIGHBOURS;
    use super::*;
    use crate::test_runner::{ByteRunner, ByteTokenizer, END};

    fn scheduler(sequences: u32, chunk: usize) -> (Scheduler, Arc<std::sync::atomic::AtomicUsize>) {
        let runner = ByteRunner::new(256 * sequences, sequences);
        let shared = runner.shared_tokens.clone();
        let s = Scheduler {
            share: runner.shares_prefixes(),
            slots: Slots::new(sequences, runner.prefers_consecutive_sequences()),
            steps: 0,
            row: Vec::new(),
            runner: Box::new(runner),
            tokenizer: Arc::new(ByteTokenizer::default()),
            config: SchedulerConfig {
                stats: Arc::default(),
                seq_ctx: 256,
                prefill_chunk: chunk,
                replies: Arc::new(ReplyMemory::new(4)),
                jump_forward: true,
                speculate: true,
            },
            active: Vec::new(),
        };
        (s, shared)
    }

    fn job(text: &str) -> (Job, mpsc::UnboundedReceiver<EngineEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut request = GenerateRequest::new(Prompt::user(text));
        request.sampling.temperature = 0.0;
        let job = Job {
            tokens: text.bytes().map(i32::from).collect(),
            counts: PromptTokens::default(),
            request,
            max_tokens: 2,
            plan: OutputPlan::plain(Arc::new(vec![END])),
            media: None,
            events: tx,
        };
        (job, rx)
    }

    fn first_token_step(
        rx: &mut mpsc::UnboundedReceiver<EngineEvent>,
        steps: &mut [usize],
        step: usize,
        k: usize,
    ) {
        while let Ok(ev) = rx.try_recv() {
            if matches!(ev, EngineEvent::Delta { .. } | EngineEvent::Finished { .. })
                && steps[k] == 0
            {
                steps[k] = step;
            }
        }
    }

    #[test]
    fn short_prompts_are_prefilled_before_long_ones() {
        let (mut s, _) = scheduler(4, 16);
        let long = "L".repeat(100);
        let (a, mut ra) = job(&long);
        let (b, mut rb) = job("short");
        s.admit(a);
        s.admit(b);
        let mut first = [0usize; 2];
        for step in 1..=12 {
            s.step();
            first_token_step(&mut ra, &mut first, step, 0);
            first_token_step(&mut rb, &mut first, step, 1);
        }
        // The short prompt goes in step 1 though admitted second; the long
        // one goes 16 tokens a step while the short one runs (2 steps), then
        // alone by whole batches (64).
        assert_eq!(first, [4, 1]);
    }

    #[test]
    fn a_shared_prefix_goes_first_and_is_computed_once() {
        let (mut s, shared) = scheduler(4, 16);
        let prefix = "P".repeat(10);
        let long = format!("{prefix}{}", "L".repeat(90));
        let short = format!("{prefix}s");
        let (a, mut ra) = job(&long);
        let (b, mut rb) = job(&short);
        s.admit(a);
        s.admit(b);
        assert_eq!(s.active[1].share, Some((s.active[0].seq, 10)));
        let mut first = [0usize; 2];
        for step in 1..=10 {
            s.step();
            first_token_step(&mut ra, &mut first, step, 0);
            first_token_step(&mut rb, &mut first, step, 1);
        }
        // Step 1: the prefix once (for both), the short prompt's own token,
        // then the long one's next tokens: 16 computed in all.
        assert_eq!(first[1], 1, "{first:?}");
        assert!(first[0] > 1, "{first:?}");
        assert_eq!(shared.load(std::sync::atomic::Ordering::Relaxed), 10);
    }

    /// A scheduler over a byte runner with one KV stream per sequence;
    /// the runs of consecutive ids in each decode.
    fn streams_scheduler(sequences: u32) -> (Scheduler, Arc<std::sync::Mutex<Vec<usize>>>) {
        let mut runner = ByteRunner::new(256 * sequences, sequences);
        runner.sharing = false;
        runner.consecutive = true;
        let runs = runner.runs.clone();
        let (mut s, _) = scheduler(sequences, 16);
        s.share = false;
        s.slots = Slots::new(sequences, true);
        s.runner = Box::new(runner);
        (s, runs)
    }

    fn admit(s: &mut Scheduler, text: &str, max_tokens: u32) -> u32 {
        let (mut j, rx) = job(text);
        j.max_tokens = max_tokens;
        // The events are not read: dropping the receiver would cancel.
        std::mem::forget(rx);
        s.admit(j);
        s.active.last().map_or(u32::MAX, |a| a.seq)
    }

    #[test]
    fn with_one_stream_per_sequence_a_new_request_takes_an_id_next_to_the_running_ones() {
        let (mut s, runs) = streams_scheduler(8);
        let seqs: Vec<u32> = [("abc", 12), ("bcd", 1), ("cde", 12), ("def", 12)]
            .iter()
            .map(|&(text, max)| admit(&mut s, text, max))
            .collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        // Sequence 1 ends after its first token; a new request comes: not
        // 4 (the least recently used) but 1, between running 0 and 2.
        while s.active.len() == 4 {
            s.step();
        }
        assert_eq!(admit(&mut s, "xyz", 12), 1);
        while !s.active.is_empty() {
            s.step();
        }
        let runs = runs.lock().map(|r| r.clone()).unwrap_or_default();
        assert!(
            runs.iter().all(|&r| r == 1),
            "micro-batches per decode: {runs:?}"
        );
    }

    #[test]
    fn with_one_stream_per_sequence_only_a_long_shared_prefix_outweighs_a_neighbour() {
        let (mut s, _) = streams_scheduler(8);
        let long = "q".repeat(PREFIX_OVER_NEIGHBOURS + 8);
        // Idle sequence 0 keeps a short prompt, idle 1 a long one.
        assert_eq!(admit(&mut s, "hello there", 1), 0);
        assert_eq!(admit(&mut s, &long, 1), 1);
        while !s.active.is_empty() {
            s.step();
        }
        // Nothing runs: the least recently used, 2.
        assert_eq!(admit(&mut s, "zzz", 30), 2);
        // Shares 6 tokens ("hello ") with idle 0, which has no running
        // neighbour: 3, next to 2, wins.
        assert_eq!(admit(&mut s, "hello world", 30), 3);
        // Shares 40 tokens with idle 1: it takes 1 and reuses them.
        let with_long = format!("{long} and more");
        assert_eq!(admit(&mut s, &with_long, 30), 1);
        assert_eq!(s.active.last().map(|a| a.prefilled), Some(long.len()));
    }

    /// Runs one job alone to its end; its Started cached count and its text.
    fn run_job(s: &mut Scheduler, text: &str) -> (u32, String) {
        let (mut j, mut rx) = job(text);
        j.max_tokens = 6;
        s.admit(j);
        while !s.active.is_empty() {
            s.step();
        }
        let (mut cached, mut out) = (u32::MAX, String::new());
        while let Ok(ev) = rx.try_recv() {
            match ev {
                EngineEvent::Started { cached_tokens, .. } => cached = cached_tokens,
                EngineEvent::Delta { text, .. } => out.push_str(&text),
                _ => {}
            }
        }
        (cached, out)
    }

    #[test]
    fn a_continuation_just_short_of_the_query_tile_recomputes_cached_tokens_to_fill_it() {
        let history = "h".repeat(150);
        let near = format!("{history}{}", "n".repeat(60));
        let far = format!("{history}{}", "f".repeat(40));
        let (mut s, _) = scheduler(2, 16);
        let fresh = [run_job(&mut s, &near).1, run_job(&mut s, &far).1];
        let mut runner = ByteRunner::new(512, 2);
        runner.query_tile = Some(64);
        let (mut s, _) = scheduler(2, 16);
        s.runner = Box::new(runner);
        run_job(&mut s, &history);
        // 60 new tokens at depth 150: 4 cached ones are recomputed.
        let (cached, text) = run_job(&mut s, &near);
        assert_eq!(cached, 146);
        assert_eq!(text, fresh[0]);
        // 40 new tokens: filling the tile would cost more than it saves.
        run_job(&mut s, &history);
        let (cached, text) = run_job(&mut s, &far);
        assert_eq!(cached, 150);
        assert_eq!(text, fresh[1]);
    }

    #[test]
    fn a_long_prompt_is_not_starved_by_short_ones_that_keep_coming() {
        // Batches of 64; each step a new 64-token prompt arrives and would
        // take the whole batch if shortest-first were all.
        let (mut s, _) = scheduler(4, 16);
        let (mut long, mut rx) = job(&"L".repeat(100));
        long.max_tokens = 1;
        s.admit(long);
        let mut first = [0usize];
        for step in 1..=30 {
            let text: String = (0..64)
                .map(|k| (b'a' + ((step + k) % 26) as u8) as char)
                .collect();
            admit(&mut s, &text, 1);
            s.step();
            first_token_step(&mut rx, &mut first, step, 0);
            if first[0] > 0 {
                break;
            }
        }
        // 100 tokens at 16 a step once aged (after 100 / 16 steps waited).
        assert!(
            first[0] > 0 && first[0] <= 16,
            "first token at step {}",
            first[0]
        );
    }
}
