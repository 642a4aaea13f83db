//! Media input through a multimodal projector (`--mmproj`), with llama.cpp's
//! mtmd library: images are decoded and preprocessed as the projector
//! expects, encoded by its vision tower, and their embeddings prefilled into
//! the sequence between the prompt's text tokens.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hearth_engine::runner::{MediaPrompt, MediaReader, MediaTokens, RunnerError, MEDIA_POSITION};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{
    mtmd_default_marker, MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType,
    MtmdInputChunks, MtmdInputText,
};

/// Image formats the projector's decoder (stb_image) reads, as Gemini names
/// them. WebP, HEIC and HEIF are not among them: they are refused by name.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg"];

/// A loaded projector, shared by the tokenizing request threads and the
/// engine thread that evaluates it.
pub struct Projector {
    ctx: Mutex<MtmdContext>,
    marker: String,
}

impl Projector {
    /// Loads the projector GGUF for `model` (errors do not repeat the path).
    pub fn load(path: &Path, model: &LlamaModel, threads: i32) -> Result<Arc<Self>, String> {
        let path_str = path
            .to_str()
            .ok_or_else(|| "the projector's path is not UTF-8".to_string())?;
        let params = MtmdContextParams {
            use_gpu: true,
            n_threads: threads.max(1),
            print_timings: false,
            ..MtmdContextParams::default()
        };
        let ctx = MtmdContext::init_from_file(path_str, model, &params).map_err(|e| {
            format!(
                "llama.cpp could not load this multimodal projector for the model ({e}); \
                 it must be the mmproj GGUF made for this very model"
            )
        })?;
        if ctx.decode_use_mrope() {
            return Err(
                "this projector places image tokens with M-RoPE (Qwen2-VL and its kin), \
                 which hearth does not support yet"
                    .into(),
            );
        }
        if !ctx.support_vision() {
            return Err(
                "this projector reads no images (audio-only projectors are not supported yet)"
                    .into(),
            );
        }
        Ok(Arc::new(Projector {
            ctx: Mutex::new(ctx),
            marker: mtmd_default_marker().to_string(),
        }))
    }

    /// Prefills `prompt` (made by this projector's `tokenize`) into `seq`
    /// from position 0; returns the logits of the last position.
    pub fn prefill(
        &self,
        llama: &mut LlamaContext<'static>,
        seq: u32,
        prompt: &MediaPrompt,
        n_batch: usize,
    ) -> Result<Vec<f32>, RunnerError> {
        let chunks = prompt
            .downcast_ref::<MtmdInputChunks>()
            .ok_or_else(|| RunnerError::Decode("a media prompt of another kind".into()))?;
        let mut ctx = self
            .ctx
            .lock()
            .map_err(|_| RunnerError::Decode("the projector is poisoned".into()))?;
        let seq_id = i32::try_from(seq).map_err(|_| RunnerError::Decode("sequence id".into()))?;
        let n_batch = i32::try_from(n_batch).unwrap_or(i32::MAX);
        chunks
            .eval_chunks(&mut ctx, llama, 0, seq_id, n_batch, true)
            .map_err(|e| RunnerError::Decode(format!("llama.cpp's mtmd: {e}")))?;
        Ok(llama.get_logits_ith(-1).to_vec())
    }
}

impl MediaReader for Projector {
    /// Only projectors that read images are loaded.
    fn kinds(&self) -> Vec<String> {
        IMAGE_TYPES.iter().map(|s| s.to_string()).collect()
    }

    fn marker(&self) -> &str {
        &self.marker
    }

    fn tokenize(
        &self,
        text: &str,
        add_bos: bool,
        media: &[&[u8]],
    ) -> Result<MediaTokens, RunnerError> {
        let ctx = self
            .ctx
            .lock()
            .map_err(|_| RunnerError::Tokenize("the projector is poisoned".into()))?;
        let mut bitmaps = Vec::with_capacity(media.len());
        for (i, bytes) in media.iter().enumerate() {
            let bitmap = MtmdBitmap::from_buffer(&ctx, bytes, false).map_err(|_| {
                RunnerError::Tokenize(format!(
                    "media item {} ({} bytes) is not an image this model can decode (PNG or JPEG)",
                    i + 1,
                    bytes.len()
                ))
            })?;
            bitmaps.push(bitmap);
        }
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let input = MtmdInputText {
            text: text.to_string(),
            add_special: add_bos,
            parse_special: true,
        };
        let chunks = ctx
            .tokenize(input, &refs)
            .map_err(|e| RunnerError::Tokenize(format!("llama.cpp's mtmd: {e}")))?;
        let mut tokens = Vec::with_capacity(chunks.total_tokens());
        for i in 0..chunks.len() {
            let Some(chunk) = chunks.get(i) else { continue };
            match chunk.chunk_type() {
                MtmdInputChunkType::Text => {
                    tokens.extend(chunk.text_tokens().unwrap_or_default().iter().map(|t| t.0));
                }
                MtmdInputChunkType::Image | MtmdInputChunkType::Audio => {
                    let n = usize::try_from(chunk.n_positions()).unwrap_or(0);
                    tokens.extend(std::iter::repeat_n(MEDIA_POSITION, n));
                }
            }
        }
        Ok(MediaTokens {
            tokens,
            prompt: Box::new(chunks),
        })
    }
}
