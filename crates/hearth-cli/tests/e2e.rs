//! The server over the real engine: a tiny Qwen 3 GGUF through llama.cpp.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use hearth_llama::{load_engine, ContextOptions, LoadOptions};
use hearth_server::{app, AppState, ModelRegistry, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The tiny Qwen 3 (gemini-* names) and Llama 3 behind one server.
/// A tiny test model on `sequences` KV sequences of `ctx` cells.
fn tiny(name: &str, sequences: u32, ctx: u32) -> Arc<dyn hearth_engine::Engine> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/models/{name}.gguf"));
    let mut opts = LoadOptions::new(path);
    opts.context = ContextOptions {
        sequences,
        ctx_per_sequence: ctx,
        batch: 128,
        threads: 2,
        kv_f32: false,
        kv_unified: true,
    };
    // Qwen 3 thinks: keep thoughts short so answers fit the small budgets.
    opts.max_thinking_tokens = Some(3);
    Arc::new(load_engine(&opts).expect("load a tiny model"))
}

fn new_state() -> AppState {
    let load = |name: &str| tiny(name, 4, 512);
    // gemini-* names go to the first model; llama3-f32 does not think.
    AppState::new(
        ModelRegistry::new(vec![load("qwen3-f32"), load("llama3-f32")]),
        ServerConfig::default(),
    )
}

/// Shared by the tests that do not depend on what the KV cache holds.
fn state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(new_state).clone()
}

/// The chat test's own server: concurrent tests would take the idle
/// sequence that holds its history (least recently used first).
fn chat_state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(new_state).clone()
}

async fn post(uri: &str, body: Value) -> (u16, String) {
    post_to(state(), uri, body).await
}

