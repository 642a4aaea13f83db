//! Operability: `/metrics` under vLLM's names, request ids in headers and
//! error bodies.

mod common;

use common::*;
use hearth_server::{AppState, ModelRegistry, ServerConfig};
use serde_json::{json, Value};

async fn serve(config: ServerConfig) -> String {
    let state = AppState::new(ModelRegistry::new(vec![engine(false)]), config);
    let addr = serve_state(state).await;
    format!("http://{addr}")
}

/// The value of the series `name{model_name="tiny-test"}` (or, with a
/// histogram, of its `_count` or `_sum`).
fn series(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{model_name=\"{MODEL}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn metrics_count_what_the_requests_reported() {
    let base = serve(ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let mut prompt = 0.0;
    let mut generated = 0.0;
    let body = json!({"contents": [user("Explain how AI works")], "generationConfig": {"maxOutputTokens": 12}});
    let unary: Value = client
        .post(format!("{base}/v1beta/models/{MODEL}:generateContent"))
        .json(&body)
        .send()
        .await
        .expect("unary")
        .json()
        .await
        .expect("json");
    prompt += unary["usageMetadata"]["promptTokenCount"]
        .as_f64()
        .expect("prompt");
    generated += unary["usageMetadata"]["candidatesTokenCount"]
        .as_f64()
        .expect("candidates");
    let sse = client
        .post(format!(
            "{base}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        ))
        .json(&body)
        .send()
        .await
        .expect("stream")
        .text()
        .await
        .expect("text");
    let last = sse_events(&sse).pop().expect("a chunk");
    prompt += last["usageMetadata"]["promptTokenCount"]
        .as_f64()
        .expect("prompt");
    generated += last["usageMetadata"]["candidatesTokenCount"]
        .as_f64()
        .expect("candidates");

    let resp = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("application/openmetrics-text"));
    let text = resp.text().await.expect("text");
    assert_eq!(series(&text, "vllm:prompt_tokens_total"), prompt);
    assert_eq!(series(&text, "vllm:prefix_cache_queries_total"), prompt);
    assert_eq!(series(&text, "vllm:generation_tokens_total"), generated);
    assert_eq!(series(&text, "vllm:time_to_first_token_seconds_count"), 2.0);
    assert_eq!(series(&text, "vllm:e2e_request_latency_seconds_count"), 2.0);
    assert_eq!(
        series(&text, "vllm:inter_token_latency_seconds_count"),
        generated - 2.0,
        "one gap per token after the first, per request"
    );
    // Nothing runs or waits now; the idle sequences keep the two prompts'
    // cells (and their answers) for reuse.
    for gauge in ["vllm:num_requests_running", "vllm:num_requests_waiting"] {
        assert_eq!(series(&text, gauge), 0.0, "{gauge}");
    }
    let usage = series(&text, "vllm:kv_cache_usage_perc");
    assert!(
        usage > 0.0 && usage <= 1.0,
        "vllm:kv_cache_usage_perc {usage}: the kept prompts hold cells"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn metrics_need_the_key_when_keys_are_set() {
    let base = serve(ServerConfig {
        api_keys: vec!["s3cret".into()],
        ..ServerConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let anonymous = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 403);
    let keyed = client
        .get(format!("{base}/metrics"))
        .header("x-goog-api-key", "s3cret")
        .send()
        .await
        .expect("get");
    assert_eq!(keyed.status(), 200);
}

#[tokio::test]
async fn every_response_has_a_request_id_and_errors_carry_it() {
    let base = serve(ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let bad = client
        .post(format!("{base}/v1beta/models/{MODEL}:generateContent"))
        .json(&json!({"contents": []}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let id = bad.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert!(!id.is_empty());
    let body: Value = bad.json().await.expect("json");
    assert_eq!(
        body["error"]["details"],
        json!([{"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": id}])
    );
    // A client's own plain id is kept; anything else is replaced.
    for (sent, kept) in [
        ("trace-42.a_b", true),
        ("has space", false),
        ("x".repeat(65).as_str(), false),
    ] {
        let r = client
            .get(format!("{base}/v1beta/models"))
            .header("x-request-id", sent)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200);
        let got = r.headers()["x-request-id"]
            .to_str()
            .expect("id")
            .to_string();
        assert_eq!(got == sent, kept, "{sent:?} -> {got:?}");
    }
    let other = client
        .get(format!("{base}/v1beta/models"))
        .send()
        .await
        .expect("get");
    assert_ne!(other.headers()["x-request-id"].to_str().expect("id"), id);
}

/// An error that ends a stream after its head went out (here its deadline)
/// names the request too, though the body is written outside the handler.
#[tokio::test]
async fn a_mid_stream_error_carries_the_request_id() {
    let mut opts = hearth_engine::testing::ByteEngineOptions::named(MODEL);
    opts.token_delay = std::time::Duration::from_millis(20);
    opts.endless = true;
    let state = AppState::new(
        ModelRegistry::new(vec![std::sync::Arc::new(opts.start())]),
        ServerConfig::default(),
    );
    let base = format!("http://{}", serve_state(state).await);
    let r = reqwest::Client::new()
        .post(format!(
            "{base}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        ))
        .header("x-request-id", "stream-7")
        .header("x-server-timeout", "0.5")
        .json(&json!({"contents": [user("go on")]}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.headers()["x-request-id"], "stream-7");
    let events = sse_events(&r.text().await.expect("body"));
    let last = events.last().expect("an event");
    assert_eq!(last["error"]["status"], "DEADLINE_EXCEEDED", "{last}");
    assert_eq!(
        last["error"]["details"],
        json!([{"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "stream-7"}])
    );
}
