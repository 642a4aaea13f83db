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

const FAMILIES: [&str; 5] = ["llama3", "qwen3", "gemma3", "gemma4", "llama2"];

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

/// Tokens `ids[from..]` at their positions in sequence `seq`, logits for the last.
fn prompt_batch(ids: &[i32], from: usize, seq: u32) -> Vec<BatchToken> {
    (from..ids.len())
        .map(|i| BatchToken {
            token: ids[i],
            pos: i as u32,
            seq,
            logits: i + 1 == ids.len(),
        })
        .collect()
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
        let batch = prompt_batch(&ids, 0, 0);
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
            if reference["gguf_files"].get(kind).is_none() {
                continue; // llama2 ships no F16 file
            }
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

/// The largest |a - b| over two logit rows of one vocabulary.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// A runner of 4 sequences on `family`'s F32 model (F32 KV, no flash
/// attention), and the family's transformers reference.
fn four_sequences(family: &str, kv_unified: bool) -> (LlamaRunner, Value) {
    let path = models_dir().join(format!("{family}.reference.json"));
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reference")).expect("json");
    let path = models_dir().join(format!("{family}-f32.gguf"));
    let (model, _) = load_model(&path, 0).unwrap_or_else(|e| panic!("{e}"));
    let opts = ContextOptions {
        sequences: 4,
        ctx_per_sequence: 256,
        batch: 256,
        threads: 2,
        kv_f32: true,
        kv_unified,
    };
    let runner =
        LlamaRunner::new(model, hearth_llama::backend().expect("backend"), opts).expect("context");
    (runner, reference)
}

/// Prompts sharing KV cells: a prefix decoded once for two sequences (one
/// batch token in both), then each sequence's own part in the same batch;
/// and a prefix given to a third sequence by `seq_copy`. Each sequence's
/// last logits must still be transformers' for its whole prompt. Models
/// with sliding-window layers (Gemma) do not share.
#[test]
fn shared_prefixes_give_the_reference_logits() {
    for family in FAMILIES {
        let (mut runner, reference) = four_sequences(family, true);
        let sliding = family.starts_with("gemma");
        assert_eq!(runner.shares_prefixes(), !sliding, "{family}");
        if sliding {
            continue;
        }
        let prompts = reference["reference"]["prompts"]
            .as_array()
            .expect("prompts");
        // Two prompts with a common prefix: the longest prompt, and the same
        // cut short (its reference: the first of the other prompts is not
        // a prefix of it, so compare against a solo decode on seq 3).
        let p = prompts
            .iter()
            .max_by_key(|p| p["prompt_ids"].as_array().map_or(0, Vec::len))
            .expect("a prompt");
        let ids: Vec<i32> = serde_json::from_value(p["prompt_ids"].clone()).expect("ids");
        let want: Vec<f32> = serde_json::from_value(p["last_logits"].clone()).expect("logits");
        assert!(ids.len() >= 6, "{family}: prompt too short");
        let k = ids.len() / 2;
        let short = &ids[..ids.len() - 1];
        for seq in 0..4 {
            runner.seq_remove(seq, 0, None);
        }
        // seq 0: the whole prompt; seq 1: the prompt minus its last token.
        // Positions [0, k) are one batch token each, in both sequences.
        let mut batch = prompt_batch(&ids, 0, 0);
        let also: Vec<(usize, u32)> = (0..k).map(|i| (i, 1)).collect();
        let last0 = batch.len() - 1;
        batch.extend(prompt_batch(short, k, 1));
        let last1 = batch.len() - 1;
        runner.decode_shared(&batch, &also).expect("shared decode");
        let got0 = runner.logits(last0).to_vec();
        let got1 = runner.logits(last1).to_vec();
        // seq 2: the prefix [0, k) by copy, then the rest.
        runner.seq_copy(0, 2, 0, Some(k as u32)).expect("kv copy");
        let rest = prompt_batch(&ids, k, 2);
        runner.decode(&rest).expect("after a copy");
        let got2 = runner.logits(rest.len() - 1).to_vec();
        // seq 3: the short prompt alone.
        let solo = prompt_batch(short, 0, 3);
        runner.decode(&solo).expect("solo");
        let alone1 = runner.logits(solo.len() - 1).to_vec();
        let (d0, d1, d2) = (
            max_diff(&got0, &want),
            max_diff(&got1, &alone1),
            max_diff(&got2, &want),
        );
        println!("{family}: shared prefix {k} of {}: |d| vs transformers {d0:.6} (shared batch), {d2:.6} (copied); vs solo {d1:.6}", ids.len());
        assert!(
            d0 <= tolerance("f32") && d2 <= tolerance("f32"),
            "{family}: {d0} {d2}"
        );
        assert!(d1 <= tolerance("f32"), "{family}: {d1}");
        // A different prompt must give different logits (the test can fail).
        assert!(
            max_diff(&got1, &got0) > 0.01,
            "{family}: prompts not distinguished"
        );
    }
}

/// One KV stream per sequence (`--kv-per-sequence`): the runner decodes
/// each prompt of a step in a call of its own and the single tokens of
/// decoding streams together, sorted by sequence; every row must still be
/// the logits of its own sequence: transformers' for whole prompts, a solo
/// decode's for a decoded token.
#[test]
fn one_stream_per_sequence_gives_the_reference_logits() {
    for family in FAMILIES {
        let (mut runner, reference) = four_sequences(family, false);
        assert!(runner.prefers_consecutive_sequences(), "{family}");
        let prompts: Vec<(Vec<i32>, Vec<f32>)> = reference["reference"]["prompts"]
            .as_array()
            .expect("prompts")
            .iter()
            .map(|p| {
                (
                    serde_json::from_value(p["prompt_ids"].clone()).expect("ids"),
                    serde_json::from_value(p["last_logits"].clone()).expect("logits"),
                )
            })
            .filter(|(ids, _): &(Vec<i32>, Vec<f32>)| ids.len() >= 2)
            .collect();
        assert!(prompts.len() >= 2, "{family}: two prompts");
        let ((p, want_p), (q, want_q)) = (&prompts[0], &prompts[1]);
        // Step 1: two prompts, the higher sequence first in the batch.
        let mut batch = prompt_batch(q, 0, 3);
        let last_q = batch.len() - 1;
        batch.extend(prompt_batch(p, 0, 1));
        let last_p = batch.len() - 1;
        runner.decode(&batch).expect("two prompts");
        let d_q = max_diff(runner.logits(last_q), want_q);
        let d_p = max_diff(runner.logits(last_p), want_p);
        // Step 2: seq 3 and seq 1 decode one token each around a new
        // prompt on seq 0 (decoded in an earlier call: its row is kept).
        let t = 7;
        let mut batch = vec![BatchToken {
            token: t,
            pos: q.len() as u32,
            seq: 3,
            logits: true,
        }];
        batch.extend(prompt_batch(p, 0, 0));
        let last_new = batch.len() - 1;
        batch.push(BatchToken {
            token: t,
            pos: p.len() as u32,
            seq: 1,
            logits: true,
        });
        runner.decode(&batch).expect("mixed step");
        let step_q = runner.logits(0).to_vec();
        let d_new = max_diff(runner.logits(last_new), want_p);
        let step_p = runner.logits(last_new + 1).to_vec();
        // Solo on seq 2: p then t.
        let mut solo = p.clone();
        solo.push(t);
        let solo_batch = prompt_batch(&solo, 0, 2);
        runner.decode(&solo_batch).expect("solo");
        let d_step = max_diff(&step_p, runner.logits(solo_batch.len() - 1));
        println!("{family}: one stream per sequence: |d| vs transformers {d_p:.6} {d_q:.6} {d_new:.6}; decoded vs solo {d_step:.6}");
        for d in [d_p, d_q, d_new, d_step] {
            assert!(
                d <= tolerance("f32"),
                "{family}: {d_p} {d_q} {d_new} {d_step}"
            );
        }
        assert!(
            max_diff(&step_q, &step_p) > 0.01,
            "{family}: sequences not distinguished"
        );
    }
}
