//! The Runner and Tokenizer of hearth-engine, on llama.cpp.

use std::collections::HashMap;
use std::num::NonZeroU32;

use std::sync::Arc;

use hearth_engine::runner::{BatchToken, MediaPrompt, ModelMeta, Runner, RunnerError, Tokenizer};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::DecodeError;

/// Vocabulary and tokenizer of a loaded model (read-only, shared).
pub struct LlamaTokenizer {
    model: &'static LlamaModel,
    meta: ModelMeta,
    /// Tokens that end generation beside llama.cpp's end-of-generation set
    /// (the end-of-turn marker of a built-in chat format).
    extra_ends: Vec<i32>,
}

impl LlamaTokenizer {
    pub fn new(model: &'static LlamaModel, meta: ModelMeta) -> Self {
        LlamaTokenizer {
            model,
            meta,
            extra_ends: Vec::new(),
        }
    }

    /// Generation also ends on `tokens`.
    pub fn with_ends(mut self, tokens: &[i32]) -> Self {
        self.extra_ends.extend_from_slice(tokens);
        self
    }
}

/// The id of `text` when it is one token of the vocabulary (marker tokens
/// such as `<start_of_turn>` included).
pub fn single_token(model: &LlamaModel, text: &str) -> Option<i32> {
    let vocab = model.vocab();
    match vocab.tokenize(text.as_bytes(), false, true).as_slice() {
        [t] if vocab.text(*t).and_then(|c| c.to_str().ok()) == Some(text) => Some(t.0),
        _ => None,
    }
}

impl Tokenizer for LlamaTokenizer {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<i32>, RunnerError> {
        let tokens = self.model.vocab().tokenize(text.as_bytes(), add_bos, true);
        if tokens.is_empty() && !text.is_empty() {
            return Err(RunnerError::Tokenize(
                "the tokenizer produced no tokens".into(),
            ));
        }
        Ok(tokens.into_iter().map(|t| t.0).collect())
    }

    fn token_bytes(&self, token: i32) -> Vec<u8> {
        if token < 0 || token >= self.model.n_vocab() {
            return Vec::new();
        }
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None)
    }

    fn is_end(&self, token: i32) -> bool {
        token >= 0
            && token < self.model.n_vocab()
            && (self.model.vocab().is_eog(LlamaToken(token)) || self.extra_ends.contains(&token))
    }

    fn is_special(&self, token: i32) -> bool {
        if token < 0 || token >= self.model.n_vocab() {
            return false;
        }
        let attr = self.model.vocab().attr(LlamaToken(token));
        attr.contains(LlamaTokenAttr::Control) || attr.contains(LlamaTokenAttr::UserDefined)
    }
}

/// Adds token `t` to `batch`, in sequences `seqs`.
fn add_token(batch: &mut LlamaBatch, t: &BatchToken, seqs: &[i32]) -> Result<(), RunnerError> {
    let pos = i32::try_from(t.pos).map_err(|_| RunnerError::Decode("position overflow".into()))?;
    batch
        .add(LlamaToken(t.token), pos, seqs, t.logits)
        .map_err(|e| RunnerError::Decode(format!("batch: {e}")))
}

/// How to size the llama.cpp context.
#[derive(Debug, Clone, Copy)]
pub struct ContextOptions {
    /// Sequences decoded together (requests and candidates).
    pub sequences: u32,
    /// KV cells per sequence.
    pub ctx_per_sequence: u32,
    /// Tokens per decode call.
    pub batch: u32,
    pub threads: i32,
    /// Keep the KV cache in F32 instead of llama.cpp's default F16, and do
    /// not use flash attention (which computes in F16 on CPU): for exact
    /// reference comparisons; twice the KV memory.
    pub kv_f32: bool,
    /// One KV buffer shared by all sequences (the default): running
    /// requests can share a prefix. The other way, one stream per sequence
    /// as llama-server's slots, attention reads only a sequence's own cells
    /// (about 5% faster decoding at 32 streams here), but llama.cpp splits
    /// every batch into equal per-sequence parts of consecutive ids, and
    /// prefill measured slower overall.
    pub kv_unified: bool,
}

/// A llama.cpp context over all sequences.
pub struct LlamaRunner {
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    opts: ContextOptions,
    projector: Option<Arc<crate::media::Projector>>,
    /// See [`Runner::shares_prefixes`].
    shares: bool,
    /// The memory can drop a sequence's tail (attention KV, not recurrent state).
    drops_tails: bool,
    /// Sequence ids of one batch token (reused).
    seq_ids: Vec<i32>,
    /// One KV stream per sequence: llama.cpp then splits a batch into
    /// micro-batches of consecutive sequence ids taken in batch order, so
    /// the batch is given to it sorted by sequence.
    streams: bool,
    /// Where each token of the caller's last batch sits in llama.cpp's
    /// (identity unless `streams`).
    rows: Vec<i32>,
    /// The caller's batch indices in llama.cpp's order (reused).
    order: Vec<usize>,
    /// See [`Runner::query_tile`]: set where attention runs on the CPU.
    query_tile: Option<usize>,
    /// Logits of the last batch's rows that were decoded in an earlier
    /// llama.cpp call than the last (`streams` only), by batch index.
    saved: HashMap<usize, Vec<f32>>,
}

