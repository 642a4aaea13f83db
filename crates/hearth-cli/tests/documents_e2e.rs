//! PDF parts through the real `hearth serve`, whose document reader runs
//! this very binary's `document-worker` in a child process: a text-only
//! model gets each page's text, a vision model each page's image too, and
//! unreadable or hostile files are 400s that leave the server serving.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{details, post, spawn_serve, Spawned};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pdf(name: &str) -> String {
    let bytes = std::fs::read(root().join("testdata/documents").join(name)).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The tiny Gemma 3 vision model twice: as `gemma3v-f32` with its projector,
/// and, copied under another name, as a text-only twin.
fn start(twin: &Path) -> Spawned {
    let vision = root().join("testdata/models/gemma3v-f32.gguf");
    std::fs::copy(&vision, twin).expect("copy the model");
    let mmproj = root().join("testdata/models/gemma3v-mmproj-f32.gguf");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg("--model")
        .arg(format!("{},{}", vision.display(), twin.display()))
        .arg("--mmproj")
        .arg(format!("{},", mmproj.display()))
        .args(["--parallel", "1", "--ctx", "2048", "--threads", "2"])
        .args([
            "--document-timeout-secs",
            "60",
            "--document-memory-mib",
            "512",
        ])
        .env_remove("HEARTH_CONFIG")
        .env_remove("HEARTH_MMPROJ")
        .env_remove("HEARTH_MODEL")
        .env_remove("HEARTH_API_KEYS");
    spawn_serve(cmd)
}

fn request(pdf_b64: &str, question: &str) -> Value {
    json!({"contents": [{"parts": [
        {"inlineData": {"mimeType": "application/pdf", "data": pdf_b64}},
        {"text": question}
    ]}], "generationConfig": {"maxOutputTokens": 2, "temperature": 0}})
}

#[tokio::test(flavor = "multi_thread")]
async fn pdfs_reach_text_and_vision_models_and_hostile_ones_are_400s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let twin = dir.path().join("gemma3v-text-f32.gguf");
    let server = start(&twin);
    let http = reqwest::Client::new();
    let method = |model: &str, m: &str| format!("{}/v1beta/models/{model}:{m}", server.url);
    let sample = pdf("sample.pdf");
    let body = request(&sample, "What number ends the right column?");

    let mut document = Vec::new();
    for model in ["gemma3v-f32", "gemma3v-text-f32"] {
        let count = json!({"contents": body["contents"]});
        let (status, counted) = post(&http, method(model, "countTokens"), &count).await;
        assert_eq!(status, 200, "{counted}");
        let (status, answer) = post(&http, method(model, "generateContent"), &body).await;
        assert_eq!(status, 200, "{answer}");
        let usage = &answer["usageMetadata"];
        // countTokens is the prompt's usage, modality by modality.
        assert_eq!(counted["totalTokens"], usage["promptTokenCount"], "{model}");
        assert_eq!(
            counted["promptTokensDetails"], usage["promptTokensDetails"],
            "{model}"
        );
        assert_eq!(details(usage, "IMAGE"), 0, "pages are DOCUMENT, not IMAGE");
        assert!(details(usage, "DOCUMENT") > 40, "{usage}");
        document.push(details(usage, "DOCUMENT"));
    }
    // The vision model reads the 5 pages' images besides the same text: 4
    // positions each (this projector's image), and the line break that
    // follows each page image before its text.
    let per_page = {
        let png = std::fs::read(root().join("testdata/images/gemma3v-test.png")).expect("png");
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let body = json!({"contents": [{"parts": [
            {"inlineData": {"mimeType": "image/png", "data": b64}}, {"text": "Describe."}]}]});
        let (status, v) = post(&http, method("gemma3v-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{v}");
        details(&v, "IMAGE")
    };
    assert_eq!(per_page, 4);
    let grown = document[0] as i64 - document[1] as i64;
    eprintln!(
        "DOCUMENT tokens: vision {}, text-only {}",
        document[0], document[1]
    );
    assert_eq!(
        grown,
        5 * (per_page as i64 + 1),
        "vision {} against text-only {}",
        document[0],
        document[1]
    );

    // What cannot be read: a 400 that names the part, and the server goes on.
    for (name, want) in [
        ("encrypted.pdf", "encrypted"),
        ("nopages.pdf", "no pages"),
        ("hostile-bomb.pdf", "512 MiB"),
    ] {
        let (status, v) = post(
            &http,
            method("gemma3v-f32", "generateContent"),
            &request(&pdf(name), "Read it."),
        )
        .await;
        assert_eq!(status, 400, "{name}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("contents[0].parts[0].inline_data"),
            "{message}"
        );
        assert!(message.contains(want), "{name}: {message}");
    }
    let huge = request(&pdf("hostile-huge-page.pdf"), "Read it.");
    let (status, v) = post(&http, method("gemma3v-f32", "generateContent"), &huge).await;
    assert_eq!(
        status, 200,
        "a page of 100000 x 100000 points is rendered to the projector's size: {v}"
    );

    // mediaResolution is fixed for pages.
    let mut fixed = body.clone();
    fixed["contents"][0]["parts"][0]["mediaResolution"] = json!({"level": "MEDIA_RESOLUTION_HIGH"});
    let (status, v) = post(&http, method("gemma3v-f32", "generateContent"), &fixed).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("media_resolution"),
        "{v}"
    );

    // Still serving.
    let (status, v) = post(&http, method("gemma3v-f32", "generateContent"), &body).await;
    assert_eq!(status, 200, "{v}");
    let mut child = server.child;
    let _ = child.kill();
    let _ = child.wait();
}
