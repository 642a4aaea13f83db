//! A deterministic byte-level runner for tests of the scheduler and of the
//! layers above the engine: token ids are bytes (0..=255), 256 is the end
//! token, and a few special tokens stand for chat markup. The "model"
//! remembers, per sequence, the token at every position, and its logits are
//! a hash of the sequence's whole history: so a wrong position, a bad KV copy
//! or a leaked sequence changes the output, exactly as with a real model.
//!
//! After a [`MODEL_TURN`] token it behaves as a chat model: its answer grows
//! likelier to end with every token it writes, and a thought it was made to
//! open ([`THINK_OPEN`], forced by the engine) closes by itself after a few
//! tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::runner::*;

pub const END: i32 = 256;
/// One token for the text "ab": the tokenizer always merges it, the model
/// never emits it (so re-tokenizing a reply can differ from what was generated).
pub const AB: i32 = 257;
/// `<think>` and `</think>`: a thinking model's markup.
pub const THINK_OPEN: i32 = 258;
pub const THINK_CLOSE: i32 = 259;
/// `<|model|>`: the model's turn starts; what follows is its answer.
pub const MODEL_TURN: i32 = 260;
pub const VOCAB: usize = 261;

/// The special tokens and their texts.
const SPECIAL: [(i32, &str); 3] = [
    (THINK_OPEN, "<think>"),
    (THINK_CLOSE, "</think>"),
    (MODEL_TURN, "<|model|>"),
];

pub struct ByteTokenizer {
    meta: ModelMeta,
}

impl Default for ByteTokenizer {
    fn default() -> Self {
        ByteTokenizer {
            meta: ModelMeta {
                architecture: "bytes".into(),
                name: "bytes".into(),
                train_context: 512,
                vocab_size: VOCAB,
                ..ModelMeta::default()
            },
        }
    }
}

impl Tokenizer for ByteTokenizer {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
    fn encode(&self, text: &str, _add_bos: bool) -> Result<Vec<i32>, RunnerError> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        'next: while i < bytes.len() {
            for (t, text) in SPECIAL {
                if bytes[i..].starts_with(text.as_bytes()) {
                    out.push(t);
                    i += text.len();
                    continue 'next;
                }
            }
            if bytes[i..].starts_with(b"ab") {
                out.push(AB);
                i += 2;
            } else {
                out.push(i32::from(bytes[i]));
                i += 1;
            }
        }
        Ok(out)
    }
    fn token_bytes(&self, token: i32) -> Vec<u8> {
        if token == AB {
            return b"ab".to_vec();
        }
        if let Some((_, text)) = SPECIAL.iter().find(|(t, _)| *t == token) {
            return text.as_bytes().to_vec();
        }
        u8::try_from(token).map(|b| vec![b]).unwrap_or_default()
    }
    fn is_end(&self, token: i32) -> bool {
        token == END
    }
    fn is_special(&self, token: i32) -> bool {
        SPECIAL.iter().any(|(t, _)| *t == token)
    }
}

pub struct ByteRunner {
    kv: HashMap<u32, Vec<Option<i32>>>,
    rows: Vec<Vec<f32>>,
    capacity: u32,
    sequences: u32,
    /// Tokens decoded per call (to observe batching).
    pub batch_sizes: Vec<usize>,
    /// Whether sequences share prefixes ([`Runner::shares_prefixes`]).
    pub sharing: bool,
    /// Batch tokens put into a second sequence (to observe sharing).
    pub shared_tokens: Arc<AtomicUsize>,
    /// Reports [`Runner::prefers_consecutive_sequences`].
    pub consecutive: bool,
    /// Per decode, the runs of consecutive sequence ids in it: the
    /// micro-batches llama.cpp makes of it with one KV stream per sequence.
    pub runs: Arc<std::sync::Mutex<Vec<usize>>>,
    /// Reports [`Runner::query_tile`].
    pub query_tile: Option<usize>,
    /// A decode with this token in its batch panics (as llama-cpp-2 does on
    /// some invalid rows), to test that the engine thread recovers.
    pub panic_on: Option<i32>,
    /// Every `seq_copy` fails after copying half of the source.
    pub fail_copies: bool,
    /// Never score the end token: answers run to their token limit.
    pub endless: bool,
    /// A pause in every decode (to observe streaming and cancellation).
    pub delay: Duration,
    /// Tokens decoded so far, over all sequences.
    pub decoded: Arc<AtomicUsize>,
}

