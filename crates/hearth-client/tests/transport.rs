//! Retries, timeouts and environment configuration.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use common::serve_router;
use hearth_client::{Client, RetryOptions};

const MODEL_JSON: &str = r#"{"name":"models/m","supportedGenerationMethods":["generateContent"]}"#;

/// A server whose first `failures` answers are `status`.
async fn flaky(failures: usize, status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = axum::Router::new().route(
        "/v1/models/m",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < failures {
                    let code = status.as_u16();
                    (
                        status,
                        format!(r#"{{"error":{{"code":{code},"message":"busy","status":"X"}}}}"#),
                    )
                } else {
                    (StatusCode::OK, MODEL_JSON.to_string())
                }
            }
        }),
    );
    (serve_router(router).await, calls)
}

fn quick_retries(attempts: u32) -> RetryOptions {
    RetryOptions {
        attempts,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        multiplier: 2.0,
    }
}

#[tokio::test]
async fn no_retry_by_default() {
    let (base, calls) = flaky(1, StatusCode::SERVICE_UNAVAILABLE).await;
    let client = Client::builder().base_url(base).build().expect("client");
    let err = client.models().get("m").await.expect_err("503");
    assert_eq!(err.code(), Some(503));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Calls `get` on a server failing `failures` times with `status`, with
/// `attempts` attempts in all; returns the outcome and the calls made.
async fn with_retries(
    failures: usize,
    status: StatusCode,
    attempts: u32,
) -> (hearth_client::Result<String>, usize) {
    let (base, calls) = flaky(failures, status).await;
    let client = Client::builder()
        .base_url(&base)
        .retry(quick_retries(attempts))
        .build()
        .expect("client");
    let got = client.models().get("m").await.map(|m| m.name);
    (got, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn opt_in_retries_recover_from_503_and_give_up_after_the_attempts() {
    let (got, calls) = with_retries(2, StatusCode::SERVICE_UNAVAILABLE, 3).await;
    assert_eq!(got.expect("third try"), "models/m");
    assert_eq!(calls, 3);

    let (got, calls) = with_retries(5, StatusCode::TOO_MANY_REQUESTS, 2).await;
    assert_eq!(got.expect_err("429s").code(), Some(429));
    assert_eq!(calls, 2);

    let (got, calls) = with_retries(1, StatusCode::BAD_REQUEST, 3).await;
    assert_eq!(got.expect_err("400").code(), Some(400));
    assert_eq!(calls, 1, "400 is never retried");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let router = axum::Router::new().route(
        "/v1/models/m",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            MODEL_JSON
        }),
    );
    let base = serve_router(router).await;
    let client = Client::builder()
        .base_url(base)
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let err = client.models().get("m").await.expect_err("timeout");
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn non_json_errors_keep_the_body_text() {
    let router = axum::Router::new().route(
        "/v1/models/m",
        get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
    );
    let base = serve_router(router).await;
    let client = Client::builder().base_url(base).build().expect("client");
    match client.models().get("m").await.expect_err("502") {
        hearth_client::Error::Api { code, message, .. } => {
            assert_eq!((code, message.as_str()), (502, "upstream down"));
        }
        other => panic!("{other:?}"),
    }
}

/// All environment cases in one test: the variables are process-wide.
#[test]
fn from_env_follows_the_sdks_precedence() {
    let vars = [
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GENAI_API_VERSION",
    ];
    for v in vars {
        std::env::remove_var(v);
    }
    assert!(matches!(
        Client::from_env(),
        Err(hearth_client::Error::Config(_))
    ));

    std::env::set_var("GEMINI_API_KEY", "gemini-key");
    let c = Client::from_env().expect("gemini key");
    assert_eq!(c.base_url(), hearth_client::GOOGLE_BASE_URL);
    assert_eq!(c.api_version(), "v1");

    std::env::set_var("GOOGLE_API_KEY", "google-key");
    std::env::set_var("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9/prefix/");
    std::env::set_var("GOOGLE_GENAI_API_VERSION", "beta");
    let c = Client::from_env().expect("both keys");
    assert_eq!(c.base_url(), "http://127.0.0.1:9/prefix");
    assert_eq!(c.api_version(), "v1beta");
    let explicit = Client::builder()
        .base_url("http://localhost:1")
        .api_version("v1")
        .env()
        .build()
        .expect("explicit wins");
    assert_eq!(
        (explicit.base_url(), explicit.api_version()),
        ("http://localhost:1", "v1")
    );
    for v in vars {
        std::env::remove_var(v);
    }
    assert!(Client::builder().base_url("ftp://x").build().is_err());
}
