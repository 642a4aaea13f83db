//! Golden round trips, dual-case input, unknown-field rejection and every
//! captured SDK request.

use std::path::{Path, PathBuf};

use hearth_wire::*;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("testdata/golden").join(name)).expect("golden file")
}

#[test]
fn full_request_round_trips_to_camel_case() {
    let raw = golden("request_full_camel.json");
    let req: GenerateContentRequest = from_slice(&raw).expect("decodes");
    let original: Value = serde_json::from_slice(&raw).expect("json");
    let out = serde_json::to_value(&req).expect("encodes");
    assert_eq!(
        numbers_as_f64(out),
        numbers_as_f64(original),
        "re-encoding must give back the camelCase input"
    );
}

/// JSON numbers compared by value (`1` and `1.0` are the same double).
fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect())
        }
        other => other,
    }
}

#[test]
fn snake_case_twin_decodes_to_the_same_request() {
    let camel: GenerateContentRequest =
        from_slice(&golden("request_full_camel.json")).expect("camel");
    let snake: GenerateContentRequest =
        from_slice(&golden("request_full_snake.json")).expect("snake");
    assert_eq!(camel, snake);
}

#[test]
fn free_form_keys_are_never_renamed() {
    let req: GenerateContentRequest =
        from_slice(&golden("request_full_snake.json")).expect("snake");
    let out = serde_json::to_value(&req).expect("encodes");
    let call = &out["contents"][1]["parts"][1]["functionCall"]["args"];
    assert_eq!(call, &json!({"city_name": "Paris", "unitSystem": "metric"}));
    let resp = &out["contents"][2]["parts"][0]["functionResponse"]["response"];
    assert_eq!(resp, &json!({"temp_c": 21, "feelsLike": 20}));
    let schema = &out["generationConfig"]["responseSchema"]["items"]["properties"];
    let names: Vec<&String> = schema.as_object().expect("object").keys().collect();
    assert_eq!(names, ["recipe_name", "rating", "tags"]);
    let js = &out["generationConfig"]["responseJsonSchema"];
    assert_eq!(
        js,
        &json!({"type": "object", "properties": {"snake_key": {"type": "string"}}})
    );
    let params = &out["tools"][0]["functionDeclarations"][1]["parametersJsonSchema"];
    assert_eq!(params["additionalProperties"], json!(false));
}

