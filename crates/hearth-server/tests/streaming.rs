//! streamGenerateContent: SSE framing, JSON-array framing, chunk rules,
//! mid-stream errors, and (over a real socket) disconnect cancellation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use hearth_engine::testing::{ByteEngine, ByteEngineOptions};
use hearth_engine::*;
use hearth_server::ServerConfig;
use serde_json::{json, Value};

const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
const UNARY: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

#[tokio::test]
async fn sse_chunks_follow_the_sdk_rules_and_match_the_unary_reply() {
    // Tokens paced as an engine's steps are: each goes out in its own chunk.
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = Duration::from_millis(3);
    let st = state_with(vec![Arc::new(opts.start())], ServerConfig::default());
    let body =
        json!({"contents": [user("Explain how AI works")], "generationConfig": {"temperature": 0}});
    let r = call(&st, "POST", STREAM, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "text/event-stream");
    let chunks = sse_events(&r.text);
    assert!(chunks.len() >= 2, "streams in several chunks: {}", r.text);
    let id = chunks[0]["responseId"].clone();
    let mut last_total = 0;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["responseId"], id, "one responseId for the whole stream");
        assert_eq!(c["modelVersion"], MODEL);
        let cand = &c["candidates"][0];
        assert_eq!(cand["content"]["role"], "model");
        let parts = cand["content"]["parts"].as_array().expect("parts");
        // Every chunk has parts (a chunk without makes both SDKs' chats drop
        // the turn); only the last may hold one empty text part, when the
        // end came in a step of its own.
        let last = i == chunks.len() - 1;
        assert!(
            !parts.is_empty()
                && parts.iter().all(|p| p["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty() || (last && parts.len() == 1))),
            "chunk {i} has non-empty parts"
        );
        let total = c["usageMetadata"]["totalTokenCount"]
            .as_i64()
            .expect("usage");
        assert!(total >= last_total, "usage is cumulative");
        last_total = total;
        assert_eq!(
            cand.get("finishReason").is_some(),
            i == chunks.len() - 1,
            "only the last chunk carries finishReason"
        );
    }
    let unary = call(&st, "POST", UNARY, Some(body)).await.json();
    assert_eq!(
        text_of(&chunks),
        unary["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .expect("text")
    );
    // The unary call, second, reuses the stream's prompt from the KV cache.
    let mut usage = unary["usageMetadata"].clone();
    let cached = usage
        .as_object_mut()
        .and_then(|u| u.remove("cachedContentTokenCount"));
    assert!(cached.is_some(), "the repeated prompt is cached: {usage}");
    if let Some(u) = usage.as_object_mut() {
        u.remove("cacheTokensDetails");
    }
    assert_eq!(
        chunks.last().expect("last")["usageMetadata"],
        usage,
        "final usage equals the unary usage"
    );
}

#[tokio::test]
async fn without_alt_sse_the_stream_is_one_json_array() {
    let st = state();
    let body =
        json!({"contents": [user("Explain how AI works")], "generationConfig": {"temperature": 0}});
    let r = call(
        &st,
        "POST",
        "/v1/models/gemini-2.5-flash:streamGenerateContent",
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let arr: Vec<Value> = serde_json::from_str(&r.text).expect("a JSON array");
    let sse = sse_events(&call(&st, "POST", STREAM, Some(body)).await.text);
    assert_eq!(text_of(&arr), text_of(&sse));
    let r = call(
        &st,
        "POST",
        "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=xml",
        Some(json!({"contents": [user("a")]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn streamed_thoughts_candidates_and_errors_before_streaming() {
    let st = state_with(vec![engine(true)], ServerConfig::default());
    let r = call(&st, "POST", STREAM, Some(json!({"contents": [user("why")], "generationConfig": {"thinkingConfig": {"includeThoughts": true}}}))).await;
    let chunks = sse_events(&r.text);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert!(
        !text_of(&chunks).is_empty(),
        "the answer follows the thoughts"
    );
    let r = call(&st, "POST", STREAM, Some(json!({"contents": [user("why")], "generationConfig": {"candidateCount": 2, "temperature": 1}}))).await;
    let chunks = sse_events(&r.text);
    let mut finished: Vec<i64> = chunks
        .iter()
        .filter(|c| c["candidates"][0].get("finishReason").is_some())
        .map(|c| c["candidates"][0]["index"].as_i64().expect("index"))
        .collect();
    // Candidates end in the order they finish.
    finished.sort_unstable();
    assert_eq!(
        finished,
        vec![0, 1],
        "each candidate ends with its own finishReason"
    );
    // Validation errors come before the stream: a plain JSON error.
    let r = call(
        &st,
        "POST",
        STREAM,
        Some(json!({"contents": [user("a")], "generationConfig": {"temperature": 9}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
}

/// An engine that fails after one piece of text: the failure must reach the
/// client as one last SSE event, after the text already produced.
struct FailingEngine(ModelInfo);

impl Engine for FailingEngine {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn count_tokens(&self, _: &Prompt) -> Result<hearth_engine::PromptTokens, EngineError> {
        Ok(hearth_engine::PromptTokens {
            total: 1,
            ..Default::default()
        })
    }
    fn generate(&self, _: GenerateRequest) -> Result<EventStream, EngineError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let events = [
            EngineEvent::Started {
                prompt_tokens: 1,
                cached_tokens: 0,
                image_tokens: 0,
                document_tokens: 0,
                audio_tokens: 0,
                video_tokens: 0,
            },
            EngineEvent::Delta {
                candidate: 0,
                kind: TextKind::Answer,
                text: "partial".into(),
                tokens: 1,
                logprobs: vec![],
            },
            EngineEvent::Failed(EngineError::Internal("the backend broke".into())),
        ];
        for e in events {
            tx.send(e).expect("open");
        }
        Ok(rx)
    }
}

#[tokio::test]
async fn a_failure_after_streaming_began_is_one_final_error_event() {
    let info = ByteEngineOptions::named("broken").start().info().clone();
    let st = state_with(vec![Arc::new(FailingEngine(info))], ServerConfig::default());
    let r = call(&st, "POST", STREAM, Some(json!({"contents": [user("a")]}))).await;
    assert_eq!(r.status, StatusCode::OK);
    let events = sse_events(&r.text);
    assert_eq!(events.len(), 2, "{}", r.text);
    assert_eq!(text_of(&events[..1]), "partial");
    let last = r
        .text
        .trim_end()
        .rsplit("\r\n\r\n")
        .next()
        .expect("last event");
    assert!(
        last.starts_with("data: {\"error\":{"),
        "error must be the first key: {last}"
    );
    assert_eq!(events[1]["error"]["code"], 500);
    assert_eq!(events[1]["error"]["status"], "INTERNAL");
    assert_eq!(events[1]["error"]["message"], "the backend broke");
    // The unary call maps the same failure to a 500.
    let r = call(&st, "POST", UNARY, Some(json!({"contents": [user("a")]}))).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

async fn serve(engine: Arc<ByteEngine>) -> std::net::SocketAddr {
    serve_state(state_with(vec![engine], ServerConfig::default())).await
}

#[tokio::test]
async fn real_socket_sse_streams_incrementally() {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = Duration::from_millis(30);
    opts.endless = true;
    let addr = serve(Arc::new(opts.start())).await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}{STREAM}"))
        .header("x-goog-api-key", "anything")
        .json(&json!({"contents": [user("count")], "generationConfig": {"maxOutputTokens": 8}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut reads = 0;
    let mut body = Vec::new();
    use futures_util::StreamExt;
    while let Some(piece) = stream.next().await {
        body.extend_from_slice(&piece.expect("chunk"));
        reads += 1;
    }
    let events = sse_events(&String::from_utf8(body).expect("utf8"));
    assert_eq!(events.len(), 8, "one event per token");
    assert!(
        reads >= 4,
        "events arrive as they are produced, not at the end ({reads} reads)"
    );
    assert_eq!(events[7]["candidates"][0]["finishReason"], "MAX_TOKENS");
}

/// A token goes out when it is produced, not when the next one is: the
/// engine here produces one token a second, so a first chunk held until the
/// second token would arrive after 2 s instead of 1 s.
#[tokio::test]
async fn the_first_token_is_sent_before_the_second_is_made() {
    let delay = Duration::from_millis(1000);
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = delay;
    opts.endless = true;
    let addr = serve(Arc::new(opts.start())).await;
    let sent = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{STREAM}"))
        .json(&json!({"contents": [user("count")], "generationConfig": {"maxOutputTokens": 2}}))
        .send()
        .await
        .expect("send");
    use futures_util::StreamExt;
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("a first piece").expect("bytes");
    let after = sent.elapsed();
    let text = String::from_utf8(first.to_vec()).expect("utf8");
    assert!(text.starts_with("data: "), "{text}");
    assert!(
        after < delay * 8 / 5,
        "the first chunk came {after:?} after the request; the first token was made after {delay:?}, the second after {:?}",
        delay * 2
    );
    while stream.next().await.is_some() {}
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_generation() {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = Duration::from_millis(20);
    opts.endless = true;
    let engine = Arc::new(opts.start());
    let addr = serve(engine.clone()).await;
    for url in [STREAM, UNARY] {
        let before = engine.decoded();
        let client = reqwest::Client::new();
        let req = client
            .post(format!("http://{addr}{url}"))
            .json(&json!({"contents": [user("go on forever")], "generationConfig": {"maxOutputTokens": 1000}}))
            .timeout(Duration::from_millis(300))
            .send();
        // The stream's client leaves after its first chunk; the unary
        // one at its 300 ms timeout.
        if let Ok(resp) = req.await {
            use futures_util::StreamExt;
            let _ = resp.bytes_stream().next().await;
        }
        drop(client);
        // The generation ran while the client waited, and stops once it
        // left: nothing is decoded any more.
        let mut waited = 0;
        while engine.stats().running > 0 && waited < 100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        assert_eq!(
            engine.stats().running,
            0,
            "{url}: the generation still runs after the client left"
        );
        let decoded = engine.decoded();
        assert!(decoded > before, "{url}: the generation never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(engine.decoded(), decoded, "{url}: tokens are still decoded");
    }
}
