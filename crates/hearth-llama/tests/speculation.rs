//! Prompt-lookup speculation on the tiny models: a lone stream drafts the
//! tokens that followed its last n-gram earlier in its context and keeps
//! those the sampler picks itself. The reply must be token for token the
//! one plain decoding gives, greedy and seeded alike, and the drafts must
//! actually be taken (fewer decode steps).

mod support;

use hearth_engine::{Engine, EngineEvent, GenerateRequest, Prompt, SamplingParams, ThinkingBudget};

fn engine(name: &str, speculate: bool) -> hearth_engine::llm::LlmEngine {
    support::tiny_engine(name, 1, |o| o.speculate = speculate)
}

/// The generated ids, and how many events carried them.
fn ids(engine: &dyn Engine, text: &str, temperature: f32, seed: u64) -> Vec<i32> {
    let req = GenerateRequest {
        sampling: SamplingParams {
            temperature,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        max_output_tokens: Some(96),
        thinking: ThinkingBudget::Off,
        logprobs: Some(0),
        ..GenerateRequest::new(Prompt::user(text))
    };
    let mut rx = engine.generate(req).expect("accepted");
    let mut out = Vec::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::Delta { logprobs, .. } => {
                out.extend(logprobs.iter().map(|l| l.chosen.token_id))
            }
            EngineEvent::Failed(e) => panic!("generation failed: {e}"),
            _ => {}
        }
    }
    out
}

#[test]
fn speculation_changes_no_token() {
    let quote = "Copy this text exactly: the quick brown fox jumps over the lazy dog, \
                 the quick brown fox jumps over the lazy dog, the quick brown fox";
    for name in support::TINY_MODELS {
        let (on, off) = (engine(name, true), engine(name, false));
        for (temperature, seed) in [(0.0, 0), (1.0, 7), (0.7, 11)] {
            for text in [quote, "Tell me a story."] {
                let a = ids(&on, text, temperature, seed);
                let b = ids(&off, text, temperature, seed);
                assert!(!b.is_empty(), "{name}");
                assert_eq!(a, b, "{name} at temperature {temperature}: {text}");
            }
        }
    }
}
