//! The engine thread: continuous batching over one runner. Every step,
//! each decoding sequence advances by one token and prompts are prefilled
//! in chunks, all in one multi-sequence decode. New requests join between
//! steps; a request whose receiver is gone is dropped and its KV freed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::contract::*;
use crate::output::{CallScanner, Dialect, Output, OutputPlan, Piece, ToolPlan};
use crate::replies::ReplyMemory;
use crate::runner::{BatchToken, MediaPrompt, Runner, Tokenizer, MEDIA_POSITION};
use crate::sampler::{log_sum_exp, Sampled, Sampler};
use crate::text::{StopMatcher, Utf8Assembler};

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

/// One candidate being generated, on its own KV sequence.
struct Sequence {
    seq: u32,
    candidate: u32,
    /// Prompt tokens (shared by the candidates of a job).
    prompt: Arc<Vec<i32>>,
    /// Prompt tokens already in the KV cache.
    prefilled: usize,
    /// Positions (prompt and generated) in the KV cache.
    in_kv: usize,
    /// Waits for the first candidate's prefill, then forks from it.
    fork_of: Option<u32>,
    /// A prompt with media, not prefilled yet (the runner prefills it whole).
    media: Option<MediaPrompt>,
    /// `(source, n)`: the active sequence `source` is prefilling the first
    /// `n` tokens of this prompt too; they enter this sequence as they enter
    /// the source (one computation, shared KV cells), and this sequence's own
    /// prefill waits until it holds them.
    share: Option<(u32, usize)>,
    generated: Vec<i32>,
    /// The sampled token not yet decoded.
    next: Option<i32>,
    /// Tokens the grammar forced after `next` (jump-forward), accepted and
    /// shown already: decoded with it in one step, logits for the last only.
    ahead: Vec<i32>,
    /// Speculation: steps to go without drafting, and drafts rejected in a
    /// row (each doubles the wait, so text that quotes nothing costs little).
    spec_wait: u32,
    spec_misses: u32,
    /// The next draft's length: doubles when a draft is taken whole, falls
    /// back to what was taken (at least `DRAFT_MIN`) otherwise.
    spec_len: usize,
    sampler: Sampler,
    output: Output,
    utf8: Utf8Assembler,
    thought_utf8: Utf8Assembler,
    stops: StopMatcher,
    /// Function calls cut out of the answer, when functions are declared.
    calls: Option<(CallScanner, ToolPlan)>,
    /// Leading whitespace of the thought / of the answer after a thought is dropped.
    thought_started: bool,
    answer_started: bool,
    /// The reply held thoughts or calls (its text is not the plain decoding of its ids).
    not_plain: bool,
    /// The answer text sent so far.
    shown: String,
    usage: CandidateUsage,
    max_tokens: u32,
    logprobs: bool,
    events: mpsc::UnboundedSender<EngineEvent>,
    /// The scheduler's step count when it was admitted (prefill aging).
    admitted: u64,
}

impl Sequence {
    fn pos(&self) -> u32 {
        (self.prefilled + self.generated.len()) as u32
    }
}

struct Scheduler {
    runner: Box<dyn Runner>,
    tokenizer: Arc<dyn Tokenizer>,
    config: SchedulerConfig,
    active: Vec<Sequence>,
    /// Idle sequences, least recently used first. Their KV is kept: a new
    /// request that shares a token prefix with one of them reuses it.
    free: Vec<u32>,
    /// Tokens held in the KV cache of each idle sequence.
    kept: HashMap<u32, Vec<i32>>,
    /// Whose tokens each sequence holds ([`GenerateRequest::cache_scope`]):
    /// a prefix is reused only within one scope.
    scopes: HashMap<u32, u64>,
    /// The runner shares KV cells between sequences: a new prompt may take
    /// its prefix from any active sequence ([`Runner::shares_prefixes`]).
    share: bool,
    /// Sequences that decode together should have consecutive ids
    /// ([`Runner::prefers_consecutive_sequences`]).
    consecutive: bool,
    /// Steps run so far.
    steps: u64,
    /// Logits of the row being sampled (reused).
    row: Vec<f32>,
}

/// A prefix match this much longer outweighs taking a sequence next to the
/// running ones ([`Runner::prefers_consecutive_sequences`]): prefilling 32
/// tokens costs about what one more micro-batch per step costs over a
/// short reply.
const PREFIX_OVER_NEIGHBOURS: usize = 32;

