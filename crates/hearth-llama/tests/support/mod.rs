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