impl LlamaRunner {
    pub fn new(
        model: &'static LlamaModel,
        backend: &LlamaBackend,
        opts: ContextOptions,
    ) -> Result<Self, RunnerError> {
        let n_ctx = opts.ctx_per_sequence.saturating_mul(opts.sequences);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(opts.batch)
            .with_n_ubatch(opts.batch)
            .with_n_seq_max(opts.sequences)
            .with_n_threads(opts.threads)
            .with_n_threads_batch(opts.threads)
            .with_kv_unified(opts.kv_unified || opts.sequences <= 1);
        let params = if opts.kv_f32 {
            // Flash attention on CPU works in F16 whatever the KV type: off too.
            params
                .with_type_k(KvCacheType::F32)
                .with_type_v(KvCacheType::F32)
                .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
        } else {
            params
        };
        let ctx = model.new_context(backend, params).map_err(|e| {
            RunnerError::Setup(format!(
                "cannot create a llama.cpp context of {n_ctx} tokens: {e}"
            ))
        })?;
        // A token may belong to every sequence (shared prefixes).
        let batch = LlamaBatch::new(opts.batch as usize, opts.sequences.max(1) as i32);
        // Cells are shared between sequences only in one KV buffer with
        // full attention: a sliding-window layer drops old cells of a
        // sequence (a copied prefix would have holes), and recurrent state
        // is one per sequence.
        let arch = model
            .meta_val_str("general.architecture")
            .unwrap_or_default();
        let sliding = model
            .meta_val_str(&format!("{arch}.attention.sliding_window"))
            .is_ok_and(|w| w.trim() != "0");
        let shares = (opts.kv_unified || opts.sequences <= 1)
            && !sliding
            && !model.is_recurrent()
            && !model.is_hybrid();
        let mut runner = LlamaRunner {
            ctx,
            batch,
            opts,
            projector: None,
            shares,
            drops_tails: !model.is_recurrent() && !model.is_hybrid(),
            seq_ids: Vec::new(),
            streams: !(opts.kv_unified || opts.sequences <= 1),
            rows: Vec::new(),
            order: Vec::new(),
            saved: HashMap::new(),
            query_tile: None,
        };
        runner.warm_up(model);
        Ok(runner)
    }

    /// One decode before the first request, as llama-server does: the
    /// first request does not pay for touching the weights.
    fn warm_up(&mut self, model: &LlamaModel) {
        let bos = model.vocab().bos().0;
        let token = if (0..model.n_vocab()).contains(&bos) {
            bos
        } else {
            0
        };
        let t = BatchToken {
            token,
            pos: 0,
            seq: 0,
            logits: true,
        };
        if let Err(e) = self.decode(&[t]) {
            tracing::warn!("warm-up decode failed: {e}");
        }
        self.ctx.clear_kv_cache();
    }

    /// llama.cpp's id of sequence `seq`, checked against the context.
    fn seq_id(&self, seq: u32) -> Result<i32, RunnerError> {
        i32::try_from(seq)
            .ok()
            .filter(|&s| s < self.opts.sequences.max(1) as i32)
            .ok_or_else(|| RunnerError::Decode(format!("no sequence {seq}")))
    }

    /// Decodes what `self.batch` holds.
    fn run_batch(&mut self) -> Result<(), RunnerError> {
        self.ctx.decode(&mut self.batch).map_err(|e| match e {
            DecodeError::NoKvCacheSlot => RunnerError::NoKvRoom(e.to_string()),
            other => RunnerError::Decode(other.to_string()),
        })
    }

