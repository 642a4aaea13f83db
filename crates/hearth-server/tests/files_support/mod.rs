//! Helpers for the Files API tests: an app with a store in a temporary
//! directory, raw-byte requests that keep the response headers, and
//! uploads as the SDKs drive them.
#![allow(dead_code)]

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use hearth_server::{app, AppState, ModelRegistry, ServerConfig};
use hearth_store::{Clock, Store, StoreConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::common::engine;

pub const HOST: &str = "127.0.0.1:8765";
pub const KEY: &str = "test-key";
pub const T0: i64 = 1_795_525_140_000_000;
pub const CHUNK: usize = 8 * 1024 * 1024;

pub struct Files {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub clock: Arc<AtomicI64>,
    pub config: StoreConfig,
}

impl Files {
    /// A server with a store; `keys`: the API keys (none: open);
    /// `tweak`: changes to the store's settings.
    pub fn with(keys: &[&str], tweak: impl FnOnce(&mut StoreConfig)) -> Files {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(AtomicI64::new(T0));
        let mut config = StoreConfig::new(dir.path().join("files"));
        config.clock = Clock::Manual(clock.clone());
        tweak(&mut config);
        let store = Arc::new(Store::open(config.clone()).expect("store"));
        let server = ServerConfig {
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            ..ServerConfig::default()
        };
        let state =
            AppState::new(ModelRegistry::new(vec![engine(false)]), server).with_files(store);
        Files {
            dir,
            state,
            clock,
            config,
        }
    }

    /// The server after a restart on the same directory.
    pub fn restart(&mut self) {
        let store = Arc::new(Store::open(self.config.clone()).expect("reopen"));
        self.state = AppState::new(
            ModelRegistry::new(vec![engine(false)]),
            (*self.state.config).clone(),
        )
        .with_files(store);
    }

    pub fn open() -> Files {
        Files::with(&[], |_| {})
    }

    pub fn store(&self) -> &Store {
        self.state.files.as_deref().expect("store")
    }

    pub fn advance_secs(&self, s: i64) {
        self.clock
            .fetch_add(s * 1_000_000, std::sync::atomic::Ordering::SeqCst);
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    /// Asserts an error status and that the message contains `needle`.
    pub fn expect_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert!(
            self.message().contains(needle),
            "message {:?} lacks {needle:?}",
            self.message()
        );
    }
}

/// One request through the app. `Host` is set as a client sets it.
pub async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app(state.clone())
        .oneshot(req.body(body.into()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// The path and query of an absolute upload URL.
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..]).to_string()
}

/// A resumable start with the JS SDK's headers; returns the upload path.
pub async fn start(state: &AppState, size: usize, mime: &str, meta: Value) -> String {
    let len = size.to_string();
    let r = send(
        state,
        "POST",
        "/upload/v1beta/files",
        &[
            ("content-type", "application/json"),
            ("x-goog-upload-protocol", "resumable"),
            ("x-goog-upload-command", "start"),
            ("x-goog-upload-header-content-length", &len),
            ("x-goog-upload-header-content-type", mime),
            ("x-goog-api-key", KEY),
        ],
        serde_json::json!({ "file": meta }).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-goog-upload-status"), "active");
    assert!(r.body.is_empty(), "the start answer has no body");
    path_of(r.header("x-goog-upload-url"))
}

/// One chunk with the JS SDK's headers.
pub async fn chunk(state: &AppState, path: &str, offset: usize, bytes: &[u8], last: bool) -> Resp {
    let offset = offset.to_string();
    let len = bytes.len().to_string();
    let command = if last { "upload, finalize" } else { "upload" };
    send(
        state,
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("content-length", &len),
            ("x-goog-upload-command", command),
            ("x-goog-upload-offset", &offset),
            ("x-goog-api-key", KEY),
        ],
        bytes.to_vec(),
    )
    .await
}

/// Uploads `bytes` as the SDKs do (8 MiB chunks); returns the File.
pub async fn upload(state: &AppState, bytes: &[u8], mime: &str, meta: Value) -> Value {
    let path = start(state, bytes.len(), mime, meta).await;
    let mut offset = 0;
    loop {
        let end = (offset + CHUNK).min(bytes.len());
        let last = end == bytes.len();
        let r = chunk(state, &path, offset, &bytes[offset..end], last).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        if last {
            assert_eq!(r.header("x-goog-upload-status"), "final");
            return r.json()["file"].clone();
        }
        assert_eq!(r.header("x-goog-upload-status"), "active");
        offset = end;
    }
}

/// A PNG of `len` bytes (signature and header, then padding).
pub fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    v.resize(len, 0);
    v
}

pub fn sha256_hash_field(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// The id of a File resource (`files/<id>` -> `<id>`).
pub fn id_of(file: &Value) -> String {
    file["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("files/"))
        .expect("files/<id>")
        .to_string()
}
