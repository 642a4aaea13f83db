//! Shared helpers: an app over the real engine on a byte-level test model, and oneshot calls.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hearth_engine::testing::{ByteEngine, ByteEngineOptions};
use hearth_engine::Engine;
use hearth_server::{app, AppState, ModelRegistry, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const MODEL: &str = "tiny-test";

/// The real engine over the byte-level test model.
pub fn engine(thinking: bool) -> Arc<ByteEngine> {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.thinking = thinking;
    Arc::new(opts.start())
}

pub fn state_with(engines: Vec<Arc<dyn Engine>>, config: ServerConfig) -> AppState {
    AppState::new(ModelRegistry::new(engines), config)
}

/// Serves `state` on a loopback port of its own; returns the address.
pub async fn serve_state(state: AppState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(state)).await;
    });
    addr
}

pub fn state() -> AppState {
    state_with(vec![engine(false)], ServerConfig::default())
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// The error message of a Google error body.
    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

pub async fn call(state: &AppState, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call_raw(state, method, uri, body.map(|b| b.to_string()), &[]).await
}

pub async fn call_raw(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .expect("request");
    let resp = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn user(text: &str) -> Value {
    serde_json::json!({"role": "user", "parts": [{"text": text}]})
}

/// Splits an SSE body into its JSON events, checking the framing exactly.
pub fn sse_events(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with("\r\n\r\n"),
        "SSE body must end with a blank line: {body:?}"
    );
    body.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let json = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without 'data: ': {e:?}"));
            assert!(
                !json.contains('\n') && !json.contains('\r'),
                "multi-line event: {e:?}"
            );
            serde_json::from_str(json)
                .unwrap_or_else(|err| panic!("bad event JSON ({err}): {json}"))
        })
        .collect()
}

/// The concatenated non-thought text of candidate 0 across chunks.
pub fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|p| p["thought"] != Value::Bool(true))
        .filter_map(|p| p["text"].as_str().map(String::from))
        .collect()
}

/// ../shared/spec/captures (the SDK requests recorded beside the checkout),
/// or None, said in one line, when ../shared is not there (a lone clone).
pub fn shared_captures(skipped: &str) -> Option<std::path::PathBuf> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/captures");
    if root.is_dir() {
        return Some(root);
    }
    println!(
        "skipped: {skipped}: {} is not beside this checkout",
        root.display()
    );
    None
}
