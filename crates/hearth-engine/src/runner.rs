//! What the engine needs from a model backend (llama.cpp in hearth-llama):
//! a shareable tokenizer, and a runner that decodes token batches with
//! sequence ids and positions and manages each sequence's KV cache.

/// Facts read from the model file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelMeta {
    /// general.architecture ("llama", "qwen3", "gemma3" ...).
    pub architecture: String,
    /// general.name, or the file stem.
    pub name: String,
    /// Context length the model was trained with.
    pub train_context: u32,
    /// tokenizer.chat_template, if the file has one.
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Whether the tokenizer adds BOS when encoding a prompt.
    pub add_bos: bool,
    pub vocab_size: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunnerError {
    #[error("{0}")]
    Tokenize(String),
    /// The KV cache has no room for this batch.
    #[error("no KV cache room: {0}")]
    NoKvRoom(String),
    #[error("{0}")]
    Decode(String),
    /// The runner could not be set up (a llama.cpp context, its buffers).
    #[error("{0}")]
    Setup(String),
}

/// Tokenization and vocabulary: read-only, shared across threads.
pub trait Tokenizer: Send + Sync {
    fn meta(&self) -> &ModelMeta;
    /// Encodes text; special-token text (`<|im_start|>`) becomes special tokens.
    fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<i32>, RunnerError>;
    /// The raw bytes a token stands for (may be part of a UTF-8 character).
    fn token_bytes(&self, token: i32) -> Vec<u8>;
    /// End of generation (EOS, end of turn ...).
    fn is_end(&self, token: i32) -> bool;
    /// Chat markup (control and user-defined tokens such as `<|im_start|>`,
    /// `<think>`): never part of constrained text.
    fn is_special(&self, token: i32) -> bool {
        let _ = token;
        false
    }
    /// The single token whose text is exactly `text` (a marker such as `<think>`).
    fn single_token(&self, text: &str) -> Option<i32> {
        match self.encode(text, false).ok()?.as_slice() {
            [t] if self.token_bytes(*t) == text.as_bytes() => Some(*t),
            _ => None,
        }
    }
}

/// One token of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchToken {
    pub token: i32,
    pub pos: u32,
    pub seq: u32,
    /// Compute logits for this position.
    pub logits: bool,
}

/// A prompt holding media, tokenized by a [`MediaReader`]: what the runner
/// prefills, opaque to the engine (llama.cpp's mtmd chunks in hearth-llama).
pub type MediaPrompt = Box<dyn std::any::Any + Send>;

/// A prompt with media after tokenization.
pub struct MediaTokens {
    /// One entry per KV position: the text tokens, and [`MEDIA_POSITION`] for
    /// every position a media item fills. Prefix reuse never matches across
    /// media (no text token equals the placeholder), and the text before the
    /// first media item stays reusable by later text-only prompts.
    pub tokens: Vec<i32>,
    /// The positions each media item fills, in order.
    pub item_positions: Vec<u32>,
    /// What the runner prefills.
    pub prompt: MediaPrompt,
}

/// The placeholder of a KV position filled by media.
pub const MEDIA_POSITION: i32 = -1;

/// Reads media (images ...) into the model's embedding space: a multimodal
/// projector beside the language model. Shared across threads.
pub trait MediaReader: Send + Sync {
    /// Media kinds read, as MIME type prefixes ("image/").
    fn kinds(&self) -> Vec<String>;
    /// The text that stands for one media item in the rendered prompt.
    fn marker(&self) -> &str;
    /// The side, in pixels, of the images it reads (what it resizes to).
    fn image_size(&self) -> Option<u32> {
        None
    }
    /// The range of image tokens it can be asked for (a projector whose
    /// token count follows the image's size, as Gemma 4's); None: a fixed
    /// count, and a [`MediaItem::tokens`] is refused.
    fn image_tokens(&self) -> Option<(u32, u32)> {
        None
    }
    /// Tokenizes rendered text whose markers stand, in order, for `media`
    /// (encoded files such as PNG, JPEG or WAV). Errors are the caller's:
    /// bad or unreadable media.
    fn tokenize(
        &self,
        text: &str,
        add_bos: bool,
        media: &[MediaItem<'_>],
    ) -> Result<MediaTokens, RunnerError>;
}

/// One media item of a prompt: its declared type (a hint: readers decide
/// the kind from the bytes) and its encoded bytes.
#[derive(Debug, Clone, Copy)]
pub struct MediaItem<'a> {
    pub mime_type: &'a str,
    pub data: &'a [u8],
    /// The image tokens wanted (None: the projector's own count).
    pub tokens: Option<u32>,
}

