//! Images through a multimodal projector (llama.cpp's mtmd) against Hugging
//! Face transformers: the tiny random Gemma 3 vision model of
//! testdata/models (make_vision.py) must tokenize a prompt with an image as
//! the reference, give the same logits after the image, and the same greedy
//! continuation; the engine serves it end to end.

mod support;

use std::sync::Arc;

use hearth_engine::runner::{BatchToken, MediaItem, MediaReader, Runner, MEDIA_POSITION};
use hearth_engine::{
    Engine, EngineError, EngineEvent, GenerateRequest, Prompt, Role, SamplingParams, Segment,
    ThinkingBudget, Turn,
};
use hearth_llama::{load_engine, ContextOptions, LoadOptions};
use serde_json::Value;
use support::{floats, max_diff, projector_runner, testdata};

/// Measured: 0.005 at the last prompt position, 0.002 on the teacher-forced
/// steps (testdata/models/README.md).
const TOLERANCE: f32 = 0.03;

fn reference() -> Value {
    let text = std::fs::read_to_string(testdata().join("models/gemma3v.reference.json"))
        .expect("gemma3v.reference.json");
    serde_json::from_str(&text).expect("reference JSON")
}

fn image(n: usize) -> Vec<u8> {
    let name = if n == 0 {
        "gemma3v-test.png"
    } else {
        "gemma3v-test2.png"
    };
    std::fs::read(testdata().join("images").join(name)).expect("test image")
}

fn argmax(v: &[f32]) -> i32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as i32
}

#[test]
fn an_image_prompt_matches_transformers() {
    let r = reference();
    let prompt = &r["reference"]["prompt"];
    let (projector, mut runner) = projector_runner("gemma3v-f32");
    assert_eq!(projector.kinds(), vec!["image/png", "image/jpeg"]);
    let text = prompt["text"].as_str().expect("text");
    assert!(text.contains(projector.marker()));
    let mut want_ids: Vec<i32> = serde_json::from_value(prompt["input_ids"].clone()).expect("ids");
    for p in prompt["image_positions"].as_array().expect("positions") {
        want_ids[p.as_u64().expect("position") as usize] = MEDIA_POSITION;
    }
    let mut last = Vec::new();
    for (n, want) in r["reference"]["images"]
        .as_array()
        .expect("images")
        .iter()
        .enumerate()
    {
        let bytes = image(n);
        // The template writes <bos> itself: no second one.
        let tokens = projector
            .tokenize(
                text,
                false,
                &[MediaItem {
                    mime_type: "image/png",
                    data: bytes.as_slice(),
                    tokens: None,
                }],
            )
            .expect("tokenize");
        assert_eq!(tokens.tokens, want_ids, "image {n}: mtmd's chunks");
        runner.seq_remove(0, 0, None);
        let logits = runner.prefill_media(0, &tokens.prompt).expect("prefill");
        let d = max_diff(&logits, &floats(&want["last_logits"]));
        assert!(
            d < TOLERANCE,
            "image {n}: last-position logits differ by {d}"
        );
        // Teacher-forced greedy steps after the image.
        let greedy: Vec<i32> = serde_json::from_value(want["greedy_ids"].clone()).expect("ids");
        let steps = want["greedy_steps"].as_array().expect("steps");
        let mut row = logits.clone();
        for (k, &t) in greedy.iter().enumerate() {
            assert_eq!(argmax(&row), t, "image {n}: greedy step {k}");
            let top: Vec<(i32, f32)> =
                serde_json::from_value(steps[k]["top5"].clone()).expect("top5");
            for (id, l) in top {
                let got = row[id as usize];
                assert!(
                    (got - l).abs() < TOLERANCE,
                    "image {n} step {k}: logit of {id} is {got}, reference {l}"
                );
            }
            runner
                .decode(&[BatchToken {
                    token: t,
                    pos: (want_ids.len() + k) as u32,
                    seq: 0,
                    logits: true,
                }])
                .expect("decode");
            row = runner.logits(0).to_vec();
        }
        eprintln!("gemma3v image {n}: max|dlogit| {d:.5}, greedy identical");
        last.push(logits);
    }
    // The model reads the image: another image gives other logits.
    assert!(max_diff(&last[0], &last[1]) > 0.5);
}

fn vision_engine() -> hearth_engine::llm::LlmEngine {
    let models = testdata().join("models");
    let mut opts = LoadOptions::new(models.join("gemma3v-f32.gguf"));
    opts.mmproj = Some(models.join("gemma3v-mmproj-f32.gguf"));
    opts.context = ContextOptions {
        sequences: 2,
        ctx_per_sequence: 256,
        batch: 64,
        threads: 2,
        kv_f32: false,
        kv_unified: true,
    };
    load_engine(&opts).expect("vision engine")
}

fn image_prompt(text: &str, png: Vec<u8>) -> Prompt {
    Prompt {
        system: Vec::new(),
        turns: vec![Turn {
            role: Role::User,
            segments: vec![
                Segment::Text(text.into()),
                Segment::Media {
                    mime_type: "image/png".into(),
                    data: Arc::new(png),
                    tokens: None,
                },
            ],
        }],
        tools: Vec::new(),
    }
}

struct Run {
    prompt_tokens: u32,
    image_tokens: u32,
    document_tokens: u32,
    ids: Vec<i32>,
}

