//! Audio through a multimodal projector (llama.cpp's mtmd) against Hugging
//! Face transformers: the tiny random Gemma 4 audio model of testdata/models
//! (make_audio.py) must give as many audio tokens per second as the
//! reference, tokenize a prompt with a clip as the reference, and give the
//! same logits after the clip; the engine serves it end to end, with AUDIO
//! counted apart.

mod support;

use std::sync::Arc;

use hearth_engine::runner::{MediaItem, MediaReader, Runner, MEDIA_POSITION};
use hearth_engine::{
    Engine, EngineError, EngineEvent, GenerateRequest, Prompt, Role, SamplingParams, Segment,
    ThinkingBudget, Turn,
};
use hearth_llama::{load_engine, ContextOptions, LoadOptions};
use serde_json::Value;
use support::{floats, max_diff, projector_runner, testdata};

/// What llama.cpp's float32 front end (its own FFT) and graph may differ
/// by; measured 0.010 and 0.011 after the two clips (the test prints it).
const TOLERANCE: f32 = 0.03;

fn reference() -> Value {
    let text = std::fs::read_to_string(testdata().join("models/gemma4a.reference.json"))
        .expect("gemma4a.reference.json");
    serde_json::from_str(&text).expect("reference JSON")
}

fn clip(n: usize) -> Vec<u8> {
    let name = ["gemma4a-test.wav", "gemma4a-test2.wav"][n];
    std::fs::read(testdata().join("audio").join(name)).expect("test clip")
}

#[test]
fn an_audio_prompt_matches_transformers() {
    let r = reference();
    let text = r["reference"]["text"].as_str().expect("text");
    let (projector, mut runner) = projector_runner("gemma4a-f32");
    assert!(projector.kinds().iter().any(|k| k == "audio/wav"));
    let mut last = Vec::new();
    for (n, want) in r["reference"]["clips"]
        .as_array()
        .expect("clips")
        .iter()
        .enumerate()
    {
        let bytes = clip(n);
        let tokens = projector
            .tokenize(
                text,
                false,
                &[MediaItem {
                    mime_type: "audio/wav",
                    data: &bytes,
                    tokens: None,
                }],
            )
            .expect("tokenize");
        // As many audio positions as transformers' audio tower gives: 25 a
        // second for Gemma 4.
        let n_audio = want["n_audio_tokens"].as_u64().expect("n") as u32;
        assert_eq!(tokens.item_positions, vec![n_audio], "clip {n}");
        let seconds = want["seconds"].as_f64().expect("seconds");
        eprintln!(
            "gemma4a clip {n}: {n_audio} audio tokens for {seconds} s ({:.1} a second)",
            f64::from(n_audio) / seconds
        );
        let mut want_ids: Vec<i32> =
            serde_json::from_value(want["prompt"]["input_ids"].clone()).expect("ids");
        for p in want["prompt"]["audio_positions"]
            .as_array()
            .expect("positions")
        {
            want_ids[p.as_u64().expect("position") as usize] = MEDIA_POSITION;
        }
        assert_eq!(tokens.tokens, want_ids, "clip {n}: mtmd's chunks");
        runner.seq_remove(0, 0, None);
        let logits = runner.prefill_media(0, &tokens.prompt).expect("prefill");
        let d = max_diff(&logits, &floats(&want["last_logits"]));
        eprintln!("gemma4a clip {n}: max |dlogit| after the clip {d:.5}");
        assert!(
            d < TOLERANCE,
            "clip {n}: last-position logits differ by {d}"
        );
        last.push(logits);
    }
    assert_eq!(
        r["reference"]["clips"][0]["audio_tokens_per_second"].as_f64(),
        Some(25.0)
    );
    // The model hears the clip: another clip gives other logits.
    assert!(max_diff(&last[0], &last[1]) > 0.05);
}

