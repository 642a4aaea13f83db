//! Audio decoding for projectors that read audio: every audio type Gemini
//! accepts (WAV, MP3, AIFF, AAC, OGG Vorbis, FLAC) decoded by `symphonia`
//! (pure Rust, no subprocess, no system library), downmixed to mono and
//! resampled by `rubato` to the projector's rate. The kind of the bytes is
//! decided by symphonia's probe of their content, never by handing them to
//! mtmd's own loader (which falls back to running ffmpeg on bytes it cannot
//! read). Decoding stops as soon as a clip passes the longest one hearth
//! reads, whatever its header declares.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The longest clip hearth decodes, in seconds: 10 minutes (at Gemma 4's 25
/// tokens a second, 15 000 tokens; a model's context is the tighter limit
/// for most).
pub const MAX_AUDIO_SECONDS: f64 = 600.0;

/// The shortest clip, in seconds: llama.cpp's audio front end needs a few
/// frames (and aborts on a clip of one sample).
pub const MIN_AUDIO_SECONDS: f64 = 0.025;

/// Audio MIME types as Gemini names them (and the aliases SDKs send).
pub const AUDIO_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/mp3",
    "audio/mpeg",
    "audio/aiff",
    "audio/x-aiff",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "audio/x-flac",
];

/// A clip decoded to mono samples at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Pcm {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }
}

/// Decodes `bytes` (whatever container and codec symphonia finds in them;
/// `mime` is a hint only) to mono float samples at `rate` Hz.
pub fn decode_audio(bytes: &[u8], mime: &str, rate: u32) -> Result<Pcm, String> {
    let decoded = decode_native(bytes, mime)?;
    let seconds = decoded.seconds();
    if seconds < MIN_AUDIO_SECONDS {
        return Err(format!(
            "the clip is {:.3} s long; hearth reads clips of at least {MIN_AUDIO_SECONDS} s",
            seconds
        ));
    }
    resample(decoded, rate)
}

/// Decodes to mono at the clip's own rate.
fn decode_native(bytes: &[u8], mime: &str) -> Result<Pcm, String> {
    let source = MediaSourceStream::new(
        Box::new(Cursor::new(bytes.to_vec())),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    hint.mime_type(mime);
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            // MP3 and AAC: the encoder's delay and padding are dropped,
            // so the clip starts and ends where it was recorded.
            &FormatOptions {
                enable_gapless: true,
                ..FormatOptions::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| format!("not an audio file hearth can read ({})", describe(&e)))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("the file holds no audio track")?;
    let track_id = track.id;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| {
            format!(
                "its audio codec is not one hearth decodes ({})",
                describe(&e)
            )
        })?;
    let mut out: Vec<f32> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut bad_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(format!("the audio stream is damaged ({})", describe(&e))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped, as players do; a stream of them is refused.
            Err(SymphoniaError::DecodeError(_)) => {
                bad_packets += 1;
                if bad_packets > 16 {
                    return Err("the audio stream is damaged (undecodable packets)".into());
                }
                continue;
            }
            Err(e) => return Err(format!("the audio does not decode ({})", describe(&e))),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let buf = match &mut buffer {
            Some(b) if b.capacity() >= decoded.capacity() * channels => b,
            _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        // Mono: the mean of the channels.
        let scale = 1.0 / channels as f32;
        out.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        if rate > 0 && out.len() as f64 > MAX_AUDIO_SECONDS * f64::from(rate) {
            return Err(format!(
                "the clip is longer than the {} minutes hearth reads",
                MAX_AUDIO_SECONDS / 60.0
            ));
        }
    }
    if rate == 0 || out.is_empty() {
        return Err("the file holds no audio samples".into());
    }
    Ok(Pcm { samples: out, rate })
}

/// `pcm` at `rate` Hz (FFT resampling, the delay trimmed).
fn resample(pcm: Pcm, rate: u32) -> Result<Pcm, String> {
    use rubato::{FftFixedIn, Resampler};
    if pcm.rate == rate {
        return Ok(pcm);
    }
    const CHUNK: usize = 1024;
    let mut r = FftFixedIn::<f32>::new(pcm.rate as usize, rate as usize, CHUNK, 2, 1)
        .map_err(|e| format!("cannot resample {} Hz audio: {e}", pcm.rate))?;
    let want = (pcm.samples.len() as u64 * u64::from(rate)).div_ceil(u64::from(pcm.rate)) as usize;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + CHUNK);
    let mut rest = pcm.samples.as_slice();
    let err = |e: rubato::ResampleError| format!("resampling failed: {e}");
    while rest.len() >= r.input_frames_next() {
        let n = r.input_frames_next();
        let chunk = r.process(&[&rest[..n]], None).map_err(err)?;
        out.extend_from_slice(&chunk[0]);
        rest = &rest[n..];
    }
    // The tail, then zeros until the delayed output is all out.
    let mut tail = Some(rest);
    while out.len() < want + delay {
        let chunk = r.process_partial(tail.take().as_ref().map(std::slice::from_ref), None);
        out.extend_from_slice(&chunk.map_err(err)?[0]);
    }
    let samples = out.into_iter().skip(delay).take(want).collect();
    Ok(Pcm { samples, rate })
}