fn greedy(engine: &dyn Engine, prompt: Prompt, max: u32) -> Result<Run, EngineError> {
    let req = GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        max_output_tokens: Some(max),
        thinking: ThinkingBudget::Off,
        logprobs: Some(0),
        ..GenerateRequest::new(prompt)
    };
    let mut rx = engine.generate(req)?;
    let mut run = Run {
        prompt_tokens: 0,
        image_tokens: 0,
        document_tokens: 0,
        ids: Vec::new(),
    };
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::Started {
                prompt_tokens,
                image_tokens,
                document_tokens,
                ..
            } => {
                (run.prompt_tokens, run.image_tokens, run.document_tokens) =
                    (prompt_tokens, image_tokens, document_tokens)
            }
            EngineEvent::Delta { logprobs, .. } => {
                run.ids.extend(logprobs.iter().map(|l| l.chosen.token_id))
            }
            EngineEvent::Failed(e) => return Err(e),
            _ => {}
        }
    }
    Ok(run)
}

/// A document's page images and text count as DOCUMENT: the page's image
/// positions plus the tokens of its text; an image beside it stays IMAGE.
#[test]
fn document_pages_count_as_documents() {
    use hearth_engine::{DocumentPart, Role, Segment, Turn};
    let engine = vision_engine();
    let page = Arc::new(image(0));
    let doc = Segment::Document(vec![
        DocumentPart::Text("--- Page 1 of 1 ---\n".into()),
        DocumentPart::Image(page.clone()),
        DocumentPart::Text("\nThe cat is named Biscuit.\n".into()),
    ]);
    let prompt = Prompt {
        system: Vec::new(),
        turns: vec![Turn {
            role: Role::User,
            segments: vec![
                doc,
                Segment::Media {
                    mime_type: "image/png".into(),
                    data: Arc::new(image(1)),
                    tokens: None,
                },
                Segment::Text("What is the cat's name?".into()),
            ],
        }],
        tools: Vec::new(),
    };
    let counted = engine.count_tokens(&prompt).expect("count");
    let texts = ["--- Page 1 of 1 ---\n", "\nThe cat is named Biscuit.\n"];
    let text_tokens: u32 = texts
        .iter()
        .map(|t| {
            let alone = Prompt::user(*t);
            let with = engine.count_tokens(&alone).expect("count").total;
            let empty = engine.count_tokens(&Prompt::user("")).expect("count").total;
            with - empty
        })
        .sum();
    assert_eq!(counted.image, 4, "the image beside the document");
    // The page's 4 image positions, and its text as tokenized in the
    // prompt: a token or so either side of each seam may merge with its
    // neighbour, which the text measured alone does not show.
    assert!(counted.document > 4, "{counted:?}");
    let text_share = counted.document - 4;
    assert!(
        text_share.abs_diff(text_tokens) <= 2 * texts.len() as u32,
        "document text {text_share} tokens, alone {text_tokens}"
    );
    let run = greedy(&engine, prompt, 2).expect("generate");
    assert_eq!(
        (run.prompt_tokens, run.image_tokens, run.document_tokens),
        (counted.total, counted.image, counted.document)
    );
}

#[test]
fn the_engine_reads_images_end_to_end() {
    let r = reference();
    let engine = vision_engine();
    let caps = &engine.info().capabilities;
    assert!(caps.reads("image/png") && caps.reads("image/jpeg"));
    assert!(!caps.reads("image/webp") && !caps.reads("audio/wav"));

    // The reference conversation, through the chat template and the engine.
    let prompt = image_prompt("Describe this image: ", image(0));
    let counted = engine.count_tokens(&prompt).expect("count");
    let first = greedy(&engine, prompt.clone(), 8).expect("generate");
    let want: Vec<i32> =
        serde_json::from_value(r["reference"]["images"][0]["greedy_ids"].clone()).expect("ids");
    assert_eq!(first.prompt_tokens, 29);
    assert_eq!(counted.total, 29);
    assert_eq!((counted.image, counted.document), (4, 0));
    assert_eq!(caps.image_size, Some(64), "clip.vision.image_size");
    assert_eq!(first.image_tokens, 4);
    assert_eq!(first.ids, want, "greedy continuation after the image");

    // The same again (the KV of the first run is not mistaken for it), then
    // the other image, then text alone: each as if alone.
    assert_eq!(greedy(&engine, prompt, 8).expect("again").ids, want);
    let other =
        greedy(&engine, image_prompt("Describe this image: ", image(1)), 8).expect("other image");
    let want2: Vec<i32> =
        serde_json::from_value(r["reference"]["images"][1]["greedy_ids"].clone()).expect("ids");
    assert_eq!(other.ids, want2);
    let text = greedy(&engine, Prompt::user("Describe this image: "), 4).expect("text only");
    assert_eq!(text.image_tokens, 0);

    // Bytes that are no image, and text holding the projector's marker: 400s.
    let bad = greedy(
        &engine,
        image_prompt("What is it? ", b"not a png".to_vec()),
        4,
    );
    match bad {
        Err(EngineError::InvalidRequest { message, .. }) => {
            assert!(message.contains("not an image"), "{message}")
        }
        other => panic!("expected a 400, got {:?}", other.map(|r| r.ids)),
    }
    let marker = greedy(&engine, image_prompt("<__media__> twice ", image(0)), 4);
    assert!(matches!(marker, Err(EngineError::InvalidRequest { .. })));
}

#[test]
fn a_mismatched_projector_is_refused_at_load() {
    let models = testdata().join("models");
    // A GGUF that is a language model, not a projector.
    let mut opts = LoadOptions::new(models.join("qwen3-f32.gguf"));
    opts.mmproj = Some(models.join("llama3-f32.gguf"));
    opts.context.threads = 2;
    let err = load_engine(&opts).err().expect("refused").to_string();
    assert!(err.contains("llama3-f32.gguf"), "{err}");
    assert!(err.contains("projector"), "{err}");
}
