//! Bad model files give clear errors naming the file, never a panic or an
//! abort of the process.

use std::path::{Path, PathBuf};

use hearth_llama::{load_engine, read_header, LoadOptions};

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/models")
        .join(name)
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn load_err(path: &Path) -> String {
    match load_engine(&LoadOptions::new(path)) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn header_of_a_real_model() {
    let h = read_header(&model("qwen3-f32.gguf")).expect("header");
    assert_eq!(h.architecture(), Some("qwen3"));
    assert!(h.tensor_count > 0);
    assert!(h
        .str("tokenizer.chat_template")
        .is_some_and(|t| t.contains("im_start")));
    assert!(h.int("qwen3.context_length").is_some());
}

#[test]
fn missing_file() {
    let p = model("no-such-model.gguf");
    let e = load_err(&p);
    assert!(
        e.contains("no-such-model.gguf") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn not_a_gguf_file() {
    let p = scratch(
        "text.gguf",
        b"this is not a model, just text that is long enough",
    );
    let e = load_err(&p);
    assert!(
        e.contains("text.gguf") && e.contains("not a GGUF file"),
        "{e}"
    );
    let p = scratch("empty.gguf", b"");
    assert!(load_err(&p).contains("too short"));
}

#[test]
fn truncated_files_at_every_region() {
    let bytes = std::fs::read(model("llama3-q8_0.gguf")).expect("model");
    for cut in [6, 30, 200, 5000, bytes.len() / 2, bytes.len() - 100] {
        let p = scratch(&format!("cut{cut}.gguf"), &bytes[..cut]);
        let e = load_err(&p);
        assert!(
            e.contains(&format!("cut{cut}.gguf")) && e.contains("truncated"),
            "cut at {cut}: {e}"
        );
    }
}

#[test]
fn corrupt_header_fields() {
    let bytes = std::fs::read(model("llama3-q8_0.gguf")).expect("model");
    let mut v = bytes.clone();
    v[4..8].copy_from_slice(&99u32.to_le_bytes());
    assert!(load_err(&scratch("ver.gguf", &v)).contains("unsupported GGUF version 99"));
    let mut v = bytes.clone();
    v[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(load_err(&scratch("kv.gguf", &v)).contains("corrupt"));
    let mut v = bytes;
    // The first key's length: make it absurd.
    v[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(load_err(&scratch("key.gguf", &v)).contains("corrupt metadata"));
}