/// Runs the model. Owned by the engine thread alone.
pub trait Runner {
    /// Total KV cells (tokens) shared by all sequences.
    fn kv_capacity(&self) -> u32;
    /// How many sequences may exist at once (ids 0..max_sequences).
    fn max_sequences(&self) -> u32;
    /// Decodes a batch (at most `max_batch` tokens).
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), RunnerError>;
    /// Largest batch `decode` accepts.
    fn max_batch(&self) -> usize;
    /// Logits of the i-th token of the last batch (it must have asked for logits).
    fn logits(&self, batch_index: usize) -> &[f32];
    /// Drops positions [from, to) of a sequence (to = None: to the end).
    /// False when the cache cannot drop a part of a sequence (recurrent or
    /// sliding-window memory); dropping a whole sequence always works.
    fn seq_remove(&mut self, seq: u32, from: u32, to: Option<u32>) -> bool;
    /// Whether [`Runner::seq_remove`] can drop the tail of a sequence (not
    /// recurrent state): speculation needs it to drop rejected drafts.
    fn drops_tails(&self) -> bool {
        false
    }
    /// Makes `dst` share `src`'s KV for positions [from, to). On an error
    /// `dst` may hold part of the range: the caller drops what it needs to
    /// and computes those positions itself.
    fn seq_copy(
        &mut self,
        src: u32,
        dst: u32,
        from: u32,
        to: Option<u32>,
    ) -> Result<(), RunnerError>;
    /// Whether sequences can share KV cells: one token decoded for several
    /// sequences at once ([`Runner::decode_shared`]), and a prefix [0, n) of
    /// one sequence given to another by `seq_copy` without copying (one KV
    /// buffer for all sequences, full attention on every layer).
    fn shares_prefixes(&self) -> bool {
        false
    }
    /// Whether a decode is cheapest when the sequences in it have
    /// consecutive ids: llama.cpp with one KV stream per sequence splits a
    /// batch into one micro-batch per run of consecutive ids, and every
    /// micro-batch reads all the weights again.
    fn prefers_consecutive_sequences(&self) -> bool {
        false
    }
    /// The fewest rows (batch tokens) for which attention over a long
    /// context runs its fast, tiled kernel; None when the kernel does not
    /// care. llama.cpp's CPU flash attention takes batches of 64 query rows
    /// or more as tiled matrix products and smaller ones row by row, which
    /// at depth costs more than the missing rows: measured with llama-bench
    /// on the 1B at 700 tokens of context, 64 new tokens take 607 ms and 60
    /// take 677 ms.
    fn query_tile(&self) -> Option<usize> {
        None
    }
    /// [`Runner::decode`], where `also[k] = (i, seq)` puts batch token `i`
    /// into sequence `seq` too (`also` sorted by `i`; only when
    /// [`Runner::shares_prefixes`]).
    fn decode_shared(
        &mut self,
        batch: &[BatchToken],
        also: &[(usize, u32)],
    ) -> Result<(), RunnerError> {
        if also.is_empty() {
            self.decode(batch)
        } else {
            Err(RunnerError::Decode(
                "this runner cannot share a token between sequences".into(),
            ))
        }
    }
    /// Prefills a whole prompt with media (from a [`MediaReader`] of the
    /// same model) into the empty sequence `seq`; returns the logits of its
    /// last position.
    fn prefill_media(&mut self, seq: u32, prompt: &MediaPrompt) -> Result<Vec<f32>, RunnerError> {
        let _ = (seq, prompt);
        Err(RunnerError::Decode("this runner reads no media".into()))
    }
}
