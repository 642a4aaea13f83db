//! Replays every request the official SDKs sent (../shared/spec/captures)
//! against the server, and checks what hearth answers to each.

mod common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use common::*;
use hearth_server::ServerConfig;
use serde_json::Value;

fn captures(root: &Path) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    collect(root, &mut files);
    assert!(!files.is_empty(), "no captures under {}", root.display());
    let mut out = Vec::new();
    for f in files {
        let example = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&f).expect("read");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            out.push((example.clone(), serde_json::from_str(line).expect("json")));
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.to_string_lossy().ends_with(".requests.jsonl") {
            out.push(p);
        }
    }
}

/// What hearth must answer, with the real engine on the text-only byte
/// model that can think: (status, a fragment of the error message).
fn expected(example: &str, path: &str, body: &Value) -> (StatusCode, &'static str) {
    let first_text = body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    if path.contains("nonexistent-model") {
        return (StatusCode::NOT_FOUND, "is not found for API version");
    }
    if example.starts_with("e_upload") {
        return (StatusCode::FORBIDDEN, "may not exist");
    }
    if example.starts_with("j_inline_image") {
        return (StatusCode::BAD_REQUEST, "cannot read image/");
    }
    let _ = first_text;
    (StatusCode::OK, "")
}

#[tokio::test]
async fn every_captured_sdk_request_gets_the_right_answer() {
    let Some(root) = shared_captures("1 test replaying the SDKs' captured requests") else {
        return;
    };
    let st = state_with(
        vec![engine(true)],
        ServerConfig {
            api_keys: vec!["test-key".into()],
            ..ServerConfig::default()
        },
    );
    let mut replayed = 0;
    for (example, rec) in captures(&root) {
        let path = rec["path"].as_str().expect("path");
        let query = rec["query"].as_str().unwrap_or_default();
        if path.contains("/files") {
            continue; // the Files API is its own issue
        }
        let method = rec["method"].as_str().expect("method");
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let body = rec
            .get("body")
            .filter(|b| b.is_object())
            .map(|b| b.to_string());
        let key = rec["headers"]["x-goog-api-key"]
            .as_str()
            .unwrap_or("test-key")
            .to_string();
        let r = call_raw(&st, method, &uri, body, &[("x-goog-api-key", &key)]).await;
        let (status, needle) = expected(&example, path, &rec["body"]);
        assert_eq!(r.status, status, "{example}: {method} {uri}\n{}", r.text);
        if status != StatusCode::OK {
            assert!(r.message().contains(needle), "{example}: {}", r.message());
        } else if query.contains("alt=sse") {
            let chunks = sse_events(&r.text);
            assert!(
                chunks
                    .last()
                    .is_some_and(|c| c["candidates"][0]["finishReason"].is_string()),
                "{example}"
            );
        } else {
            let v = r.json();
            if example.starts_with("i_structured") && path.ends_with(":generateContent") {
                // The schema is enforced: the answer is JSON.
                let text = v["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap_or_default();
                if v["candidates"][0]["finishReason"] == "STOP" {
                    serde_json::from_str::<Value>(text)
                        .unwrap_or_else(|e| panic!("{example}: not JSON ({e}): {text}"));
                }
            }
        }
        replayed += 1;
    }
    assert!(replayed >= 80, "only {replayed} requests replayed");
}
