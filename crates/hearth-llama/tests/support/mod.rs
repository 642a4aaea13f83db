//! Helpers shared by the tests that load the tiny models of testdata/models.
#![allow(dead_code)]

use std::path::Path;

use hearth_llama::{load_engine, ContextOptions, LoadOptions};

/// The tiny random-weight models of testdata/models, one per chat family.
pub const TINY_MODELS: [&str; 5] = [
    "qwen3-f32",
    "llama3-f32",
    "gemma3-f32",
    "gemma4-f32",
    "llama2-f32",
];

/// Loads `testdata/models/{name}.gguf` with `sequences` sequences of 1024
/// cells, after `configure` has set the options a test is about.
pub fn tiny_engine(
    name: &str,
    sequences: u32,
    configure: impl FnOnce(&mut LoadOptions),
) -> hearth_engine::llm::LlmEngine {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/models/{name}.gguf"));
    let mut opts = LoadOptions::new(path);
    opts.context = ContextOptions {
        sequences,
        ctx_per_sequence: 1024,
        batch: 256,
        threads: 2,
        kv_f32: false,
        kv_unified: true,
    };
    configure(&mut opts);
    load_engine(&opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The repository's testdata folder.
pub fn testdata() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The largest difference between two logit rows of one vocabulary.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocab size");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).expect("numbers")
}

/// `testdata/models/{name}.gguf` with its projector `{name}-mmproj-f32`
/// (the model's name less `-f32`), on one sequence of 128 F32 KV cells:
/// what the transformers comparisons run on.
pub fn projector_runner(
    name: &str,
) -> (
    std::sync::Arc<hearth_llama::media::Projector>,
    hearth_llama::LlamaRunner,
) {
    let models = testdata().join("models");
    let (model, _) =
        hearth_llama::load_model(&models.join(format!("{name}.gguf")), 0).expect("model");
    let stem = name.strip_suffix("-f32").unwrap_or(name);
    let projector = hearth_llama::media::Projector::load(
        &models.join(format!("{stem}-mmproj-f32.gguf")),
        model,
        2,
    )
    .expect("projector");
    let opts = ContextOptions {
        sequences: 1,
        ctx_per_sequence: 128,
        batch: 64,
        threads: 2,
        kv_f32: true,
        kv_unified: true,
    };
    let runner =
        hearth_llama::LlamaRunner::new(model, hearth_llama::backend().expect("backend"), opts)
            .expect("context")
            .with_projector(projector.clone());
    (projector, runner)
}