/// symphonia's error without its internal detail.
fn describe(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::Unsupported(what) => format!("unsupported: {what}"),
        SymphoniaError::DecodeError(what) => format!("malformed: {what}"),
        SymphoniaError::LimitError(what) => format!("too large: {what}"),
        SymphoniaError::IoError(e) => format!("truncated or unreadable: {e}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mono or stereo 16-bit WAV of `f(t)`.
    fn wav(rate: u32, channels: u16, seconds: f64, f: impl Fn(f64) -> f64) -> Vec<u8> {
        let n = (seconds * f64::from(rate)) as usize;
        let mut data = Vec::new();
        for i in 0..n {
            let v = (f(i as f64 / f64::from(rate)) * 32767.0).round() as i16;
            for _ in 0..channels {
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
        out.extend_from_slice(&(2 * channels).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    fn tone(t: f64) -> f64 {
        0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
    }

    #[test]
    fn a_16_khz_wav_decodes_sample_for_sample() {
        let bytes = wav(16000, 1, 0.5, tone);
        let pcm = decode_audio(&bytes, "audio/wav", 16000).expect("decodes");
        assert_eq!(pcm.samples.len(), 8000);
        for (i, s) in pcm.samples.iter().enumerate().step_by(97) {
            let want = (tone(i as f64 / 16000.0) * 32767.0).round() / 32768.0;
            assert!((f64::from(*s) - want).abs() < 1e-6, "sample {i}");
        }
    }

    #[test]
    fn stereo_at_44_1_khz_becomes_mono_16_khz_of_the_same_length_and_pitch() {
        let bytes = wav(44100, 2, 1.0, tone);
        let pcm = decode_audio(&bytes, "audio/wav", 16000).expect("decodes");
        assert_eq!(pcm.rate, 16000);
        assert_eq!(pcm.samples.len(), 16000);
        // Still a 440 Hz tone of amplitude 0.5: compare away from the edges.
        let worst = (2000..14000)
            .map(|i| (f64::from(pcm.samples[i]) - tone(i as f64 / 16000.0)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.01, "resampled tone differs by {worst}");
    }

    #[test]
    fn bytes_that_are_no_audio_and_hostile_clips_are_refused() {
        for bad in [
            &b"not audio at all"[..],
            &[0u8; 64][..],
            b"RIFF\x10\x00\x00\x00WAVEfmt ",
        ] {
            let e = decode_audio(bad, "audio/wav", 16000).expect_err("refused");
            assert!(!e.is_empty());
        }
        // A truncated file gives what it holds; a clip too short to read is refused.
        let bytes = wav(16000, 1, 0.5, tone);
        let pcm = decode_audio(&bytes[..bytes.len() / 2], "audio/wav", 16000).expect("truncated");
        assert!(pcm.samples.len() < 8000 && pcm.samples.len() > 3000);
        let short = wav(16000, 1, 0.01, tone);
        let e = decode_audio(&short, "audio/wav", 16000).expect_err("too short");
        assert!(e.contains("at least"), "{e}");
        // A header that declares 10 hours: decoding stops at the cap, not at 10 hours.
        let mut huge = wav(8000, 1, 0.0, tone);
        let declared: u32 = 8000 * 2 * 3600 * 10;
        huge[40..44].copy_from_slice(&declared.to_le_bytes());
        huge[4..8].copy_from_slice(&(declared + 36).to_le_bytes());
        huge.extend(std::iter::repeat_n(0u8, (8000 * 2 * 601) as usize));
        let e = decode_audio(&huge, "audio/wav", 16000).expect_err("too long");
        assert!(e.contains("longer than"), "{e}");
    }
}