async fn post_to(state: AppState, uri: &str, body: Value) -> (u16, String) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("req");
    let resp = app(state).oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn text(v: &Value, c: usize) -> String {
    v["candidates"][c]["content"]["parts"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default()
}

const GEN: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

#[tokio::test]
async fn unary_stream_candidates_and_counts_agree() {
    let body = json!({"contents": [user("Bonjour ! Quelle est la capitale de la France ?")], "generationConfig": {"temperature": 0, "maxOutputTokens": 10}});
    let (status, unary) = post(GEN, body.clone()).await;
    assert_eq!(status, 200, "{unary}");
    let unary: Value = serde_json::from_str(&unary).expect("json");
    assert_eq!(unary["modelVersion"], "qwen3-f32");
    let n = unary["usageMetadata"]["candidatesTokenCount"]
        .as_i64()
        .expect("count");
    assert!((1..=10).contains(&n));
    let (_, sse) = post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        body.clone(),
    )
    .await;
    let streamed: String = sse
        .split("\r\n\r\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|j| text(&serde_json::from_str(j).expect("event"), 0))
        .collect();
    assert_eq!(
        streamed,
        text(&unary, 0),
        "a streamed reply equals the unary reply at temperature 0"
    );

    let mut two = body.clone();
    two["generationConfig"]["candidateCount"] = json!(2);
    let (_, both) = post(GEN, two).await;
    let both: Value = serde_json::from_str(&both).expect("json");
    assert_eq!(text(&both, 0), text(&unary, 0));
    assert_eq!(
        text(&both, 1),
        text(&unary, 0),
        "forked greedy candidates agree"
    );

    let (_, counted) = post(
        "/v1beta/models/gemini-2.5-flash:countTokens",
        json!({"contents": body["contents"]}),
    )
    .await;
    let counted: Value = serde_json::from_str(&counted).expect("json");
    assert_eq!(
        counted["totalTokens"],
        unary["usageMetadata"]["promptTokenCount"]
    );
    let (_, with_system) = post(
        "/v1beta/models/gemini-2.5-flash:countTokens",
        json!({"generateContentRequest": {"contents": body["contents"], "systemInstruction": {"parts": [{"text": "You are a cat."}]}}}),
    )
    .await;
    let with_system: Value = serde_json::from_str(&with_system).expect("json");
    assert!(
        with_system["totalTokens"].as_i64() > counted["totalTokens"].as_i64(),
        "the system instruction is in the prompt"
    );
}

#[tokio::test]
async fn concurrent_requests_match_solo_runs_and_seeds_reproduce() {
    let prompts = ["one", "deux trois", "Grüße 東京", "the quick brown fox"];
    let body = |p: &str| json!({"contents": [user(p)], "generationConfig": {"temperature": 0, "maxOutputTokens": 8}});
    let mut solo = Vec::new();
    for p in prompts {
        solo.push(post(GEN, body(p)).await.1);
    }
    let together = futures_join(prompts.iter().map(|p| body(p)).collect()).await;
    for (a, b) in solo.iter().zip(&together) {
        let (a, b): (Value, Value) = (
            serde_json::from_str(a).expect("a"),
            serde_json::from_str(b).expect("b"),
        );
        assert_eq!(
            text(&a, 0),
            text(&b, 0),
            "batched decoding gives the solo greedy answer"
        );
    }
    let seeded = json!({"contents": [user("story")], "generationConfig": {"temperature": 1.0, "seed": 7, "maxOutputTokens": 8}});
    let (_, a) = post(GEN, seeded.clone()).await;
    let (_, b) = post(GEN, seeded).await;
    let (a, b): (Value, Value) = (
        serde_json::from_str(&a).expect("a"),
        serde_json::from_str(&b).expect("b"),
    );
    assert_eq!(text(&a, 0), text(&b, 0));
}

async fn futures_join(bodies: Vec<Value>) -> Vec<String> {
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|b| tokio::spawn(async move { post(GEN, b).await.1 }))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn the_next_chat_turn_reuses_the_history_kv() {
    let first = json!({"contents": [user("Tell me about Paris.")], "generationConfig": {"temperature": 0, "maxOutputTokens": 6}});
    let (_, a) = post_to(chat_state(), GEN, first).await;
    let a: Value = serde_json::from_str(&a).expect("json");
    let reply = a["candidates"][0]["content"].clone();
    let second = json!({"contents": [user("Tell me about Paris."), reply, user("And Lyon?")], "generationConfig": {"temperature": 0, "maxOutputTokens": 6}});
    let (status, b) = post_to(chat_state(), GEN, second).await;
    assert_eq!(status, 200, "{b}");
    let b: Value = serde_json::from_str(&b).expect("json");
    let cached = b["usageMetadata"]["cachedContentTokenCount"]
        .as_i64()
        .unwrap_or(0);
    let prompt = b["usageMetadata"]["promptTokenCount"]
        .as_i64()
        .expect("prompt");
    assert!(
        cached > 0 && cached < prompt,
        "turn 2 reuses part of its prompt: {cached} of {prompt}"
    );
    // Qwen 3 thinks first; its template drops the thought from the history,
    // so the next turn reuses the whole previous prompt (its KV is intact up
    // to the thought) and prefills the reply again. Thinking off would add an
    // empty thought to the generation prompt only, and cut the reuse earlier.
    let turn1 = a["usageMetadata"]["promptTokenCount"].as_i64().expect("p1");
    assert!(
        a["usageMetadata"]["thoughtsTokenCount"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "{a}"
    );
    assert!(
        cached >= turn1 - 1,
        "reused {cached}, turn 1 prompt {turn1}"
    );
    // A model that does not think gets its reply back with the ids that
    // generated it (even though Llama 3's template trims it), so the history
    // is reused through the reply: all but its last sampled token, never decoded.
    const LLAMA: &str = "/v1beta/models/llama3-f32:generateContent";
    let first = json!({"contents": [user("Tell me about Paris.")], "generationConfig": {"temperature": 0, "maxOutputTokens": 6}});
    let (_, a) = post_to(chat_state(), LLAMA, first).await;
    let a: Value = serde_json::from_str(&a).expect("json");
    let reply = a["candidates"][0]["content"].clone();
    let second = json!({"contents": [user("Tell me about Paris."), reply, user("Lyon?")], "generationConfig": {"temperature": 0, "maxOutputTokens": 6}});
    let (status, b) = post_to(chat_state(), LLAMA, second).await;
    assert_eq!(status, 200, "{b}");
    let b: Value = serde_json::from_str(&b).expect("json");
    let cached = b["usageMetadata"]["cachedContentTokenCount"]
        .as_i64()
        .unwrap_or(0);
    let turn1 = a["usageMetadata"]["promptTokenCount"].as_i64().expect("p1");
    let reply = a["usageMetadata"]["candidatesTokenCount"]
        .as_i64()
        .expect("c1");
    assert!(
        cached >= turn1 + reply - 1,
        "reused {cached}, turn 1 prompt {turn1} + reply {reply}: {a}"
    );
}

/// Gemini CLI's router writes its `responseJsonSchema` with Gemini's type
/// names (`"type": "OBJECT"`); the legacy Python SDK sends an empty
/// `responseSchema` for "none". Both are enforced as meant, on the real engine.
#[tokio::test]
async fn json_schemas_with_gemini_type_names_and_empty_schemas_are_enforced() {
    let schema = json!({"type": "OBJECT", "properties": {
        "reasoning": {"type": "STRING", "maxLength": 12},
        "complexity": {"type": "INTEGER", "minimum": 1, "maximum": 100}},
        "required": ["reasoning", "complexity"]});
    let (status, body) = post(
        GEN,
        json!({"contents": [user("Rate this task.")], "generationConfig": {
            "responseMimeType": "application/json", "responseJsonSchema": schema,
            "temperature": 0, "maxOutputTokens": 60, "thinkingConfig": {"thinkingBudget": 0}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let answer: Value = serde_json::from_str(&text(&v, 0)).expect("the answer is JSON");
    assert!(answer["reasoning"].is_string(), "{answer}");
    assert!(
        answer["complexity"]
            .as_i64()
            .is_some_and(|n| (1..=100).contains(&n)),
        "{answer}"
    );

    let (status, body) = post(
        GEN,
        json!({"contents": [user("JSON please")], "generationConfig": {
            "responseMimeType": "application/json", "responseSchema": {},
            "temperature": 0, "maxOutputTokens": 40, "thinkingConfig": {"thinkingBudget": 0}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    if v["candidates"][0]["finishReason"] == "STOP" {
        serde_json::from_str::<Value>(&text(&v, 0)).expect("any JSON");
    }
}

/// With API keys configured, a cached prefix is reused only by the key that
/// sent it: another key's identical prompt is computed afresh (nothing in
/// cachedContentTokenCount or time to first token tells it what was sent).
#[tokio::test]
async fn cached_prefixes_are_not_shared_between_api_keys() {
    let engine = tiny("llama3-f32", 2, 256);
    let config = ServerConfig {
        api_keys: vec!["tenant-a".into(), "tenant-b".into()],
        ..ServerConfig::default()
    };
    let state = AppState::new(ModelRegistry::new(vec![engine]), config);
    let ask = |key: &'static str| {
        let state = state.clone();
        async move {
            let body = json!({"contents": [user("A long shared question about the weather in Paris today")],
                "generationConfig": {"temperature": 0, "maxOutputTokens": 4}});
            let req = Request::post(GEN)
                .header("content-type", "application/json")
                .header("x-goog-api-key", key)
                .body(Body::from(body.to_string()))
                .expect("req");
            let resp = app(state).oneshot(req).await.expect("infallible");
            assert_eq!(resp.status().as_u16(), 200);
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            let v: Value = serde_json::from_slice(&bytes).expect("json");
            v["usageMetadata"]["cachedContentTokenCount"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    assert_eq!(ask("tenant-a").await, 0, "a cold cache");
    assert_eq!(
        ask("tenant-b").await,
        0,
        "tenant b reused tenant a's prefix"
    );
    assert!(ask("tenant-a").await > 0, "tenant a reuses its own prefix");
    assert!(ask("tenant-b").await > 0, "tenant b reuses its own prefix");
}