#[test]
fn int64_fields_are_strings_on_output_and_either_on_input() {
    let file: File = from_slice(br#"{"mime_type":"image/png","size_bytes":70}"#).expect("number");
    assert_eq!(file.size_bytes, Some(70));
    let file2: File = from_slice(br#"{"mimeType":"image/png","sizeBytes":"70"}"#).expect("string");
    assert_eq!(file, file2);
    let out = serde_json::to_value(&file).expect("encodes");
    assert_eq!(out["sizeBytes"], json!("70"));
    let schema: Schema = from_slice(br#"{"type":"ARRAY","maxItems":3}"#).expect("schema");
    assert_eq!(
        serde_json::to_value(&schema).expect("enc")["maxItems"],
        json!("3")
    );
}

#[test]
fn unknown_field_is_named_like_google() {
    let err = from_slice::<GenerateContentRequest>(
        br#"{"contents":[],"generationConfig":{"temperature":1,"bogusField":2}}"#,
    )
    .expect_err("must reject");
    assert_eq!(
        err.message,
        "Invalid JSON payload received. Unknown name \"bogusField\" at 'generation_config': Cannot find field."
    );
    let err = from_slice::<GenerateContentRequest>(br#"{"content":[]}"#).expect_err("top");
    assert_eq!(
        err.message,
        "Invalid JSON payload received. Unknown name \"content\": Cannot find field."
    );
    let err = from_slice::<GenerateContentRequest>(
        br#"{"contents":[{"parts":[{"text":"a"},{"txt":"b"}]}]}"#,
    )
    .expect_err("nested");
    assert!(
        err.message
            .contains("Unknown name \"txt\" at 'contents[0].parts[1]'"),
        "{}",
        err.message
    );
}

#[test]
fn bad_enum_and_bad_type_name_the_field() {
    let err = from_slice::<GenerateContentRequest>(
        br#"{"contents":[],"generationConfig":{"responseModalities":["SMELL"]}}"#,
    )
    .expect_err("enum");
    assert!(
        err.message
            .contains("generation_config.response_modalities[0]"),
        "{}",
        err.message
    );
    assert!(err.message.contains("SMELL"), "{}", err.message);
    let err = from_slice::<GenerateContentRequest>(
        br#"{"contents":[],"generationConfig":{"temperature":"hot"}}"#,
    )
    .expect_err("type");
    assert!(
        err.message.contains("generation_config.temperature"),
        "{}",
        err.message
    );
    let err = from_slice::<GenerateContentRequest>(b"{\"contents\": [").expect_err("syntax");
    assert!(
        err.message.starts_with("Invalid JSON payload received."),
        "{}",
        err.message
    );
}

#[test]
fn schema_types_accept_lower_case() {
    let s: Schema =
        from_slice(br#"{"type":"object","properties":{"a":{"type":"string"}}}"#).expect("lower");
    assert_eq!(s.r#type, Some(SchemaType::Object));
}

#[test]
fn response_serializes_in_camel_case_and_text_skips_thoughts() {
    let resp = GenerateContentResponse {
        candidates: Some(vec![Candidate {
            content: Some(Content {
                role: Some("model".into()),
                parts: vec![
                    Part {
                        thought: Some(true),
                        ..Part::text("hmm")
                    },
                    Part::text("Hello"),
                ],
            }),
            finish_reason: Some(FinishReason::Stop),
            index: Some(0),
            ..Candidate::default()
        }]),
        usage_metadata: Some(UsageMetadata {
            prompt_token_count: Some(3),
            candidates_token_count: Some(1),
            thoughts_token_count: Some(1),
            total_token_count: Some(5),
            prompt_tokens_details: Some(vec![ModalityTokenCount {
                modality: Modality::Text,
                token_count: 3,
            }]),
            ..UsageMetadata::default()
        }),
        model_version: Some("tiny".into()),
        response_id: Some("abc".into()),
        ..GenerateContentResponse::default()
    };
    let v = serde_json::to_value(&resp).expect("encodes");
    let expected = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"text": "Hello"}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "thoughtsTokenCount": 1,
                          "totalTokenCount": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]},
        "modelVersion": "tiny", "responseId": "abc"
    });
    assert_eq!(v, expected);
    assert_eq!(resp.text().as_deref(), Some("Hello"));
    let back: GenerateContentResponse = serde_json::from_value(v).expect("decodes");
    assert_eq!(back, resp);
}

/// Every request body the official SDKs sent in the captures decodes.
#[test]
fn every_captured_sdk_request_decodes() {
    let root = repo().join("../shared/spec/captures");
    if !root.is_dir() {
        println!(
            "skipped: 1 test decoding the SDKs' captured requests: {} is not beside this checkout",
            root.display()
        );
        return;
    }
    let mut files = Vec::new();
    collect(&root, &mut files);
    assert!(!files.is_empty(), "no captures under {}", root.display());
    let mut decoded = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read capture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: Value = serde_json::from_str(line).expect("capture line");
            let path = rec["path"].as_str().unwrap_or_default();
            let query = rec["query"].as_str().unwrap_or_default();
            let body = &rec["body"];
            if !body.is_object() || body.get("_bytes").is_some() {
                continue; // GETs, raw upload bytes
            }
            let raw = serde_json::to_vec(body).expect("body");
            let res =
                if path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent") {
                    from_slice::<GenerateContentRequest>(&raw).map(|_| ())
                } else if path.ends_with(":countTokens") {
                    from_slice::<CountTokensRequest>(&raw).map(|_| ())
                } else if path.starts_with("/upload/") && !query.contains("upload_id") {
                    from_slice::<CreateFileRequest>(&raw).map(|_| ())
                } else if body.as_object().is_some_and(|o| o.is_empty()) {
                    Ok(()) // JS sends `{}` on DELETE
                } else {
                    panic!("unexpected captured body for {path}: {body}");
                };
            if let Err(e) = res {
                panic!("{}: {path}: {e}\nbody: {body}", file.display());
            }
            decoded += 1;
        }
    }
    assert!(decoded > 100, "only {decoded} captured bodies decoded");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("captures dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.to_string_lossy().ends_with(".requests.jsonl") {
            out.push(p);
        }
    }
}
