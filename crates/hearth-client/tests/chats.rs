//! `client.chats()`: against hearth, and against a scripted server for the
//! history rules that hearth never triggers (invalid replies).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::post;
use common::{client, serve_router, MODEL};
use futures_util::StreamExt;
use hearth_client::{Client, Config};
use hearth_wire::{Content, Part};

fn texts(history: &[Content]) -> Vec<(String, String)> {
    history
        .iter()
        .map(|c| {
            let text: String = c.parts.iter().filter_map(|p| p.text.clone()).collect();
            (c.role.clone().unwrap_or_default(), text)
        })
        .collect()
}

fn seed_history() -> Vec<Content> {
    vec![
        Content::user([Part::text("Hello")]),
        Content::model([Part::text(
            "Great to meet you. What would you like to know?",
        )]),
    ]
}

#[tokio::test]
async fn a_chat_keeps_every_turn() {
    let client = client().await;
    let mut chat = client
        .chats()
        .create(MODEL, Config::new().max_output_tokens(8), seed_history());
    let r1 = chat
        .send_message("I have 2 dogs in my house.")
        .await
        .expect("turn 1");
    let r2 = chat
        .send_message("How many paws are in my house?")
        .await
        .expect("turn 2");
    let history = texts(&chat.history(true));
    let roles: Vec<&str> = history.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user", "model"]);
    assert_eq!(history[2].1, "I have 2 dogs in my house.");
    assert_eq!(Some(history[3].1.clone()), r1.text());
    assert_eq!(Some(history[5].1.clone()), r2.text());
    assert_eq!(chat.history(false), chat.history(true));
}

#[tokio::test]
async fn a_streamed_chat_adds_one_entry_per_chunk() {
    let client = client().await;
    let mut chat =
        client
            .chats()
            .create(MODEL, Config::new().max_output_tokens(16), seed_history());
    let mut chunks = Vec::new();
    {
        let mut stream = chat
            .send_message_stream("I have 2 dogs in my house.")
            .await
            .expect("stream");
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk.expect("chunk").text().unwrap_or_default());
        }
    }
    assert!(chunks.len() > 1);
    let history = texts(&chat.history(true));
    assert_eq!(history.len(), 3 + chunks.len());
    let replies: Vec<String> = history[3..].iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(replies, chunks);
    assert!(history[3..].iter().all(|(r, _)| r == "model"));
    // The next message sends all of it back; hearth accepts consecutive
    // model turns.
    chat.send_message("How many paws are in my house?")
        .await
        .expect("turn after a stream");
    assert_eq!(chat.history(true).len(), 3 + chunks.len() + 2);
}

const GOOD: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"fine"}]},"finishReason":"STOP","index":0}]}"#;
const NO_CONTENT: &str = r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#;

/// A server that answers each generateContent with the next scripted body
/// and each stream with the next scripted SSE text; it records requests.
async fn scripted(
    unary: Vec<&'static str>,
    streams: Vec<&'static str>,
) -> (Client, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (u, s) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen2 = seen.clone();
    let handler = move |axum::extract::Path(call): axum::extract::Path<String>,
                        body: axum::body::Bytes| {
        let seen = seen2.clone();
        let (u, s, unary, streams) = (u.clone(), s.clone(), unary.clone(), streams.clone());
        async move {
            let json: serde_json::Value = serde_json::from_slice(&body).expect("json body");
            seen.lock().expect("lock").push(json);
            if call.ends_with(":streamGenerateContent") {
                let i = s.fetch_add(1, Ordering::SeqCst);
                ([("content-type", "text/event-stream")], streams[i]).into_response()
            } else {
                let i = u.fetch_add(1, Ordering::SeqCst);
                ([("content-type", "application/json")], unary[i]).into_response()
            }
        }
    };
    let router = axum::Router::new().route("/v1/models/{call}", post(handler));
    let base = serve_router(router).await;
    let client = Client::builder().base_url(base).build().expect("client");
    (client, seen)
}

#[tokio::test]
async fn invalid_replies_leave_the_curated_history() {
    let (client, seen) = scripted(
        vec![NO_CONTENT, GOOD],
        vec![
            // no finishReason anywhere
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"a\"}]}}]}\r\n\r\n",
            // a good stream of two chunks
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"b\"}]}}]}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"c\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n",
        ],
    )
    .await;
    let mut chat = client.chats().create("m", None, Vec::new());
    chat.send_message("blocked?")
        .await
        .expect("200 without content");
    {
        let mut s = chat
            .send_message_stream("unfinished?")
            .await
            .expect("stream");
        while s.next().await.is_some() {}
    }
    {
        let mut s = chat.send_message_stream("streamed").await.expect("stream");
        while s.next().await.is_some() {}
    }
    chat.send_message("last").await.expect("good");
    assert_eq!(
        texts(&chat.history(true)),
        [
            ("user", "streamed"),
            ("model", "b"),
            ("model", "c"),
            ("user", "last"),
            ("model", "fine")
        ]
        .map(|(r, t)| (r.to_string(), t.to_string()))
    );
    let full = texts(&chat.history(false));
    assert_eq!(full[0], ("user".into(), "blocked?".into()));
    assert_eq!(
        full[1],
        ("model".into(), String::new()),
        "empty model turn kept"
    );
    assert_eq!(full[3], ("model".into(), "a".into()));
    // What went on the wire: the invalid exchanges were never sent again.
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests[3]["contents"].as_array().map(Vec::len), Some(4));
    assert_eq!(requests[1]["contents"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_failed_stream_records_nothing_and_surfaces_the_error() {
    let (client, _) = scripted(
        vec![],
        vec!["data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"part\"}]}}]}\r\n\r\ndata: {\"error\":{\"code\":500,\"message\":\"engine failed\",\"status\":\"INTERNAL\"}}\r\n\r\n"],
    )
    .await;
    let mut chat = client.chats().create("m", None, Vec::new());
    let mut results = Vec::new();
    {
        let mut s = chat.send_message_stream("hi").await.expect("stream");
        while let Some(item) = s.next().await {
            results.push(item);
        }
    }
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    let err = results[1].as_ref().expect_err("error event");
    assert_eq!(err.code(), Some(500));
    assert!(err.to_string().contains("engine failed"));
    assert!(chat.history(false).is_empty());
}