/// The engine thread's loop; returns when every engine handle is dropped.
pub fn run(
    runner: Box<dyn Runner>,
    tokenizer: Arc<dyn Tokenizer>,
    config: SchedulerConfig,
    jobs: &std_mpsc::Receiver<Job>,
) {
    let free = (0..runner.max_sequences()).collect();
    let share = runner.shares_prefixes();
    let consecutive = runner.prefers_consecutive_sequences();
    let mut s = Scheduler {
        runner,
        tokenizer,
        config,
        active: Vec::new(),
        free,
        kept: HashMap::new(),
        scopes: HashMap::new(),
        share,
        consecutive,
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
        while !s.free.is_empty() {
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
        let cells: usize = self.active.iter().map(|s| s.in_kv).sum::<usize>()
            + self.kept.values().map(Vec::len).sum::<usize>();
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
        let n = job.request.candidate_count.max(1) as usize;
        if self.free.len() < n {
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
        // From here every candidate has a sequence: `free` holds at least n
        // (checked, not assumed: a request never gets Started without a
        // Finished or a Failed to follow).
        let no_room = || {
            EngineEvent::Failed(EngineError::Internal(
                "An internal error has occurred: no free sequence for this request.".into(),
            ))
        };
        if self.free.len() < n {
            tracing::error!(
                "admit: {} free sequences for {n} candidates",
                self.free.len()
            );
            let _ = job.events.send(no_room());
            return;
        }
        let prompt = Arc::new(job.tokens);
        let mut media = job.media;
        // A prompt with media is prefilled whole, from position 0.
        let (first_seq, reused, mut share) = if media.is_some() {
            let Some(seq) = self.take_lru() else {
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
            document_tokens: job.counts.document,
        });
        let top = job.request.logprobs.unwrap_or(0) as usize;
        for c in 0..n as u32 {
            let (seq, prefilled) = if c == 0 {
                (first_seq, reused)
            } else {
                let Some(seq) = self.take_lru() else {
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
            self.scopes.insert(seq, job.request.cache_scope);
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
            let idle = self.free.iter().map(|seq| {
                let kept = self.reusable(*seq, scope);
                kept.iter().zip(prompt).take_while(|(a, b)| a == b).count()
            });
            let idle_best = idle.max().unwrap_or(0).min(limit);
            let active = self
                .active
                .iter()
                .filter(|s| s.fork_of.is_none() && s.media.is_none() && s.share.is_none())
                .filter(|s| self.scopes.get(&s.seq).copied().unwrap_or(0) == scope)
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
                if let Some(seq) = self.take_lru() {
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
        let (seq, reused) = self.take_best_prefix(prompt, scope)?;
        Some((seq, reused, None))
    }

    /// The tokens idle sequence `seq` holds, if a request of `scope` may
    /// reuse them (none otherwise).
    fn reusable(&self, seq: u32, scope: u64) -> &[i32] {
        if self.scopes.get(&seq).copied().unwrap_or(0) != scope {
            return &[];
        }
        self.kept.get(&seq).map_or(&[][..], Vec::as_slice)
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

    /// Takes the idle sequence sharing the longest token prefix with
    /// `prompt` (at least one prompt token is always recomputed, for its
    /// logits), truncated to that prefix; else the least recently used one,
    /// emptied. Returns the sequence and the reused token count.
    fn take_best_prefix(&mut self, prompt: &[i32], scope: u64) -> Option<(u32, usize)> {
        let limit = prompt.len().saturating_sub(1);
        // Where sequences decode cheapest next to each other, a short match
        // (a chat template's header) does not outweigh a neighbour.
        let bucket = if self.consecutive {
            PREFIX_OVER_NEIGHBOURS
        } else {
            usize::MAX
        };
        let best = self
            .free
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let kept = self.reusable(seq, scope);
                let common = kept.iter().zip(prompt).take_while(|(a, b)| a == b).count();
                let common = common.min(limit);
                (
                    i,
                    common,
                    (common / bucket, self.neighbours(seq), common, i),
                )
            })
            .max_by_key(|&(_, _, key)| key);
        match best {
            Some((i, common, _)) if common > 0 => {
                let seq = self.free.remove(i);
                let kept = self.kept.remove(&seq).unwrap_or_default();
                if common == kept.len() || self.runner.seq_remove(seq, common as u32, None) {
                    return Some((seq, common));
                }
                // This cache cannot drop a suffix (e.g. sliding-window layers): start over.
                self.runner.seq_remove(seq, 0, None);
                Some((seq, 0))
            }
            _ => Some((self.take_lru()?, 0)),
        }
    }

    /// How many of `seq`'s two neighbouring ids are running, where that
    /// matters ([`Runner::prefers_consecutive_sequences`]); else 0.
    fn neighbours(&self, seq: u32) -> usize {
        if !self.consecutive {
            return 0;
        }
        let running = |q: Option<u32>| q.is_some_and(|q| self.active.iter().any(|s| s.seq == q));
        usize::from(running(seq.checked_sub(1))) + usize::from(running(seq.checked_add(1)))
    }

    /// The least recently used idle sequence, emptied; where sequences
    /// decode cheapest next to each other, the least recently used of those
    /// with the most running neighbours.
    fn take_lru(&mut self) -> Option<u32> {
        let i = self
            .free
            .iter()
            .enumerate()
            .max_by_key(|&(i, &seq)| (self.neighbours(seq), std::cmp::Reverse(i)))?
            .0;
        self.take_free(i)
    }

    /// Idle sequence `free[i]`, emptied.
    fn take_free(&mut self, i: usize) -> Option<u32> {
        if i >= self.free.len() {
            return None;
        }
        let seq = self.free.remove(i);
        if self.kept.remove(&seq).is_some_and(|k| !k.is_empty()) {
            self.runner.seq_remove(seq, 0, None);
        }
        Some(seq)
    }

    /// Runs steps until `n` sequences are free.
    fn wait_for_room(&mut self, n: usize) {
        while self.free.len() < n && !self.active.is_empty() {
            self.step();
        }
    }

    /// One multi-sequence decode, then sampling for every sequence that got logits.
    fn step(&mut self) {
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
        // Every decoding stream advances by one token, and prompts are
        // prefilled alongside: at most `prefill_chunk` prompt tokens a step
        // while anything else runs (else up to the runner's batch), short
        // prompts first. A step then stays short, for the streams and for
        // prompts arriving during it, and prompts that arrive together get
        // their first tokens a few at a time instead of all after one long
        // step. On a CPU a prompt token costs about what a decoded token
        // costs, so smaller steps lose next to nothing. Measured with
        // SmolLM2-135M at 32 streams (2 requests each): time to first token
        // p50 0.9-1.0 s with 128 prompt tokens a step against 1.6 s when
        // short prompts went whole up to 512; on the 1B at 8 mixed streams,
        // p99 for short prompts 5.2 s with chunks of 128, 10.4 s with 512.
        let decoding = self.active.iter().filter(|s| s.next.is_some()).count();
        let mut budget = self.runner.max_batch();
        let mut long_budget = if self.active.len() > 1 {
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
        // Prompts are prefilled shortest first (the time to first token of
        // short prompts does not wait for long ones), except that the part
        // of a prompt that other prompts wait for (their shared prefix) goes
        // first of all: those waiting then hold it (tagged onto the source's
        // tokens in this very batch) and their own part follows in turn.
        // A sequence's tokens stay in position order.
        let waiters: Vec<(usize, u32, usize)> = self
            .active
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.share.map(|(src, n)| (i, src, n)))
            .collect();
        // (active index, most tokens to take)
        let mut order: Vec<(usize, usize)> = Vec::new();
        let mut rest: Vec<usize> = Vec::new();
        for (i, s) in self.active.iter().enumerate() {
            if s.share.is_some() {
                continue;
            }
            if let Some(need) = waiters.iter().filter(|w| w.1 == s.seq).map(|w| w.2).max() {
                order.push((i, need.saturating_sub(s.prefilled)));
            }
            rest.push(i);
        }
        // Shortest remaining first, aged: each step a prompt has waited
        // counts as one chunk done, so a long prompt is not starved by short
        // ones that keep arriving.
        let (steps, chunk) = (self.steps, self.config.prefill_chunk);
        let remaining = |i: &usize| {
            let s = &self.active[*i];
            let waited = usize::try_from(steps - s.admitted).unwrap_or(usize::MAX);
            s.prompt
                .len()
                .saturating_sub(s.prefilled)
                .saturating_sub(waited.saturating_mul(chunk))
        };
        rest.extend(waiters.iter().map(|w| w.0));
        rest.sort_by_key(remaining);
        order.extend(rest.into_iter().map(|i| (i, usize::MAX)));
        // (batch index, other sequence) of the tokens shared with waiters.
        let mut also: Vec<(usize, u32)> = Vec::new();
        for (i, cap) in order {
            let s = &self.active[i];
            if s.next.is_some()
                || s.fork_of.is_some()
                || s.media.is_some()
                || s.share.is_some()
                || s.prefilled >= s.prompt.len()
                || budget == 0
            {
                continue;
            }
            let remaining = s.prompt.len() - s.prefilled;
            let mut take = remaining
                .min(cap)
                .min(budget)
                .min(self.runner.max_batch().saturating_sub(batch.len()));
            if cap == usize::MAX {
                take = take.min(long_budget);
            }
            long_budget = long_budget.saturating_sub(take);
            if take == 0 {
                continue;
            }
            let (seq, start, base) = (s.seq, s.prefilled, batch.len());
            for k in 0..take {
                let pos = start + k;
                let last = pos + 1 == s.prompt.len();
                if last {
                    wants.push((i, batch.len()));
                }
                batch.push(BatchToken {
                    token: s.prompt[pos],
                    pos: pos as u32,
                    seq,
                    logits: last,
                });
            }
            let s = &mut self.active[i];
            s.prefilled += take;
            s.in_kv += take;
            budget -= take;
            for &(w, src, n) in &waiters {
                let b = &mut self.active[w];
                if src != seq || b.prefilled != start {
                    continue;
                }
                let end = (start + take).min(n);
                also.extend((start..end).map(|pos| (base + pos - start, b.seq)));
                b.prefilled = end;
                b.in_kv = end;
                if end >= n {
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
                        tracing::warn!("prefix copy {src}->{} failed: {e}", b.seq);
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
                tracing::warn!("fork copy {src}->{dst} failed: {e}");
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
            tracing::error!("constrained decoding failed: {e}");
            let _ = s
                .events
                .send(EngineEvent::Failed(EngineError::Internal(
                    "An internal error has occurred: constrained decoding failed (details are in the server's log)."
                        .into(),
                )));
            return true;
        }
        let token = picked.token;
        if let Some(done) = self.take(i, picked) {
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
            if let Some(done) = self.take(i, picked) {
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
            if let Some(done) = self.take(i, picked) {
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

    /// Accepts one token into sequence `i`'s output, shows its text, counts
    /// it; `Some(finished)` when the sequence ends here.
    fn take(&mut self, i: usize, picked: Sampled) -> Option<bool> {
        let tokenizer = self.tokenizer.clone();
        let seq_ctx = self.config.seq_ctx;
        let replies = self.config.replies.clone();
        let s = &mut self.active[i];
        if tokenizer.is_end(picked.token) && !s.output.thinking() {
            return Some(finish(s, FinishReason::Stop, Some(&replies)));
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
            return Some(finish(s, FinishReason::MaxTokens, Some(&replies)));
        }
        None
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
        if kept.is_empty() {
            self.runner.seq_remove(s.seq, 0, None);
        } else {
            self.runner.seq_remove(s.seq, kept.len() as u32, None);
        }
        self.kept.insert(s.seq, kept);
        self.free.push(s.seq);
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
                let _ = s.events.send(EngineEvent::Failed(err.clone()));
                told.push(s.events.clone());
            }
            s.in_kv = 0;
            self.release(i);
        }
        for seq in self.kept.drain().map(|(seq, _)| seq).collect::<Vec<_>>() {
            self.runner.seq_remove(seq, 0, None);
        }
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

/// Sends one delta; false when the receiver is gone.
/// The next token as plain decoding picks it: a forced one (markers), or a
/// sample from the masked logits.
fn pick(s: &mut Sequence, logits: &mut [f32]) -> Sampled {
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
fn finish(s: &mut Sequence, mut reason: FinishReason, replies: Option<&ReplyMemory>) -> bool {
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

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::test_runner::{ByteRunner, ByteTokenizer, END};

    fn scheduler(sequences: u32, chunk: usize) -> (Scheduler, Arc<std::sync::atomic::AtomicUsize>) {
        let runner = ByteRunner::new(256 * sequences, sequences);
        let shared = runner.shared_tokens.clone();
        let s = Scheduler {
            share: runner.shares_prefixes(),
            consecutive: runner.prefers_consecutive_sequences(),
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
            free: (0..sequences).collect(),
            kept: HashMap::new(),
            scopes: HashMap::new(),
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
        s.consecutive = true;
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
