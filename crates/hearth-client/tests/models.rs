//! `client.models()` against a real (in-process) hearth server.

mod common;

use common::{client, engine, hearth, MODEL};
use futures_util::{StreamExt, TryStreamExt};
use hearth_client::{Client, Config, Error};
use hearth_server::ServerConfig;
use hearth_wire::{Content, Part};

#[tokio::test]
async fn generate_content_answers_text_and_reports_the_model() {
    let client = client().await;
    let resp = client
        .models()
        .generate_content("gemini-2.5-flash", "How does AI work?", None)
        .await
        .expect("generate");
    assert!(!resp.text().unwrap_or_default().is_empty());
    assert_eq!(resp.model_version.as_deref(), Some(MODEL));
    let usage = resp.usage_metadata.expect("usage");
    assert!(usage.prompt_token_count.unwrap_or(0) > 0);
}

#[tokio::test]
async fn a_streamed_reply_concatenates_to_the_unary_one_at_temperature_zero() {
    let client = client().await;
    let cfg = Config::new().temperature(0.0).max_output_tokens(24);
    let unary = client
        .models()
        .generate_content(MODEL, "Explain how AI works", cfg.clone())
        .await
        .expect("unary");
    let mut stream = client
        .models()
        .generate_content_stream(MODEL, "Explain how AI works", cfg)
        .await
        .expect("stream");
    let mut text = String::new();
    let mut chunks = 0;
    let mut finished = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        chunks += 1;
        text.push_str(&chunk.text().unwrap_or_default());
        finished |= chunk.candidates.unwrap_or_default()[0]
            .finish_reason
            .is_some();
    }
    assert!(chunks > 1, "a 24-token reply streams in several chunks");
    assert!(finished);
    assert_eq!(Some(text), unary.text());
}

#[tokio::test]
async fn config_reaches_the_server() {
    let client = client().await;
    let plain = client
        .models()
        .count_tokens(MODEL, "Hello there", None)
        .await
        .expect("count");
    let with_system = client
        .models()
        .count_tokens(
            MODEL,
            "Hello there",
            Config::new().system_instruction("You are a cat. Your name is Neko."),
        )
        .await
        .expect("count with config");
    assert!(with_system.total_tokens > plain.total_tokens);

    // Seeded sampling is reproducible; a different seed is another draw.
    let draw = |seed| {
        let client = client.clone();
        async move {
            client
                .models()
                .generate_content(
                    MODEL,
                    "Tell a story",
                    Config::new().temperature(1.0).seed(seed),
                )
                .await
                .expect("seeded")
                .text()
        }
    };
    assert_eq!(draw(7).await, draw(7).await);

    let stopped = client
        .models()
        .generate_content(
            MODEL,
            "x",
            Config::new().max_output_tokens(3).candidate_count(2),
        )
        .await
        .expect("two candidates");
    assert_eq!(stopped.candidates.expect("candidates").len(), 2);
}

#[tokio::test]
async fn api_errors_carry_code_status_and_message() {
    let client = client().await;
    let err = client
        .models()
        .generate_content(MODEL, "x", Config::new().temperature(-1.0))
        .await
        .expect_err("negative temperature");
    match &err {
        Error::Api {
            code,
            status,
            message,
            ..
        } => {
            assert_eq!((*code, status.as_str()), (400, "INVALID_ARGUMENT"));
            assert!(message.contains("temperature"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = client.models().get("no-such-model").await.expect_err("404");
    assert_eq!(err.code(), Some(404));
    let err = client
        .models()
        .generate_content(MODEL, Vec::<Content>::new(), None)
        .await
        .expect_err("no contents");
    assert_eq!(err.code(), Some(400));
}

#[tokio::test]
async fn models_list_follows_page_tokens_and_get_reads_one() {
    let base = hearth(
        vec![engine("m-one"), engine("m-two"), engine("m-three")],
        ServerConfig::default(),
    )
    .await;
    let client = Client::builder().base_url(base).build().expect("client");
    assert_eq!(client.api_version(), "v1");
    let first = client
        .models()
        .list_page(Some(1), None)
        .await
        .expect("page");
    assert_eq!(first.models.len(), 1);
    assert!(first.next_page_token.is_some());
    let names: Vec<String> = client
        .models()
        .list(1)
        .map_ok(|m| m.name)
        .try_collect()
        .await
        .expect("all pages");
    assert_eq!(names, ["models/m-one", "models/m-two", "models/m-three"]);
    let model = client.models().get("m-two").await.expect("get");
    assert_eq!(model.name, "models/m-two");
    assert!(model
        .supported_generation_methods
        .contains(&"generateContent".to_string()));
}

#[tokio::test]
async fn keys_are_sent_when_configured() {
    let config = ServerConfig {
        api_keys: vec!["sesame".into()],
        ..ServerConfig::default()
    };
    let base = hearth(vec![engine(MODEL)], config).await;
    let anonymous = Client::builder().base_url(&base).build().expect("client");
    let err = anonymous.models().get(MODEL).await.expect_err("no key");
    assert_eq!(err.code(), Some(403));
    let wrong = Client::builder()
        .base_url(&base)
        .api_key("nope")
        .build()
        .expect("client");
    assert_eq!(
        wrong.models().get(MODEL).await.expect_err("bad key").code(),
        Some(400)
    );
    let keyed = Client::builder()
        .base_url(&base)
        .api_key("sesame")
        .build()
        .expect("client");
    keyed.models().get(MODEL).await.expect("right key");
}

#[tokio::test]
async fn parts_and_contents_stand_for_contents() {
    let client = client().await;
    let history = vec![
        Content::user([Part::text("Hello")]),
        Content::model([Part::text("Great to meet you.")]),
        Content::user([Part::text("I have 2 dogs."), Part::text("And a cat.")]),
    ];
    let resp = client
        .models()
        .generate_content(MODEL, history, None)
        .await
        .expect("multi-turn contents");
    assert!(resp.text().is_some());
    let inline = client
        .models()
        .generate_content(
            MODEL,
            vec![
                Part::from_base64("aGVsbG8=", "text/plain"),
                Part::text("Summarize"),
            ],
            None,
        )
        .await
        .expect("text document inline");
    assert!(inline.text().is_some());
}
