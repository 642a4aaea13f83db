//! Prefill and greedy-decode speed of one sequence through hearth's engine
//! (scheduler, sampler, detokenizer on llama.cpp), to set beside llama-bench
//! on the same file:
//!   cargo run --release -p hearth-llama --example speed -- MODEL.gguf [THREADS] [PROMPT_WORDS] [GEN_TOKENS] [RUNS]
//! Run 0 is a warm-up; later runs share only the chat template's header
//! with earlier ones, so each prefills the same number of new tokens.

use std::time::Instant;

use hearth_engine::{Engine, EngineEvent, GenerateRequest, Prompt, SamplingParams};
use hearth_llama::{load_engine, LoadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: speed MODEL.gguf [THREADS] [PROMPT_WORDS] [GEN_TOKENS] [RUNS]")?;
    let threads: i32 = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let prompt_words: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let gen: u32 = args.get(4).map_or(Ok(32), |s| s.parse())?;
    let runs: usize = args.get(5).map_or(Ok(5), |s| s.parse())?;
    let mut opts = LoadOptions::new(path);
    opts.context.sequences = 1;
    opts.context.ctx_per_sequence = 1024;
    opts.context.threads = threads;
    let engine = load_engine(&opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Words chosen so that the prompt is about `prompt_words` tokens.
    let text = "the quick brown fox jumps over the lazy dog ".repeat(prompt_words.div_ceil(9));
    let request = GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        max_output_tokens: Some(gen),
        ..GenerateRequest::new(Prompt::user(text.clone()))
    };
    for run in 0..runs.max(2) {
        // A different prompt each run: the KV of the last one must not be reused.
        let mut request = request.clone();
        request.prompt = Prompt::user(format!("Run {run}: {text}"));
        let start = Instant::now();
        let mut rx = engine.generate(request)?;
        let (mut prompt, mut cached, mut first, mut tokens) = (0u32, 0u32, None, 0u32);
        rt.block_on(async {
            while let Some(ev) = rx.recv().await {
                match ev {
                    EngineEvent::Started {
                        prompt_tokens,
                        cached_tokens,
                        ..
                    } => (prompt, cached) = (prompt_tokens, cached_tokens),
                    EngineEvent::Delta { .. } if first.is_none() => first = Some(start.elapsed()),
                    EngineEvent::Finished { usage, .. } => tokens = usage.output_tokens,
                    _ => {}
                }
            }
        });
        let total = start.elapsed();
        let ttft = first.unwrap_or(total);
        let decode = (total - ttft).as_secs_f64();
        println!(
            "run {run}: prompt {prompt} tokens ({cached} reused), ttft {:.1} ms ({:.1} t/s prefill+1), decode {} tokens at {:.2} t/s",
            ttft.as_secs_f64() * 1e3,
            f64::from(prompt - cached) / ttft.as_secs_f64(),
            tokens.saturating_sub(1),
            f64::from(tokens.saturating_sub(1)) / decode.max(1e-9)
        );
    }
    Ok(())
}
