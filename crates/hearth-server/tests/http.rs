//! Every endpoint and every error mapping through `app(state).oneshot(..)`.

mod common;

use axum::http::StatusCode;
use common::*;
use hearth_engine::testing::ByteEngineOptions;
use hearth_server::ServerConfig;
use serde_json::{json, Value};

const GEN: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

/// A server on one test engine with these options.
fn state_of(opts: ByteEngineOptions) -> hearth_server::AppState {
    state_with(
        vec![std::sync::Arc::new(opts.start())],
        ServerConfig::default(),
    )
}

async fn generate(body: Value) -> Reply {
    call(&state(), "POST", GEN, Some(body)).await
}

async fn expect_400(body: Value, needle: &str) {
    let r = generate(body.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "body {body} gave {}",
        r.text
    );
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(r.json()["error"]["code"], 400);
    assert!(
        r.message().contains(needle),
        "message {:?} lacks {needle:?}",
        r.message()
    );
    assert!(r.content_type.starts_with("application/json"));
}

#[tokio::test]
async fn generate_content_answers_truthfully() {
    let r = generate(json!({"contents": [user("How does AI work?")]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    let cand = &v["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert!(!cand["content"]["parts"][0]["text"]
        .as_str()
        .expect("text")
        .is_empty());
    assert_eq!(cand["index"], 0);
    assert!(matches!(
        cand["finishReason"].as_str(),
        Some("STOP" | "MAX_TOKENS")
    ));
    assert_eq!(
        v["modelVersion"], MODEL,
        "modelVersion names the real local model"
    );
    assert!(v["responseId"].as_str().is_some_and(|s| s.len() >= 16));
    let u = &v["usageMetadata"];
    let total = u["promptTokenCount"].as_i64().expect("prompt")
        + u["candidatesTokenCount"].as_i64().expect("cands");
    assert_eq!(u["totalTokenCount"].as_i64(), Some(total));
    assert_eq!(u["promptTokensDetails"][0]["modality"], "TEXT");
}

#[tokio::test]
async fn both_api_versions_and_snake_case_bodies_work() {
    let st = state();
    let body = json!({"contents": [user("hi")], "generation_config": {"thinking_config": {"thinking_budget": 0}, "max_output_tokens": 4}});
    for v in ["v1", "v1beta"] {
        let r = call(
            &st,
            "POST",
            &format!("/{v}/models/gemini-2.5-flash:generateContent"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{v}: {}", r.text);
        assert!(
            r.json()["usageMetadata"]["candidatesTokenCount"]
                .as_i64()
                .expect("count")
                <= 4
        );
    }
    let r = call(
        &st,
        "POST",
        "/v2/models/gemini-2.5-flash:generateContent",
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn models_list_get_aliases_and_not_found() {
    let st = state();
    let r = call(&st, "GET", "/v1beta/models", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let m = &r.json()["models"][0];
    assert_eq!(m["name"], format!("models/{MODEL}"));
    assert_eq!(
        m["supportedGenerationMethods"],
        json!(["generateContent", "streamGenerateContent", "countTokens"])
    );
    assert!(m["inputTokenLimit"].as_i64().is_some() && m["outputTokenLimit"].as_i64().is_some());
    assert_eq!(m["thinking"], false);
    for name in [MODEL, "gemini-2.5-flash", "gemini-3-pro-preview"] {
        let r = call(&st, "GET", &format!("/v1/models/{name}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.json()["name"], format!("models/{MODEL}"));
    }
    let r = call(&st, "GET", "/v1beta/models/nonexistent-model", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.message()
            .starts_with("models/nonexistent-model is not found for API version v1beta"),
        "{}",
        r.message()
    );
    let r = call(
        &st,
        "POST",
        "/v1beta/models/nonexistent-model:generateContent",
        Some(json!({"contents": [user("hi")]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("not supported for generateContent"));
    let r = call(
        &st,
        "POST",
        "/v1beta/models/gemini-2.5-flash:embedContent",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&st, "GET", "/v1beta/nothing-here", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], 404);
}

#[tokio::test]
async fn models_pagination() {
    let engines: Vec<std::sync::Arc<dyn hearth_engine::Engine>> = ["a", "b", "c"]
        .iter()
        .map(|id| std::sync::Arc::new(ByteEngineOptions::named(id).start()) as _)
        .collect();
    let st = state_with(engines, ServerConfig::default());
    let r = call(&st, "GET", "/v1beta/models?pageSize=2", None).await;
    let v = r.json();
    assert_eq!(v["models"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["nextPageToken"], "2");
    let r = call(&st, "GET", "/v1beta/models?pageSize=2&pageToken=2", None).await;
    let v = r.json();
    assert_eq!(v["models"][0]["name"], "models/c");
    assert!(v.get("nextPageToken").is_none());
    let r = call(&st, "GET", "/v1beta/models?pageToken=zzz", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&st, "GET", "/v1beta/models?bogus=1", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("Unknown name \"bogus\""));
}

#[tokio::test]
async fn unknown_fields_and_bad_json_are_400_naming_them() {
    expect_400(
        json!({"contents": [user("hi")], "generationConfig": {"temprature": 1}}),
        "Unknown name \"temprature\" at 'generation_config'",
    )
    .await;
    expect_400(
        json!({"contents": [user("hi")], "extra": 1}),
        "Unknown name \"extra\"",
    )
    .await;
    let r = call_raw(&state(), "POST", GEN, Some("{\"contents\": [".into()), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().starts_with("Invalid JSON payload received."));
}

#[tokio::test]
async fn every_validation_rule_names_its_field() {
    let c = || json!([user("hi")]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"contents": []}), "contents is not specified"),
        (json!({}), "contents is not specified"),
        (
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
            "Please use a valid role: user, model.",
        ),
        (
            json!({"contents": [{"role": "user", "parts": []}]}),
            "contents[0].parts",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{}]}]}),
            "contents[0].parts[0]",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {"mimeType": "text/plain", "data": "YQ=="}}]}]}),
            "found text, inlineData",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": ""}]}]}),
            "empty text parameter",
        ),
        (
            json!({"contents": [user("hi"), {"role": "model", "parts": [{"text": "x"}]}]}),
            "contents[1].role",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}]}),
            "cannot read image/png",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "!!notbase64!!"}}]}]}),
            "Base64 decoding failed",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "application/x-msdownload", "data": "AAAA"}}]}]}),
            "Unsupported MIME type",
        ),
        (
            // A server built without a document reader (AppState::with_documents).
            json!({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ="}}]}]}),
            "contents[0].parts[0].inline_data: this server reads no PDF documents",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "a", "mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}}]}]}),
            "media_resolution",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]}),
            "function_call",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"executableCode": {"code": "1"}}]}]}),
            "executable_code",
        ),
        (
            json!({"contents": c(), "systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}}),
            "system_instruction.parts[0]",
        ),
        (
            json!({"contents": c(), "generationConfig": {"temperature": 2.5}}),
            "generation_config.temperature",
        ),
        (
            json!({"contents": c(), "generationConfig": {"topP": 1.5}}),
            "generation_config.top_p",
        ),
        (
            json!({"contents": c(), "generationConfig": {"topK": 0}}),
            "generation_config.top_k",
        ),
        (
            json!({"contents": c(), "generationConfig": {"candidateCount": 9}}),
            "generation_config.candidate_count",
        ),
        (
            json!({"contents": c(), "generationConfig": {"candidateCount": 0}}),
            "generation_config.candidate_count",
        ),
        (
            json!({"contents": c(), "generationConfig": {"maxOutputTokens": 100000}}),
            "maxOutputTokens value of 100000",
        ),
        (
            json!({"contents": c(), "generationConfig": {"maxOutputTokens": 0}}),
            "generation_config.max_output_tokens",
        ),
        (
            json!({"contents": c(), "generationConfig": {"stopSequences": ["a","b","c","d","e","f"]}}),
            "must not exceed 5",
        ),
        (
            json!({"contents": c(), "generationConfig": {"stopSequences": [""]}}),
            "generation_config.stop_sequences",
        ),
        (
            json!({"contents": c(), "generationConfig": {"presencePenalty": 3}}),
            "generation_config.presence_penalty",
        ),
        (
            json!({"contents": c(), "generationConfig": {"frequencyPenalty": -3}}),
            "generation_config.frequency_penalty",
        ),
        (
            json!({"contents": c(), "generationConfig": {"logprobs": 2}}),
            "only valid when responseLogprobs is true",
        ),
        (
            json!({"contents": c(), "generationConfig": {"responseLogprobs": true, "logprobs": 21}}),
            "generation_config.logprobs",
        ),
        (
            json!({"contents": c(), "generationConfig": {"responseMimeType": "text/csv"}}),
            "allowed mimetypes",
        ),
        (
            json!({"contents": c(), "generationConfig": {"responseSchema": {"type": "STRING"}}}),
            "needs responseMimeType",
        ),
        (
            json!({"contents": c(), "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "STRING"}, "responseJsonSchema": {}}}),
            "cannot both be set",
        ),
        (
            json!({"contents": c(), "generationConfig": {"responseModalities": ["IMAGE"]}}),
            "generation_config.response_modalities",
        ),
        (
            json!({"contents": c(), "generationConfig": {"speechConfig": {}}}),
            "generation_config.speech_config",
        ),
        (
            json!({"contents": c(), "generationConfig": {"imageConfig": {}}}),
            "generation_config.image_config",
        ),
        (
            json!({"contents": c(), "generationConfig": {"enableEnhancedCivicAnswers": true}}),
            "enable_enhanced_civic_answers",
        ),
        (
            json!({"contents": c(), "generationConfig": {"thinkingConfig": {"thinkingBudget": -2}}}),
            "thinking budget must be -1",
        ),
        (
            json!({"contents": c(), "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW", "thinkingBudget": 0}}}),
            "only one of thinking budget and thinking level",
        ),
        (
            json!({"contents": c(), "tools": [{"googleSearch": {}}]}),
            "tools[0].google_search",
        ),
        (
            json!({"contents": c(), "tools": [{"codeExecution": {}}]}),
            "tools[0].code_execution",
        ),
        (
            json!({"contents": c(), "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}),
            "no functionDeclarations",
        ),
        (
            json!({"contents": c(), "toolConfig": {"retrievalConfig": {}}}),
            "retrieval_config",
        ),
        (
            json!({"contents": c(), "model": "models/other"}),
            "the body names models/other",
        ),
        (
            json!({"contents": c(), "safetySettings": [{"category": "HARM_CATEGORY_NOPE", "threshold": "BLOCK_NONE"}]}),
            "HARM_CATEGORY_NOPE",
        ),
    ];
    for (body, needle) in cases {
        expect_400(body, needle).await;
    }
}

#[tokio::test]
async fn files_and_cached_contents_that_do_not_exist_are_403() {
    let r = generate(json!({"contents": [{"role": "user", "parts": [{"fileData": {"mimeType": "image/png", "fileUri": "http://127.0.0.1:1/v1beta/files/abc123"}}]}]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "PERMISSION_DENIED");
    assert!(r.message().contains("File abc123"));
    let r = generate(json!({"contents": [user("hi")], "cachedContent": "cachedContents/x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn accepted_inputs_reach_the_prompt() {
    // Safety settings are accepted (hearth does not filter); a text document
    // inline becomes prompt text; thought parts in history are dropped; the
    // function-response id "" from the JS helper is accepted.
    let st = state();
    let base = json!({"contents": [user("hello")]});
    let count = |body: Value| {
        let st = st.clone();
        async move {
            let r = call(
                &st,
                "POST",
                "/v1beta/models/gemini-2.5-flash:countTokens",
                Some(json!({"generateContentRequest": body})),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()["totalTokens"].as_i64().expect("total")
        }
    };
    let plain = count(base.clone()).await;
    let with_doc = count(json!({"contents": [{"role": "user", "parts": [{"text": "hello"}, {"inlineData": {"mimeType": "text/plain", "data": "b25lIHR3byB0aHJlZQ=="}}]}]})).await;
    assert!(
        with_doc >= plain + "one two three".len() as i64,
        "the document's 13 bytes are counted: {with_doc} against {plain}"
    );
    let r = generate(json!({"contents": [user("hi"), {"role": "model", "parts": [{"text": "secret plan", "thought": true}, {"text": "Hello!", "thoughtSignature": "c2lnLWZj"}]}, user("again")],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn count_tokens_counts_system_instruction_and_contents() {
    let st = state();
    let url = "/v1/models/gemini-2.5-flash:countTokens";
    let r = call(
        &st,
        "POST",
        url,
        Some(json!({"contents": [user("The quick brown fox")]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let plain = r.json()["totalTokens"].as_i64().expect("total");
    assert!(plain >= 4);
    assert_eq!(
        r.json()["promptTokensDetails"][0]["tokenCount"].as_i64(),
        Some(plain)
    );
    let r = call(&st, "POST", url, Some(json!({"generateContentRequest": {"contents": [user("The quick brown fox")], "systemInstruction": {"parts": [{"text": "You are a cat."}]}}}))).await;
    assert!(
        r.json()["totalTokens"].as_i64().expect("total") > plain,
        "the system instruction counts"
    );
    let gen = generate(json!({"contents": [user("The quick brown fox")]})).await;
    assert_eq!(
        gen.json()["usageMetadata"]["promptTokenCount"].as_i64(),
        Some(plain),
        "countTokens agrees with usage"
    );
    let r = call(&st, "POST", url, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sampling_is_deterministic_and_honours_limits() {
    let text = |v: &Value| {
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let greedy =
        json!({"contents": [user("Explain how AI works")], "generationConfig": {"temperature": 0}});
    let a = generate(greedy.clone()).await.json();
    let b = generate(greedy).await.json();
    assert_eq!(text(&a), text(&b), "temperature 0 is greedy");
    let seeded = |seed: i64| json!({"contents": [user("Explain how AI works")], "generationConfig": {"temperature": 1.5, "seed": seed, "topK": 40}});
    let s1 = text(&generate(seeded(42)).await.json());
    assert_eq!(
        s1,
        text(&generate(seeded(42)).await.json()),
        "same seed, same output"
    );
    let others: Vec<String> =
        futures_util_join(vec![seeded(1), seeded(2), seeded(3), seeded(4)]).await;
    assert!(
        others.iter().any(|o| *o != s1),
        "different seeds give different samples"
    );

    let r = generate(json!({"contents": [user("Explain how AI works")], "generationConfig": {"maxOutputTokens": 2, "temperature": 0}})).await.json();
    assert_eq!(r["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(r["usageMetadata"]["candidatesTokenCount"], 2);
}

async fn futures_util_join(bodies: Vec<Value>) -> Vec<String> {
    let mut out = Vec::new();
    for b in bodies {
        let v = generate(b).await.json();
        out.push(
            v["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    out
}

#[tokio::test]
async fn stop_sequences_cut_the_answer_and_are_excluded() {
    let body = |stops: Value| json!({"contents": [user("tell me a story")], "generationConfig": {"temperature": 0, "maxOutputTokens": 12, "stopSequences": stops}});
    let full = generate(body(json!([]))).await.json();
    let text = full["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(text.len() >= 6, "need a few letters: {text}");
    let stop = text[3..5].to_string();
    let cut = generate(body(json!([stop]))).await.json();
    let got = cut["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        got,
        &text[..text.find(&stop).expect("stop in text")],
        "text ends right before the stop sequence"
    );
    assert_eq!(cut["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn candidate_count_and_logprobs() {
    let r = generate(json!({"contents": [user("Write a one-line poem.")], "generationConfig": {"candidateCount": 3, "seed": 5}})).await.json();
    let cands = r["candidates"].as_array().expect("candidates");
    assert_eq!(cands.len(), 3);
    for (i, c) in cands.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["content"]["role"], "model");
    }
    let r = generate(json!({"contents": [user("hi")], "generationConfig": {"responseLogprobs": true, "logprobs": 3, "maxOutputTokens": 5}})).await.json();
    let c = &r["candidates"][0];
    let n = r["usageMetadata"]["candidatesTokenCount"]
        .as_u64()
        .expect("n") as usize;
    let chosen = c["logprobsResult"]["chosenCandidates"]
        .as_array()
        .expect("chosen");
    assert_eq!(chosen.len(), n, "one chosen token per output token");
    assert!(chosen
        .iter()
        .all(|t| t["logProbability"].as_f64().is_some_and(|l| l <= 0.0) && t["token"].is_string()));
    let top = c["logprobsResult"]["topCandidates"]
        .as_array()
        .expect("top");
    assert!(top
        .iter()
        .all(|t| t["candidates"].as_array().map(Vec::len) == Some(3)));
    assert!(c["avgLogprobs"].as_f64().is_some());
}

#[tokio::test]
async fn thinking_models_return_thoughts_only_when_asked() {
    let st = state_with(vec![engine(true)], ServerConfig::default());
    let ask = |cfg: Value| {
        call(
            &st,
            "POST",
            GEN,
            Some(json!({"contents": [user("why?")], "generationConfig": cfg})),
        )
    };
    let v = ask(json!({"thinkingConfig": {"includeThoughts": true}}))
        .await
        .json();
    let parts = v["candidates"][0]["content"]["parts"]
        .as_array()
        .expect("parts")
        .clone();
    assert_eq!(parts[0]["thought"], true, "{v}");
    assert!(parts[1].get("thought").is_none());
    assert!(v["usageMetadata"]["thoughtsTokenCount"]
        .as_i64()
        .is_some_and(|n| n > 0));
    let v = ask(json!({})).await.json();
    assert!(v["candidates"][0]["content"]["parts"]
        .as_array()
        .expect("p")
        .iter()
        .all(|p| p.get("thought").is_none()));
    assert!(
        v["usageMetadata"]["thoughtsTokenCount"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "thoughts are counted even when not returned"
    );
    let v = ask(json!({"thinkingConfig": {"thinkingBudget": 0}}))
        .await
        .json();
    assert!(
        v["usageMetadata"].get("thoughtsTokenCount").is_none(),
        "budget 0: no thinking"
    );
    let v = ask(json!({"thinkingConfig": {"thinkingBudget": 2, "includeThoughts": true}}))
        .await
        .json();
    assert_eq!(
        v["usageMetadata"]["thoughtsTokenCount"], 2,
        "the budget caps thought tokens"
    );
    let r = call(&st, "GET", "/v1beta/models/gemini-2.5-flash", None).await;
    assert_eq!(r.json()["thinking"], true);
}

/// Each model carries its own default sampling: GET models reports it, and a
/// request that sets none samples with it.
#[tokio::test]
async fn a_models_own_sampling_defaults_are_reported_and_used() {
    let mut opts = ByteEngineOptions::named("cool");
    opts.sampling = hearth_engine::SamplingDefaults {
        temperature: 0.0,
        top_p: 0.5,
        top_k: 3,
    };
    let cool: std::sync::Arc<dyn hearth_engine::Engine> = std::sync::Arc::new(opts.start());
    let st = state_with(vec![cool.clone()], ServerConfig::default());
    let m = call(&st, "GET", "/v1beta/models/cool", None).await.json();
    assert_eq!(m["temperature"], 0.0, "{m}");
    assert_eq!(m["topP"], 0.5, "{m}");
    assert_eq!(m["topK"], 3, "{m}");
    // Temperature 0 by default: unseeded requests all give the greedy answer,
    // where Gemini's defaults (the other model) sample a different one.
    let warm: std::sync::Arc<dyn hearth_engine::Engine> = engine(false);
    let st = state_with(vec![cool, warm], ServerConfig::default());
    let body = json!({"contents": [user("tell me")], "generationConfig": {"maxOutputTokens": 12}});
    for (model, distinct) in [("cool", 1), (MODEL, 2)] {
        let mut answers = std::collections::HashSet::new();
        for _ in 0..8 {
            let uri = format!("/v1beta/models/{model}:generateContent");
            let v = call(&st, "POST", &uri, Some(body.clone())).await.json();
            answers.insert(v["candidates"][0]["content"]["parts"][0]["text"].to_string());
        }
        assert!(
            if distinct == 1 {
                answers.len() == 1
            } else {
                answers.len() >= 2
            },
            "{model}: {answers:?}"
        );
    }
}

/// The legacy Python SDK (google-generativeai 0.8) over REST: every call
/// with `$alt=json;enum-encoding=int`, every enum as its proto number, int64
/// as strings, countTokens as a generateContentRequest, streams as a JSON
/// array (as captured from the SDK itself).
#[tokio::test]
async fn the_legacy_python_sdks_numbered_enums_and_alt_are_understood() {
    let st = state();
    let q = "?%24alt=json%3Benum-encoding%3Dint";
    let body = json!({
        "contents": [{"parts": [{"text": "hello"}], "role": "user"}],
        "safetySettings": [{"category": 7, "threshold": 3}, {"category": 8, "threshold": 1}],
        "generationConfig": {"candidateCount": 1, "maxOutputTokens": 16, "temperature": 0.5,
            "responseMimeType": "application/json",
            "responseSchema": {"type": 6, "properties": {"tags": {"type": 5, "items": {"type": 1},
                "maxItems": "3"}, "age": {"type": 3}}, "required": ["age"]},
            "responseModalities": [1]},
    });
    let r = call(&st, "POST", &format!("{GEN}{q}"), Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    let r = call(&st, "POST", &format!("{stream}{q}"), Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.starts_with('[') && r.text.ends_with(']'),
        "{}",
        r.text
    );
    let count = "/v1beta/models/gemini-2.5-flash:countTokens";
    let r = call(
        &st,
        "POST",
        &format!("{count}{q}"),
        Some(json!({"generateContentRequest": {
        "model": "models/gemini-2.5-flash", "contents": [{"parts": [{"text": "count me"}]}],
        "generationConfig": {}}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Numbers outside an enum, and other alt values, are named 400s.
    let bad =
        json!({"contents": [user("x")], "safetySettings": [{"category": 99, "threshold": 1}]});
    let r = call(&st, "POST", &format!("{GEN}{q}"), Some(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.message().contains("safety_settings[0].category"),
        "{}",
        r.text
    );
    let r = call(
        &st,
        "POST",
        &format!("{GEN}?alt=proto"),
        Some(json!({"contents": [user("x")]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.message().contains("Invalid value for alt"), "{}", r.text);
}

/// The legacy JavaScript SDK's ChatSession sends function results as a turn
/// of role `function`; Google accepts it, so must hearth.
#[tokio::test]
async fn function_results_in_a_turn_of_role_function_are_accepted() {
    let mut body = json!({
        "contents": [
            user("What is the weather in Paris?"),
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
            {"role": "function", "parts": [{"functionResponse": {"name": "weather", "response": {"sky": "clear"}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "weather", "description": "The weather in a city.",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
    });
    let st = state();
    let r = call(&st, "POST", GEN, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Any other role is still refused.
    body["contents"][2]["role"] = json!("tool");
    let r = call(&st, "POST", GEN, Some(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

/// Gemini CLI sends `includeThoughts: true, thinkingBudget: 8192` whatever
/// the model: on one that cannot think both are satisfied by no thoughts.
#[tokio::test]
async fn a_model_that_does_not_think_answers_thinking_requests_without_thoughts() {
    let st = state_with(vec![engine(false)], ServerConfig::default());
    for cfg in [
        json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 8192}}),
        json!({"thinkingConfig": {"includeThoughts": true}}),
        json!({"thinkingConfig": {"thinkingLevel": "HIGH"}}),
    ] {
        let r = call(
            &st,
            "POST",
            GEN,
            Some(json!({"contents": [user("why?")], "generationConfig": cfg})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{cfg}: {}", r.text);
        let v = r.json();
        let parts = v["candidates"][0]["content"]["parts"]
            .as_array()
            .expect("parts");
        assert!(!parts.is_empty(), "{v}");
        assert!(parts.iter().all(|p| p.get("thought").is_none()), "{v}");
        assert!(
            v["usageMetadata"].get("thoughtsTokenCount").is_none(),
            "{v}"
        );
    }
}

#[tokio::test]
async fn api_keys_are_checked_when_configured() {
    let cfg = ServerConfig {
        api_keys: vec!["s3cret".into()],
        ..ServerConfig::default()
    };
    let st = state_with(vec![engine(false)], cfg);
    let body = Some(json!({"contents": [user("hi")]}).to_string());
    let r = call_raw(&st, "POST", GEN, body.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["status"], "PERMISSION_DENIED");
    let r = call_raw(
        &st,
        "POST",
        GEN,
        body.clone(),
        &[("x-goog-api-key", "wrong")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "API key not valid. Please pass a valid API key."
    );
    let r = call_raw(
        &st,
        "POST",
        GEN,
        body.clone(),
        &[("x-goog-api-key", "s3cret")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call_raw(&st, "POST", &format!("{GEN}?key=s3cret"), body, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call_raw(&st, "GET", "/v1beta/models", None, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "every route is protected");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let cfg = ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    };
    let st = state_with(vec![engine(false)], cfg);
    let big = "word ".repeat(1000);
    let r = call(&st, "POST", GEN, Some(json!({"contents": [user(&big)]}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "Request payload size exceeds the limit: 1024 bytes."
    );
}

/// All requests together hold at most --max-inflight-mib of bodies: a
/// request that would pass it is a 429 before its body is read, one that
/// fits still goes, and the bytes come back when a request ends.
#[tokio::test]
async fn bodies_in_flight_are_bounded_in_all() {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = std::time::Duration::from_millis(20);
    opts.endless = true;
    let engine: std::sync::Arc<dyn hearth_engine::Engine> = std::sync::Arc::new(opts.start());
    let cfg = ServerConfig {
        max_body_bytes: 8 * 1024,
        max_inflight_body_bytes: 12 * 1024,
        ..ServerConfig::default()
    };
    let st = state_with(vec![engine], cfg);
    let slow = json!({"contents": [user("tell me a story")],
        "generationConfig": {"maxOutputTokens": 40, "temperature": 0}})
    .to_string();
    // No Content-Length: the request reserves a whole largest body (8 KiB).
    let first = {
        let (st, body) = (st.clone(), slow.clone());
        tokio::spawn(async move { call_raw(&st, "POST", GEN, Some(body), &[]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let small =
        json!({"contents": [user("hi")], "generationConfig": {"maxOutputTokens": 2}}).to_string();
    let len = small.len().to_string();
    let r = call_raw(
        &st,
        "POST",
        GEN,
        Some(small.clone()),
        &[("content-length", &len)],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a 1 KiB body fits beside it: {}",
        r.text
    );
    let r = call_raw(&st, "POST", GEN, Some(slow.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(first.await.expect("first").status, StatusCode::OK);
    let r = call_raw(&st, "POST", GEN, Some(slow), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "the bytes came back: {}", r.text);
}

#[tokio::test]
async fn binding_beyond_loopback_needs_a_key_or_consent() {
    let open: std::net::SocketAddr = "0.0.0.0:8080".parse().expect("addr");
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let none = ServerConfig::default();
    assert!(hearth_server::check_bind(&local, &none, false).is_ok());
    assert!(hearth_server::check_bind(&open, &none, false).is_err());
    assert!(hearth_server::check_bind(&open, &none, true).is_ok());
    let keyed = ServerConfig {
        api_keys: vec!["k".into()],
        ..ServerConfig::default()
    };
    assert!(hearth_server::check_bind(&open, &keyed, false).is_ok());
}

#[tokio::test]
async fn context_overflow_is_a_400() {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.context_length = 8;
    let st = state_of(opts);
    let r = call(
        &st,
        "POST",
        GEN,
        Some(json!({"contents": [user(&"word ".repeat(20))]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message()
            .contains("exceeds the maximum number of tokens allowed"),
        "{}",
        r.message()
    );
}

/// A slow endless model, served on a loopback port with `config`.
async fn slow_server(
    config: ServerConfig,
) -> (String, std::sync::Arc<hearth_engine::testing::ByteEngine>) {
    let mut opts = ByteEngineOptions::named(MODEL);
    opts.token_delay = std::time::Duration::from_millis(20);
    opts.endless = true;
    let engine = std::sync::Arc::new(opts.start());
    let st = state_with(vec![engine.clone()], config);
    (format!("http://{}", serve_state(st).await), engine)
}

/// Waits until nothing runs on `engine` (at most 2 s); whether it came to that.
async fn idle(engine: &hearth_engine::testing::ByteEngine) -> bool {
    use hearth_engine::Engine;
    for _ in 0..100 {
        if engine.stats().running == 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// A stream holds its request's permit until its last event: with one
/// permit, a second request is a 429 while the stream runs, and goes after.
#[tokio::test]
async fn requests_at_once_are_bounded_streams_included() {
    let (base, _) = slow_server(ServerConfig {
        max_concurrent_requests: 1,
        ..ServerConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let ask = |tokens: u32| json!({"contents": [user("count")], "generationConfig": {"maxOutputTokens": tokens}});
    let stream = client
        .post(format!(
            "{base}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        ))
        .json(&ask(10))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    use futures_util::StreamExt;
    body.next().await.expect("a first chunk").expect("bytes");
    let unary = format!("{base}/v1beta/models/{MODEL}:generateContent");
    let small = || client.post(&unary).json(&ask(2)).send();
    let r = small().await.expect("send");
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-concurrent-requests")),
        "{v}"
    );
    while body.next().await.is_some() {}
    let r = small().await.expect("send");
    assert_eq!(r.status(), 200, "the stream gave its permit back");
    // A unary call gives it back as it answers.
    let r = small().await.expect("send");
    assert_eq!(r.status(), 200);
}

/// `X-Server-Timeout` (the SDKs' `httpOptions.timeout`) is the request's
/// deadline: a unary call past it is a 504 DEADLINE_EXCEEDED, a stream ends
/// with that error as its last event, and both generations stop.
#[tokio::test]
async fn a_client_deadline_ends_the_call_and_its_generation() {
    let (base, engine) = slow_server(ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let forever =
        json!({"contents": [user("go on")], "generationConfig": {"maxOutputTokens": 1000}});
    let started = std::time::Instant::now();
    let r = client
        .post(format!("{base}/v1beta/models/{MODEL}:generateContent"))
        .header("x-server-timeout", "1")
        .json(&forever)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["status"], "DEADLINE_EXCEEDED", "{v}");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(5),
        "answered after {took:?}"
    );
    assert!(idle(&engine).await, "the unary generation stopped");
    let r = client
        .post(format!(
            "{base}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        ))
        .header("x-server-timeout", "1")
        .json(&forever)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let events = sse_events(&text);
    assert!(events.len() > 2, "tokens came before the deadline: {text}");
    let last = events.last().expect("last");
    assert_eq!(last["error"]["code"], 504, "{last}");
    assert_eq!(last["error"]["status"], "DEADLINE_EXCEEDED");
    assert!(idle(&engine).await, "the streamed generation stopped");
    // A server deadline applies without the header; a bad header is a 400
    // that names it.
    let (base, _) = slow_server(ServerConfig {
        request_timeout: Some(std::time::Duration::from_millis(500)),
        ..ServerConfig::default()
    })
    .await;
    let unary = format!("{base}/v1beta/models/{MODEL}:generateContent");
    let r = client
        .post(&unary)
        .json(&forever)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 504);
    let r = client
        .post(&unary)
        .header("x-server-timeout", "soon")
        .json(&forever)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Server-Timeout")),
        "{v}"
    );
}
