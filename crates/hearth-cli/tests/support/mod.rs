//! Helpers shared by the tests that run the real `hearth` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The tiny random Qwen 3 test model.
pub fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/qwen3-f32.gguf")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