fn audio_engine() -> hearth_engine::llm::LlmEngine {
    let models = testdata().join("models");
    let mut opts = LoadOptions::new(models.join("gemma4a-f32.gguf"));
    opts.mmproj = Some(models.join("gemma4a-mmproj-f32.gguf"));
    opts.context = ContextOptions {
        sequences: 2,
        ctx_per_sequence: 256,
        batch: 64,
        threads: 2,
        kv_f32: false,
        kv_unified: true,
    };
    load_engine(&opts).expect("audio engine")
}

fn audio_prompt(text: &str, mime: &str, bytes: Vec<u8>) -> Prompt {
    Prompt {
        system: Vec::new(),
        turns: vec![Turn {
            role: Role::User,
            segments: vec![
                Segment::Text(text.into()),
                Segment::Media {
                    mime_type: mime.into(),
                    data: Arc::new(bytes),
                    tokens: None,
                },
            ],
        }],
        tools: Vec::new(),
    }
}

/// (prompt tokens, audio tokens, generated ids) of a greedy run.
fn greedy(
    engine: &dyn Engine,
    prompt: Prompt,
    max: u32,
) -> Result<(u32, u32, Vec<i32>), EngineError> {
    run(engine, prompt, max, ThinkingBudget::Off)
}

fn run(
    engine: &dyn Engine,
    prompt: Prompt,
    max: u32,
    thinking: ThinkingBudget,
) -> Result<(u32, u32, Vec<i32>), EngineError> {
    let req = GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        max_output_tokens: Some(max),
        thinking,
        logprobs: Some(0),
        ..GenerateRequest::new(prompt)
    };
    let mut rx = engine.generate(req)?;
    let (mut prompt_tokens, mut audio_tokens, mut ids) = (0, 0, Vec::new());
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::Started {
                prompt_tokens: p,
                audio_tokens: a,
                ..
            } => (prompt_tokens, audio_tokens) = (p, a),
            EngineEvent::Delta { logprobs, .. } => {
                ids.extend(logprobs.iter().map(|l| l.chosen.token_id))
            }
            EngineEvent::Failed(e) => return Err(e),
            _ => {}
        }
    }
    Ok((prompt_tokens, audio_tokens, ids))
}

