//! Helpers for the store tests: a store in a temporary directory on a
//! manual clock, and test data.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hearth_store::{Appended, Clock, FileRecord, NewUpload, Store, StoreConfig};
use sha2::{Digest, Sha256};

pub const T0: i64 = 1_780_000_000_000_000;
pub const MIB: usize = 1024 * 1024;
pub const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<AtomicI64>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            clock: Arc::new(AtomicI64::new(T0)),
        }
    }
    pub fn config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.dir.path().join("files"));
        c.clock = Clock::Manual(self.clock.clone());
        c
    }
    pub fn open(&self) -> Store {
        Store::open(self.config()).expect("open store")
    }
    pub fn advance(&self, d: Duration) {
        self.clock.fetch_add(
            i64::try_from(d.as_micros()).expect("small"),
            Ordering::SeqCst,
        );
    }
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("files")
    }
}

pub fn new_upload(mime: &str, size: usize) -> NewUpload {
    NewUpload {
        mime_type: Some(mime.into()),
        size_bytes: size as u64,
        ..NewUpload::default()
    }
}

pub fn upload(store: &Store, bytes: &[u8], mime: &str) -> FileRecord {
    let t = store
        .start_upload(new_upload(mime, bytes.len()))
        .expect("start");
    match store
        .append_bytes(&t.upload_id, 0, bytes, true)
        .expect("append")
    {
        Appended::Final(f) => f,
        other => panic!("expected a final answer, got {other:?}"),
    }
}

pub fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic, incompressible-looking bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