impl ByteRunner {
    pub fn new(capacity: u32, sequences: u32) -> Self {
        ByteRunner {
            kv: HashMap::new(),
            rows: Vec::new(),
            capacity,
            sequences,
            batch_sizes: Vec::new(),
            sharing: true,
            shared_tokens: Arc::default(),
            consecutive: false,
            runs: Arc::default(),
            query_tile: None,
            panic_on: None,
            fail_copies: false,
            endless: false,
            delay: Duration::ZERO,
            decoded: Arc::default(),
        }
    }

    fn logits_for(history: &[Option<i32>], endless: bool) -> Vec<f32> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for t in history {
            let t = t.unwrap_or(-1);
            for b in t.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut row = vec![-8.0f32; VOCAB];
        // Printable lowercase letters and space get hash-driven scores.
        for (k, b) in (b'a'..=b'z').chain([b' ']).enumerate() {
            let x = (h.rotate_left(k as u32 * 7) ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                >> 40;
            row[b as usize] = (x as f32 / (1u64 << 24) as f32) * 4.0 - 2.0;
        }
        let since = |token: i32| {
            history
                .iter()
                .rposition(|t| *t == Some(token))
                .map(|at| history.len() - at - 1)
        };
        row[END as usize] = match since(MODEL_TURN) {
            // No chat turn: the end grows likelier with the whole history.
            None => -4.0 + 0.25 * history.len() as f32,
            Some(answer) => match (since(THINK_OPEN), since(THINK_CLOSE)) {
                // In a thought: it closes after a few tokens, it never ends.
                (Some(open), close) if open < answer && close.is_none_or(|c| c > open) => {
                    row[THINK_CLOSE as usize] = -3.0 + open as f32;
                    -100.0
                }
                (_, close) => {
                    let n = close.filter(|&c| c < answer).unwrap_or(answer);
                    -3.0 + 0.5 * n as f32
                }
            },
        };
        if endless {
            row[END as usize] = -100.0;
        }
        row
    }
}

impl Runner for ByteRunner {
    fn kv_capacity(&self) -> u32 {
        self.capacity
    }
    fn max_sequences(&self) -> u32 {
        self.sequences
    }
    fn max_batch(&self) -> usize {
        64
    }
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), RunnerError> {
        if let Some(p) = self.panic_on {
            assert!(
                batch.iter().all(|t| t.token != p),
                "test runner: token {p} in a batch"
            );
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.decoded.fetch_add(batch.len(), Ordering::Relaxed);
        self.batch_sizes.push(batch.len());
        let mut seqs: Vec<u32> = batch.iter().map(|t| t.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let breaks = seqs.windows(2).filter(|w| w[1] != w[0] + 1).count();
        if let Ok(mut runs) = self.runs.lock() {
            runs.push(usize::from(!seqs.is_empty()) + breaks);
        }
        self.rows.clear();
        for t in batch {
            let cells = self.kv.entry(t.seq).or_default();
            let pos = t.pos as usize;
            if cells.len() <= pos {
                cells.resize(pos + 1, None);
            }
            cells[pos] = Some(t.token);
            if t.logits {
                let hist = &cells[..=pos];
                if hist.iter().any(Option::is_none) {
                    return Err(RunnerError::Decode(format!(
                        "seq {} has a hole before pos {pos}",
                        t.seq
                    )));
                }
                self.rows.push(Self::logits_for(hist, self.endless));
            } else {
                self.rows.push(Vec::new());
            }
        }
        Ok(())
    }
    fn shares_prefixes(&self) -> bool {
        self.sharing
    }
    fn prefers_consecutive_sequences(&self) -> bool {
        self.consecutive
    }
    fn query_tile(&self) -> Option<usize> {
        self.query_tile
    }
    fn decode_shared(
        &mut self,
        batch: &[BatchToken],
        also: &[(usize, u32)],
    ) -> Result<(), RunnerError> {
        if !also.is_empty() && !self.sharing {
            return Err(RunnerError::Decode("sharing is off".into()));
        }
        if also.windows(2).any(|w| w[0].0 > w[1].0) {
            return Err(RunnerError::Decode("`also` is not sorted".into()));
        }
        // As llama.cpp: sequences sharing a token must hold the same
        // positions before the batch, and no sequence's positions decrease
        // along the batch.
        let held = |seq: u32| {
            self.kv
                .get(&seq)
                .map_or(0, |c| c.iter().filter(|x| x.is_some()).count())
        };
        for &(i, other) in also {
            let primary = batch.get(i).map_or(u32::MAX, |t| t.seq);
            if held(primary) != held(other) {
                return Err(RunnerError::Decode(format!(
                    "seq {other} shares a token with seq {primary} but they hold different positions"
                )));
            }
        }
        let mut last: HashMap<u32, u32> = HashMap::new();
        let mut k = 0;
        for (i, t) in batch.iter().enumerate() {
            let mut seqs = vec![t.seq];
            while k < also.len() && also[k].0 == i {
                seqs.push(also[k].1);
                k += 1;
            }
            for seq in seqs {
                if last.get(&seq).is_some_and(|&p| t.pos < p) {
                    return Err(RunnerError::Decode(format!(
                        "seq {seq}: positions decrease in the batch"
                    )));
                }
                last.insert(seq, t.pos);
            }
        }
        // A shared token is written into its other sequences first, where
        // it must continue what they hold (as llama.cpp requires).
        for &(i, seq) in also {
            let t = batch
                .get(i)
                .ok_or_else(|| RunnerError::Decode(format!("no batch token {i}")))?;
            let cells = self.kv.entry(seq).or_default();
            let pos = t.pos as usize;
            if cells.len() <= pos {
                cells.resize(pos + 1, None);
            }
            if cells[..pos].iter().any(Option::is_none) || cells[pos..].iter().any(Option::is_some)
            {
                return Err(RunnerError::Decode(format!(
                    "seq {seq}: a shared token at {pos} does not continue what it holds"
                )));
            }
            cells[pos] = Some(t.token);
        }
        self.shared_tokens.fetch_add(also.len(), Ordering::Relaxed);
        self.decode(batch)
    }
    fn logits(&self, batch_index: usize) -> &[f32] {
        &self.rows[batch_index]
    }
    fn seq_remove(&mut self, seq: u32, from: u32, to: Option<u32>) -> bool {
        if let Some(cells) = self.kv.get_mut(&seq) {
            let end = to.map_or(cells.len(), |t| (t as usize).min(cells.len()));
            for c in cells.iter_mut().take(end).skip(from as usize) {
                *c = None;
            }
        }
        true
    }
    fn seq_copy(
        &mut self,
        src: u32,
        dst: u32,
        from: u32,
        to: Option<u32>,
    ) -> Result<(), RunnerError> {
        if self.fail_copies {
            // Half a copy, as a failing backend might leave it.
            let half = self.kv.get(&src).map_or(0, Vec::len) / 2;
            let cells: Vec<Option<i32>> =
                self.kv.get(&src).map_or(Vec::new(), |c| c[..half].to_vec());
            let dst_cells = self.kv.entry(dst).or_default();
            let from = (from as usize).min(half);
            if dst_cells.len() < half {
                dst_cells.resize(half, None);
            }
            dst_cells[from..half].copy_from_slice(&cells[from..half]);
            return Err(RunnerError::Decode("kv copy refused (test runner)".into()));
        }
        let src_cells = self.kv.get(&src).cloned().unwrap_or_default();
        let end = to.map_or(src_cells.len(), |t| (t as usize).min(src_cells.len()));
        let dst_cells = self.kv.entry(dst).or_default();
        if dst_cells.len() < end {
            dst_cells.resize(end, None);
        }
        let from = (from as usize).min(end);
        dst_cells[from..end].copy_from_slice(&src_cells[from..end]);
        Ok(())
    }
}