    /// A batch for a context with one KV stream per sequence. llama.cpp
    /// splits such a batch into micro-batches that each hold the same
    /// number of tokens of a run of consecutive sequence ids, so a step
    /// that decodes many streams and prefills prompts of different lengths
    /// falls apart into many slivers, each reading all the weights. Here
    /// each prompt (a sequence with several tokens) goes in a call of its
    /// own and the single tokens of decoding streams in one last call,
    /// sorted by sequence: one micro-batch each when the ids run on.
    fn decode_streams(&mut self, batch: &[BatchToken]) -> Result<(), RunnerError> {
        let mut count: HashMap<u32, usize> = HashMap::new();
        for t in batch {
            *count.entry(t.seq).or_default() += 1;
        }
        self.order.clear();
        self.order.extend(0..batch.len());
        // Prompts first (by sequence, each in position order: the sort is
        // stable), then the single tokens by sequence.
        self.order
            .sort_by_key(|&i| (count.get(&batch[i].seq) == Some(&1), batch[i].seq));
        self.rows.clear();
        self.rows.resize(batch.len(), 0);
        let mut start = 0;
        while start < self.order.len() {
            let first = batch[self.order[start]].seq;
            let end = if count.get(&first) == Some(&1) {
                self.order.len()
            } else {
                start + count.get(&first).copied().unwrap_or(1)
            };
            self.batch.clear();
            for (row, k) in (start..end).enumerate() {
                let i = self.order[k];
                let seq = self.seq_id(batch[i].seq)?;
                self.rows[i] = row as i32;
                add_token(&mut self.batch, &batch[i], &[seq])?;
            }
            self.run_batch()?;
            if end < self.order.len() {
                for k in start..end {
                    let i = self.order[k];
                    if batch[i].logits {
                        let row = self.ctx.get_logits_ith(self.rows[i]).to_vec();
                        self.saved.insert(i, row);
                    }
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Attention runs in llama.cpp's CPU kernels (no layer offloaded to a
    /// GPU) with flash attention, whose tiles are 64 query rows
    /// (`GGML_FA_TILE_Q`): see [`Runner::query_tile`].
    pub fn on_cpu(mut self) -> Self {
        self.query_tile = (!self.opts.kv_f32).then_some(64);
        self
    }

    /// Reads media through `projector` (loaded for the same model).
    pub fn with_projector(mut self, projector: Arc<crate::media::Projector>) -> Self {
        self.projector = Some(projector);
        self
    }
}

impl Runner for LlamaRunner {
    fn kv_capacity(&self) -> u32 {
        self.ctx.n_ctx()
    }

    fn max_sequences(&self) -> u32 {
        self.opts.sequences
    }

    fn max_batch(&self) -> usize {
        self.opts.batch as usize
    }

    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), RunnerError> {
        self.decode_shared(batch, &[])
    }

    fn drops_tails(&self) -> bool {
        self.drops_tails
    }

    fn shares_prefixes(&self) -> bool {
        self.shares
    }

    fn prefers_consecutive_sequences(&self) -> bool {
        self.streams
    }

    fn query_tile(&self) -> Option<usize> {
        self.query_tile
    }

    fn decode_shared(
        &mut self,
        batch: &[BatchToken],
        also: &[(usize, u32)],
    ) -> Result<(), RunnerError> {
        if !also.is_empty() && !self.shares {
            return Err(RunnerError::Decode(
                "this context cannot share a token between sequences".into(),
            ));
        }
        self.saved.clear();
        if self.streams {
            return self.decode_streams(batch);
        }
        self.batch.clear();
        self.rows.clear();
        let mut rest = also;
        for (i, t) in batch.iter().enumerate() {
            self.seq_ids.clear();
            self.seq_ids.push(self.seq_id(t.seq)?);
            while let Some((&(j, other), tail)) = rest.split_first() {
                if j != i {
                    break;
                }
                let other = self.seq_id(other)?;
                // The batch holds room for each sequence once.
                if !self.seq_ids.contains(&other) {
                    self.seq_ids.push(other);
                }
                rest = tail;
            }
            self.rows.push(i as i32);
            add_token(&mut self.batch, t, &self.seq_ids)?;
        }
        if !rest.is_empty() {
            return Err(RunnerError::Decode(
                "shared tokens out of order or past the batch".into(),
            ));
        }
        self.run_batch()
    }

    fn logits(&self, batch_index: usize) -> &[f32] {
        if let Some(saved) = self.saved.get(&batch_index) {
            return saved;
        }
        let row = self
            .rows
            .get(batch_index)
            .copied()
            .unwrap_or(batch_index as i32);
        self.ctx.get_logits_ith(row)
    }

    fn seq_remove(&mut self, seq: u32, from: u32, to: Option<u32>) -> bool {
        match self.ctx.clear_kv_cache_seq(Some(seq), Some(from), to) {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!("kv remove seq {seq}: {e}");
                false
            }
        }
    }

    fn seq_copy(
        &mut self,
        src: u32,
        dst: u32,
        from: u32,
        to: Option<u32>,
    ) -> Result<(), RunnerError> {
        let (Ok(s), Ok(d)) = (i32::try_from(src), i32::try_from(dst)) else {
            return Err(RunnerError::Decode(format!(
                "sequence ids {src}, {dst} out of range"
            )));
        };
        // Across streams llama.cpp copies whole sequences only: [0, end) is
        // passed as "everything".
        let p0 = (from > 0).then_some(from);
        self.ctx
            .copy_kv_cache_seq(s, d, p0, to)
            .map_err(|e| RunnerError::Decode(format!("kv copy {src}->{dst}: {e}")))
    }

    fn prefill_media(&mut self, seq: u32, prompt: &MediaPrompt) -> Result<Vec<f32>, RunnerError> {
        let Some(projector) = self.projector.clone() else {
            return Err(RunnerError::Decode(
                "no multimodal projector is loaded for this model".into(),
            ));
        };
        projector.prefill(&mut self.ctx, seq, prompt, self.opts.batch as usize)
    }
}
