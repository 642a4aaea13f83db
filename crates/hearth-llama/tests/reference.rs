//! hearth on llama.cpp against Hugging Face transformers: tiny random-weight
//! checkpoints of each family, converted to GGUF (testdata/models, made by
//! make_models.py), must tokenize identically, give the same last-position
//! logits within a tolerance, and the same greedy continuation.

use std::path::{Path, PathBuf};

use hearth_engine::runner::{BatchToken, Runner, Tokenizer};
use hearth_llama::{load_model, model_meta, ContextOptions, LlamaRunner, LlamaTokenizer};
use serde_json::Value;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models")
}

const FAMILIES: [&str; 4] = ["llama3", "qwen3", "gemma3", "gemma4"];

/// Largest |logit - reference| allowed at the last prompt position (logits
/// of these random models are of magnitude ~5). F32 runs with an F32 KV cache
/// and without flash attention (both F16 on CPU). Measured on this machine:
/// F32 1e-5 (Llama 3, Qwen 3), 0.001 / 0.005 (Gemma 3 / 4: llama.cpp's F16
/// GELU table); F16 0.006-0.025; Q8_0 0.11-0.35 (testdata/models/README.md).
fn tolerance(kind: &str) -> f32 {
    match kind {
        "f32" => 0.01,
        "f16" => 0.05,
        _ => 0.5,
    }
}

struct Measured {
    max_diff: f32,
    greedy_equal: usize,
}

fn run_file(family: &str, kind: &str, reference: &Value) -> Measured {
    let path = models_dir().join(format!("{family}-{kind}.gguf"));
    let (model, header) = load_model(&path, 0).unwrap_or_else(|e| panic!("{e}"));
    let tok = LlamaTokenizer::new(model, model_meta(model, &header, &path));
    let opts = ContextOptions {
        sequences: 1,
        ctx_per_sequence: 256,
        batch: 64,
        threads: 2,
        kv_f32: kind == "f32",
        kv_unified: true,
    };
    let mut runner =
        LlamaRunner::new(model, hearth_llama::backend().expect("backend"), opts).expect("context");
    let mut max_diff = 0f32;
    let mut greedy_equal = 0;
    for p in reference["reference"]["prompts"]
        .as_array()
        .expect("prompts")
    {
        let text = p["text"].as_str().expect("text");
        let add = p["add_special_tokens"].as_bool().unwrap_or(true) && tok.meta().add_bos;
        let ids = tok.encode(text, add).expect("encode");
        let want: Vec<i32> = serde_json::from_value(p["prompt_ids"].clone()).expect("ids");
        assert_eq!(
            ids, want,
            "{family}-{kind} tokenizes {:?} like the HF tokenizer",
            p["name"]
        );
        runner.seq_remove(0, 0, None);
        let batch: Vec<BatchToken> = ids
            .iter()
            .enumerate()
            .map(|(i, &t)| BatchToken {
                token: t,
                pos: i as u32,
                seq: 0,
                logits: i + 1 == ids.len(),
            })
            .collect();
        runner.decode(&batch).expect("prefill");
        let got = runner.logits(batch.len() - 1).to_vec();
        let want_logits: Vec<f32> =
            serde_json::from_value(p["last_logits"].clone()).expect("logits");
        assert_eq!(got.len(), want_logits.len(), "vocab size");
        let diff = got
            .iter()
            .zip(&want_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        max_diff = max_diff.max(diff);
        let want_greedy: Vec<i32> =
            serde_json::from_value(p["greedy_ids"].clone()).expect("greedy");
        let mut logits = got;
        let mut greedy = Vec::new();
        for (pos, _) in (ids.len() as u32..).zip(0..want_greedy.len()) {
            let t = hearth_engine::sampler::argmax(&logits);
            greedy.push(t);
            runner
                .decode(&[BatchToken {
                    token: t,
                    pos,
                    seq: 0,
                    logits: true,
                }])
                .expect("step");
            logits = runner.logits(0).to_vec();
        }
        let steps = p["greedy_steps"].as_array().expect("steps");
        match greedy.iter().zip(&want_greedy).position(|(a, b)| a != b) {
            None => greedy_equal += 1,
            Some(k) => {
                // A divergence is only acceptable where the reference's own
                // top-2 margin is within the logit error we measured.
                let margin = steps[k]["margin"].as_f64().unwrap_or(0.0) as f32;
                eprintln!(
                    "{family}-{kind} {}: greedy diverges at step {k} (reference margin {margin})",
                    p["name"]
                );
                assert!(
                    kind == "q8_0" || margin <= 2.0 * diff.max(tolerance(kind) / 2.0),
                    "{family}-{kind} {:?}: greedy {greedy:?} != reference {want_greedy:?} at step {k}, where the reference margin {margin} exceeds the logit error",
                    p["name"]
                );
            }
        }
    }
    Measured {
        max_diff,
        greedy_equal,
    }
}

#[test]
fn every_family_matches_transformers() {
    let mut report = Vec::new();
    for family in FAMILIES {
        let path = models_dir().join(format!("{family}.reference.json"));
        let reference: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("reference"))
                .expect("json");
        let prompts = reference["reference"]["prompts"]
            .as_array()
            .map_or(0, Vec::len);
        for kind in ["f32", "f16", "q8_0"] {
            let m = run_file(family, kind, &reference);
            report.push(format!(
                "{family:7} {kind:5} max|dlogit| {:.5}  greedy identical {}/{prompts}",
                m.max_diff, m.greedy_equal
            ));
            assert!(
                m.max_diff <= tolerance(kind),
                "{family}-{kind}: max logit diff {} > {}",
                m.max_diff,
                tolerance(kind)
            );
        }
    }
    println!("{}", report.join("\n"));
}
