//! Request preparation (parsing, decoding, rendering, tokenizing) runs in a
//! bounded pool of blocking threads: huge requests cannot stall the async
//! workers that stream other replies.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use hearth_engine::testing::ByteEngineOptions;
use hearth_server::{AppState, ModelRegistry, ServerConfig};
use serde_json::json;

const STREAM: &str = "/v1beta/models/tiny-test:streamGenerateContent?alt=sse";
const COUNT: &str = "/v1beta/models/tiny-test:countTokens";

/// A stream's chunks keep coming, a token every 40 ms, while four 60 MB
/// countTokens bodies are parsed and counted on a server with two async
/// workers. Were they parsed there, both workers would be busy for seconds
/// and the stream would stop for as long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_do_not_hold_up_a_running_stream() {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = Duration::from_millis(40);
    opts.endless = true;
    let state = AppState::new(
        ModelRegistry::new(vec![Arc::new(opts.start())]),
        ServerConfig {
            prep_workers: 2,
            ..ServerConfig::default()
        },
    );
    let addr = serve_state(state).await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}{STREAM}"))
        .json(&json!({"contents": [user("count")], "generationConfig": {"maxOutputTokens": 75}}))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    // The stream is running: its first chunk is in.
    stream.next().await.expect("first").expect("bytes");

    // 60 MB of words in one text part, four times at once.
    let words = "lorem ipsum dolor sit amet ".repeat(60 * 1024 * 1024 / 27);
    let body = json!({"contents": [user(&words)]}).to_string();
    drop(words);
    let body = bytes::Bytes::from(body);
    let mut counts = Vec::new();
    for _ in 0..4 {
        let (client, body) = (client.clone(), body.clone());
        counts.push(tokio::spawn(async move {
            let r = client
                .post(format!("http://{addr}{COUNT}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("countTokens");
            let status = r.status();
            let text = r.text().await.expect("body");
            (status, text)
        }));
    }
    let mut gaps = Vec::new();
    let mut last = Instant::now();
    let started = last;
    while let Some(piece) = stream.next().await {
        piece.expect("bytes");
        gaps.push(last.elapsed());
        last = Instant::now();
    }
    let streamed = started.elapsed();
    for c in counts {
        let (status, text) = c.await.expect("task");
        assert_eq!(status, 200, "{}", &text[..text.len().min(300)]);
        assert!(text.contains("totalTokens"), "{text}");
    }
    let worst = gaps.iter().max().copied().unwrap_or_default();
    eprintln!("worst gap between chunks {worst:?} over {streamed:?}");
    assert!(
        worst < Duration::from_millis(750),
        "the stream stalled {worst:?} while the bodies were prepared (it ran {streamed:?}, {} chunks)",
        gaps.len()
    );
}

/// A large body sent to a model that does not exist, or with a query
/// parameter that is refused, gets its 404 / 400: the server reads the body
/// before answering, so the client is not cut off mid-send (a broken pipe
/// instead of the answer).
#[tokio::test]
async fn a_large_body_gets_its_error_not_a_cut_connection() {
    let state = AppState::new(
        ModelRegistry::new(vec![engine(false)]),
        ServerConfig::default(),
    );
    let addr = serve_state(state).await;
    let words = "lorem ipsum ".repeat(2 * 1024 * 1024);
    let body = json!({"contents": [user(&words)]}).to_string();
    for (path, status) in [
        ("/v1beta/models/no-such-model:generateContent", "404"),
        ("/v1beta/models/tiny-test:generateContent?foo=1", "400"),
        ("/v1beta/models/tiny-test:generateContent/extra", "404"),
    ] {
        // As Python's urllib does: the whole body first, then the answer.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        conn.write_all(body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{path}: the server cut the body off: {e}"));
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.expect("answer");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {}",
            &answer[..answer.len().min(200)]
        );
    }
}