#[test]
fn the_engine_reads_audio_end_to_end() {
    let engine = audio_engine();
    let caps = &engine.info().capabilities;
    for mime in [
        "audio/wav",
        "audio/mp3",
        "audio/aiff",
        "audio/aac",
        "audio/ogg",
        "audio/flac",
    ] {
        assert!(caps.reads(mime), "{mime}");
    }
    let prompt = audio_prompt("What is said here? ", "audio/wav", clip(0));
    let counted = engine.count_tokens(&prompt).expect("count");
    assert_eq!(counted.audio, 25, "{counted:?}");
    assert_eq!(counted.image, 0);
    // countTokens counts the prompt as a request that sets nothing else
    // (dynamic thinking) renders it.
    let (prompt_tokens, audio_tokens, _) =
        run(&engine, prompt.clone(), 2, ThinkingBudget::Dynamic).expect("run");
    assert_eq!((prompt_tokens, audio_tokens), (counted.total, 25));
    let (_, audio_tokens, first) = greedy(&engine, prompt.clone(), 6).expect("run");
    assert_eq!(audio_tokens, 25);
    assert_eq!(first.len(), 6);
    // The same again (its KV is not mistaken for another clip's), and the
    // other clip: 15 tokens for 0.6 s, another answer.
    assert_eq!(greedy(&engine, prompt, 6).expect("again").2, first);
    let other = audio_prompt("What is said here? ", "audio/wav", clip(1));
    let (_, audio_tokens, _) = greedy(&engine, other, 6).expect("other clip");
    assert_eq!(audio_tokens, 15);

    // Bytes that are no audio: a 400 that says so.
    let bad = greedy(
        &engine,
        audio_prompt("What is it? ", "audio/mp3", b"not an mp3".to_vec()),
        4,
    );
    match bad {
        Err(EngineError::InvalidRequest { message, .. }) => {
            assert!(message.contains("is not audio"), "{message}")
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

/// Gemini's other audio types, decoded: lossless ones sample for sample as
/// the WAV, lossy ones and a 44.1 kHz stereo copy close to it; each gives
/// the projector about as many tokens and nearly the same logits.
#[test]
fn every_audio_type_decodes_to_the_same_clip() {
    use hearth_llama::audio::decode_audio;
    let r = reference();
    let wav = decode_audio(&clip(0), "audio/wav", 16000).expect("wav");
    let (projector, mut runner) = projector_runner("gemma4a-f32");
    let text = r["reference"]["text"].as_str().expect("text");
    let want = floats(&r["reference"]["clips"][0]["last_logits"]);
    let silence = r["reference"]["clips"][0]["last_logits_max_abs_diff_if_the_audio_were_silence"]
        .as_f64()
        .expect("silence") as f32;
    for (file, mime, lossless) in [
        ("gemma4a-test.flac", "audio/flac", true),
        ("gemma4a-test.aiff", "audio/aiff", true),
        ("gemma4a-test.mp3", "audio/mp3", false),
        ("gemma4a-test.ogg", "audio/ogg", false),
        ("gemma4a-test.aac", "audio/aac", false),
        ("gemma4a-test-44k-stereo.wav", "audio/wav", false),
    ] {
        let bytes = std::fs::read(testdata().join("audio").join(file)).expect("file");
        let pcm = decode_audio(&bytes, mime, 16000).unwrap_or_else(|e| panic!("{file}: {e}"));
        // Raw AAC (ADTS) carries no encoder delay: its first samples are
        // the encoder's priming (1024 for FFmpeg's). Compare at the best
        // of the shifts an encoder delay can be (0 for the others).
        let max_shift = if mime == "audio/aac" { 2112 } else { 0 };
        let err = (0..=max_shift)
            .step_by(16)
            .map(|shift| {
                let got = &pcm.samples[shift.min(pcm.samples.len())..];
                let n = got.len().min(wav.samples.len());
                (got[..n].iter().zip(&wav.samples[..n]))
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>()
                    / n.max(1) as f64
            })
            .fold(f64::MAX, f64::min);
        let power = wav
            .samples
            .iter()
            .map(|a| f64::from(*a).powi(2))
            .sum::<f64>()
            / wav.samples.len() as f64;
        let snr_db = 10.0 * (power / err.max(1e-30)).log10();
        let tokens = projector
            .tokenize(
                text,
                false,
                &[MediaItem {
                    mime_type: mime,
                    data: &bytes,
                    tokens: None,
                }],
            )
            .expect("tokenize");
        runner.seq_remove(0, 0, None);
        let logits = runner.prefill_media(0, &tokens.prompt).expect("prefill");
        let d = max_diff(&logits, &want);
        eprintln!(
            "{file}: {} samples (wav {}), SNR {snr_db:.1} dB, {} audio tokens, max |dlogit| vs transformers {d:.4}",
            pcm.samples.len(),
            wav.samples.len(),
            tokens.item_positions[0]
        );
        if lossless {
            assert_eq!(pcm, wav, "{file}: sample for sample");
            assert!(d < TOLERANCE, "{file}: {d}");
        } else {
            let len = pcm.samples.len() as f64 / wav.samples.len() as f64;
            let aac = mime == "audio/aac";
            let slack = if aac { 0.15 } else { 0.03 };
            assert!(
                (1.0 - slack..1.0 + slack).contains(&len),
                "{file}: length {len}"
            );
            assert!(snr_db > 15.0, "{file}: SNR {snr_db} dB");
            let token_slack = if aac { 3 } else { 1 };
            assert!(
                tokens.item_positions[0].abs_diff(25) <= token_slack,
                "{file}"
            );
            // Closer to the clip's logits than to silence's, by far (not
            // for ADTS AAC, whose priming silence shifts the whole clip).
            if !aac {
                assert!(
                    d < 0.5 * silence,
                    "{file}: logits differ by {d}, silence by {silence}"
                );
            }
        }
    }
}
