//! Media input through a multimodal projector (`--mmproj`), with llama.cpp's
//! mtmd library: images and audio clips are decoded here (the `image` crate,
//! [`crate::audio`]), preprocessed by mtmd as the projector expects, encoded
//! by its vision or audio tower, and their embeddings prefilled into the
//! sequence between the prompt's text tokens.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hearth_engine::runner::{
    MediaItem, MediaPrompt, MediaReader, MediaTokens, RunnerError, MEDIA_POSITION,
};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{
    mtmd_default_marker, MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType,
    MtmdInputChunks, MtmdInputText,
};

/// Image formats hearth decodes for the projector, as Gemini names them.
/// WebP, HEIC and HEIF are not among them: they are refused by name.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg"];

/// The most pixels an image may declare: checked from its header, before a
/// single pixel is decoded (a few-KB PNG can declare 20000 x 20000 pixels,
/// 1.2 GB decoded). 50 megapixels is 150 MB of RGB.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// Decodes a PNG or JPEG to RGB8 with the `image` crate, outside any lock,
/// never through mtmd's own loader: mtmd-helper hands bytes that are not an
/// image to ffmpeg when built with MTMD_VIDEO, and untrusted bytes must not
/// reach a subprocess. Dimensions come from the header and are capped
/// before decoding; the decoder's own allocations are capped too.
pub fn decode_image(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    use image::{ImageFormat, ImageReader};
    use std::io::Cursor;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err("not a PNG or JPEG image".into());
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("unreadable image header: {e}"))?;
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(format!(
            "the image is {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS} hearth decodes"
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    reader.limits(limits);
    let rgb = reader
        .decode()
        .map_err(|e| format!("the image does not decode: {e}"))?
        .into_rgb8();
    let (w, h) = rgb.dimensions();
    Ok((w, h, rgb.into_raw()))
}

/// The image scaled (aspect kept, bicubic as mtmd's) to about `tokens`
/// tokens of `side` x `side` pixels each, each edge a multiple of `side`:
/// mtmd's dynamic-size preprocessor then keeps that size.
fn to_budget(w: u32, h: u32, rgb: Vec<u8>, tokens: u32, side: u32) -> (u32, u32, Vec<u8>) {
    let scale =
        (f64::from(tokens) * f64::from(side).powi(2) / (f64::from(w) * f64::from(h))).sqrt();
    let edge = |v: u32| ((f64::from(v) * scale / f64::from(side)).round().max(1.0) as u32) * side;
    let (tw, th) = (edge(w), edge(h));
    let Some(img) = image::RgbImage::from_raw(w, h, rgb.clone()) else {
        return (w, h, rgb);
    };
    let out = image::imageops::resize(&img, tw, th, image::imageops::FilterType::CatmullRom);
    (tw, th, out.into_raw())
}

/// A loaded projector, shared by the tokenizing request threads and the
/// engine thread that evaluates it.
pub struct Projector {
    ctx: Mutex<MtmdContext>,
    marker: String,
    /// `clip.vision.image_size` of the projector's GGUF.
    image_size: Option<u32>,
    /// It has a vision tower.
    vision: bool,
    /// The sample rate of its audio tower, when it has one.
    audio_rate: Option<u32>,
    /// A token budget per image: (fewest, most, the side in pixels of one
    /// token), for projectors whose token count follows the image's size.
    budget: Option<(u32, u32, u32)>,
}

/// Gemma 4's vision projector reads an image as 70 to 1120 tokens, one per
/// 3 x 3 patches (clip.cpp: `set_limit_image_tokens(70, 1120)`, n_merge 3),
/// as many as its size gives once aligned (mtmd's dyn_size preprocessor).
const GEMMA4_IMAGE_TOKENS: (u32, u32) = (70, 1120);

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
        let vision = ctx.support_vision();
        let audio_rate = ctx
            .support_audio()
            .then(|| ctx.get_audio_sample_rate())
            .flatten();
        if !vision && audio_rate.is_none() {
            return Err("this projector reads neither images nor audio".into());
        }
        let header = crate::gguf::read_header(path).ok();
        let int = |key: &str| {
            header
                .as_ref()
                .and_then(|h| h.int(key))
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
        };
        let image_size = int("clip.vision.image_size");
        let kind = header
            .as_ref()
            .and_then(|h| h.str("clip.vision.projector_type"))
            .unwrap_or_default()
            .to_string();
        let budget = match (kind.as_str(), int("clip.vision.patch_size")) {
            ("gemma4v", Some(patch)) if vision => {
                Some((GEMMA4_IMAGE_TOKENS.0, GEMMA4_IMAGE_TOKENS.1, patch * 3))
            }
            _ => None,
        };
        Ok(Arc::new(Projector {
            ctx: Mutex::new(ctx),
            marker: mtmd_default_marker().to_string(),
            image_size,
            vision,
            audio_rate,
            budget,
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
    /// The image types when it has a vision tower, the audio types when it
    /// has an audio tower.
    fn kinds(&self) -> Vec<String> {
        let images = IMAGE_TYPES.iter().filter(|_| self.vision);
        let audio = crate::audio::AUDIO_TYPES
            .iter()
            .filter(|_| self.audio_rate.is_some());
        images.chain(audio).map(|s| s.to_string()).collect()
    }

    fn marker(&self) -> &str {
        &self.marker
    }

    fn image_size(&self) -> Option<u32> {
        self.image_size
    }

    fn image_tokens(&self) -> Option<(u32, u32)> {
        self.budget.map(|(lo, hi, _)| (lo, hi))
    }

    fn tokenize(
        &self,
        text: &str,
        add_bos: bool,
        media: &[MediaItem<'_>],
    ) -> Result<MediaTokens, RunnerError> {
        // Decoded before the projector is locked: the engine thread encodes
        // media with it meanwhile.
        let mut bitmaps = Vec::with_capacity(media.len());
        for (i, m) in media.iter().enumerate() {
            let audio = m.mime_type.starts_with("audio/");
            let item = |why: String| {
                RunnerError::Tokenize(format!(
                    "media item {} ({} bytes) is not {} this model can read: {why}",
                    i + 1,
                    m.data.len(),
                    if audio { "audio" } else { "an image" }
                ))
            };
            let bitmap = match (audio, self.audio_rate) {
                (true, Some(rate)) => {
                    let pcm =
                        crate::audio::decode_audio(m.data, m.mime_type, rate).map_err(item)?;
                    MtmdBitmap::from_audio_data(&pcm.samples).map_err(|e| item(format!("{e:?}")))?
                }
                (true, None) => return Err(item("this projector has no audio tower".into())),
                (false, _) => {
                    let (w, h, rgb) = decode_image(m.data).map_err(item)?;
                    let (w, h, rgb) = match (m.tokens, self.budget) {
                        (Some(n), Some((_, _, side))) => to_budget(w, h, rgb, n, side),
                        _ => (w, h, rgb),
                    };
                    MtmdBitmap::from_image_data(w, h, &rgb).map_err(|e| item(format!("{e:?}")))?
                }
            };
            bitmaps.push(bitmap);
        }
        let ctx = self
            .ctx
            .lock()
            .map_err(|_| RunnerError::Tokenize("the projector is poisoned".into()))?;
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
        let mut item_positions: Vec<u32> = Vec::with_capacity(media.len());
        // A clip longer than the audio tower's window (30 s for Gemma 4)
        // is several chunks in a row: they are one item.
        let mut in_item = false;
        for i in 0..chunks.len() {
            let Some(chunk) = chunks.get(i) else { continue };
            match chunk.chunk_type() {
                MtmdInputChunkType::Text => {
                    tokens.extend(chunk.text_tokens().unwrap_or_default().iter().map(|t| t.0));
                    in_item = false;
                }
                MtmdInputChunkType::Image | MtmdInputChunkType::Audio => {
                    let n = usize::try_from(chunk.n_positions()).unwrap_or(0);
                    tokens.extend(std::iter::repeat_n(MEDIA_POSITION, n));
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    match item_positions.last_mut() {
                        Some(last) if in_item => *last = last.saturating_add(n),
                        _ => item_positions.push(n),
                    }
                    in_item = true;
                }
            }
        }
        Ok(MediaTokens {
            tokens,
            item_positions,
            prompt: Box::new(chunks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG header (signature + IHDR) declaring `w` x `h` RGB pixels, and
    /// no image data: a decoder that trusted it would allocate w * h * 3.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&ihdr);
        out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An empty IDAT: the header is complete, the pixels absent.
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(b"IDAT");
        out.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        out
    }

    /// PNG's CRC-32 (ISO 3309), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn huge_declared_images_are_refused_before_decoding() {
        let err = decode_image(&png_header(20_000, 20_000)).expect_err("too big");
        assert!(err.contains("20000x20000"), "{err}");
    }

    #[test]
    fn the_test_images_decode_and_other_bytes_do_not() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images");
        let png = std::fs::read(dir.join("gemma3v-test.png")).expect("png");
        let (w, h, rgb) = decode_image(&png).expect("decodes");
        assert_eq!((w, h, rgb.len()), (64, 64, 64 * 64 * 3));
        for bytes in [&b"not an image at all"[..], b"RIFF\0\0\0\0WEBPVP8 ", b""] {
            assert!(decode_image(bytes).is_err());
        }
    }
}
