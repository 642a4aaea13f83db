//! The Files API at its edges: hostile names, limits, expiry, restarts,
//! concurrent uploads, and uploads over a real socket.

mod common;
mod files_support;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use files_support::*;
use serde_json::json;

const GEN: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(dir).expect("inside").display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn traversal_attempts_and_oversized_names_are_refused() {
    let f = Files::open();
    for id in [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "UPPER",
        "a_b",
        &"x".repeat(41),
        "-lead",
    ] {
        let uri = format!("/v1beta/files/{id}");
        send(&f.state, "GET", &uri, &[], "")
            .await
            .expect_error(400, "Invalid file name");
        send(&f.state, "DELETE", &uri, &[], "")
            .await
            .expect_error(400, "Invalid file name");
    }
    for name in [
        "../escape",
        "files/a/b",
        "files/../../x",
        "/etc/passwd",
        "x".repeat(41).as_str(),
    ] {
        let meta = json!({"file": {"name": name}}).to_string();
        let headers = [
            ("x-goog-upload-protocol", "resumable"),
            ("x-goog-upload-command", "start"),
            ("x-goog-upload-header-content-length", "1"),
        ];
        let r = send(&f.state, "POST", "/upload/v1beta/files", &headers, meta).await;
        r.expect_error(400, "Invalid file name");
    }
    let long = json!({"displayName": "d".repeat(513)});
    let headers = [
        ("x-goog-upload-protocol", "resumable"),
        ("x-goog-upload-command", "start"),
        ("x-goog-upload-header-content-length", "1"),
    ];
    let r = send(
        &f.state,
        "POST",
        "/upload/v1beta/files",
        &headers,
        json!({"file": long}).to_string(),
    )
    .await;
    r.expect_error(400, "the limit is 512");
    // File names from clients are metadata, never paths.
    let mut sneaky = headers.to_vec();
    sneaky.push(("x-goog-upload-file-name", "../../evil.txt"));
    let meta = json!({"file": {"displayName": "../../evil.txt"}}).to_string();
    let r = send(&f.state, "POST", "/upload/v1beta/files", &sneaky, meta).await;
    let path = path_of(r.header("x-goog-upload-url"));
    let r = chunk(&f.state, &path, 0, b"x", true).await;
    assert_eq!(r.json()["file"]["displayName"], "../../evil.txt");
    let q = "upload_id=..%2F..%2Fetc%2Fpasswd&upload_protocol=resumable";
    let r = send(
        &f.state,
        "POST",
        &format!("/upload/v1beta/files?{q}"),
        &[("x-goog-upload-command", "query")],
        "",
    )
    .await;
    r.expect_error(404, "no open upload");
    let body = json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "files/../../etc/passwd"}}]}]});
    send(&f.state, "POST", GEN, &[], body.to_string())
        .await
        .expect_error(400, "Unsupported file URI");
    let files = tree(f.dir.path());
    assert!(files.iter().all(|p| p.starts_with("files")), "{files:?}");
    assert!(!files.iter().any(|p| p.contains("evil")), "{files:?}");
}

#[tokio::test]
async fn the_total_and_per_file_limits_answer_clearly() {
    let f = Files::with(&[], |c| {
        c.max_total_bytes = 100;
        c.max_file_bytes = 80;
    });
    upload(&f.state, &[b'a'; 60], "text/plain", json!({})).await;
    let headers = |len: &'static str| {
        [
            ("x-goog-upload-protocol", "resumable"),
            ("x-goog-upload-command", "start"),
            ("x-goog-upload-header-content-length", len),
        ]
    };
    let r = send(&f.state, "POST", "/upload/v1beta/files", &headers("50"), "").await;
    r.expect_error(429, "Storage quota exceeded: 60 of 100 bytes are in use");
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    let r = send(&f.state, "POST", "/upload/v1beta/files", &headers("81"), "").await;
    r.expect_error(400, "the limit is 80 bytes per file");
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    let r = send(&f.state, "POST", "/upload/v1beta/files", &headers("40"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_file_larger_than_a_request_is_not_read_into_a_prompt() {
    let mut f = Files::open();
    let mut config = (*f.state.config).clone();
    config.max_body_bytes = 1000;
    f.state.config = std::sync::Arc::new(config);
    let file = upload(&f.state, &[b'a'; 1001], "text/plain", json!({})).await;
    let body =
        json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": file["uri"]}}]}]});
    let r = send(&f.state, "POST", GEN, &[], body.to_string()).await;
    r.expect_error(400, "1001 bytes; hearth reads at most 1000 bytes");
    // Files each within the limit, together beyond it.
    let a = upload(&f.state, &[b'a'; 600], "text/plain", json!({})).await;
    let b = upload(&f.state, &[b'b'; 600], "text/plain", json!({})).await;
    let body = json!({"contents": [{"role": "user", "parts": [
        {"fileData": {"fileUri": a["uri"]}}, {"fileData": {"fileUri": b["uri"]}}]}]});
    let r = send(&f.state, "POST", GEN, &[], body.to_string()).await;
    r.expect_error(
        400,
        "the 2 files this request names hold 1200 bytes together",
    );
    // One of them alone is read.
    let body =
        json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": a["uri"]}}]}]});
    let r = send(&f.state, "POST", GEN, &[], body.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn expired_files_answer_403_and_the_sweeper_deletes_them() {
    let f = Files::open();
    let file = upload(&f.state, b"soon gone", "text/plain", json!({})).await;
    let id = id_of(&file);
    f.advance_secs(48 * 3600 - 1);
    assert_eq!(
        send(&f.state, "GET", &format!("/v1beta/files/{id}"), &[], "")
            .await
            .status,
        StatusCode::OK
    );
    f.advance_secs(1);
    send(&f.state, "GET", &format!("/v1beta/files/{id}"), &[], "")
        .await
        .expect_error(403, &id);
    let listed = send(&f.state, "GET", "/v1beta/files", &[], "").await.json();
    assert_eq!(listed["files"], json!([]));
    let body =
        json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": file["uri"]}}]}]});
    send(&f.state, "POST", GEN, &[], body.to_string())
        .await
        .expect_error(403, &id);
    let blobs = f.dir.path().join("files/blobs");
    assert_eq!(
        std::fs::read_dir(&blobs).expect("ls").count(),
        1,
        "bytes stay until the sweep"
    );
    let store = f.state.files.clone().expect("store");
    let sweeper = hearth_server::files::spawn_sweeper(store, Duration::from_millis(20));
    let mut swept = false;
    for _ in 0..200 {
        if std::fs::read_dir(&blobs).expect("ls").count() == 0 {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sweeper.abort();
    assert!(swept, "the sweeper deleted the expired file's bytes");
}

#[tokio::test]
async fn abandoned_uploads_expire_and_free_their_quota() {
    let f = Files::with(&[], |c| {
        c.upload_timeout = Duration::from_secs(60);
        c.max_total_bytes = 100;
    });
    let path = start(&f.state, 100, "text/plain", json!({})).await;
    assert_eq!(
        chunk(&f.state, &path, 0, &[b'a'; 10], false).await.status,
        StatusCode::OK
    );
    f.advance_secs(61);
    chunk(&f.state, &path, 10, &[b'a'; 90], true)
        .await
        .expect_error(404, "abandoned");
    f.store().sweep().expect("sweep");
    start(&f.state, 100, "text/plain", json!({})).await;
}

#[tokio::test]
async fn a_restart_keeps_files_and_open_uploads() {
    let mut f = Files::open();
    let kept = upload(
        &f.state,
        b"durable",
        "text/plain",
        json!({"displayName": "d"}),
    )
    .await;
    let path = start(&f.state, 8, "text/plain", json!({})).await;
    assert_eq!(
        chunk(&f.state, &path, 0, b"half", false).await.status,
        StatusCode::OK
    );
    f.restart();
    let got = send(
        &f.state,
        "GET",
        &format!("/v1beta/files/{}", id_of(&kept)),
        &[],
        "",
    )
    .await;
    assert_eq!(got.json(), kept);
    let r = chunk(&f.state, &path, 4, b"more", true).await;
    assert_eq!(r.status, StatusCode::OK, "the upload resumes: {}", r.text());
    assert_eq!(
        r.json()["file"]["sha256Hash"],
        sha256_hash_field(b"halfmore")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads() {
    let f = Files::open();
    let jobs = (0..8u8).map(|i| {
        let st = f.state.clone();
        async move {
            let data: Vec<u8> = (0..300_000u32).map(|j| (j as u8) ^ i).collect();
            let path = start(&st, data.len(), "application/octet-stream", json!({})).await;
            for (k, piece) in data.chunks(100_000).enumerate() {
                let last = (k + 1) * 100_000 >= data.len();
                let r = chunk(&st, &path, k * 100_000, piece, last).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                if last {
                    let file = r.json()["file"].clone();
                    assert_eq!(file["sha256Hash"], sha256_hash_field(&data));
                    return id_of(&file);
                }
            }
            unreachable!("the last chunk returns")
        }
    });
    let ids = futures_util::future::join_all(jobs).await;
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 8);
    let listed = send(&f.state, "GET", "/v1beta/files?pageSize=100", &[], "")
        .await
        .json();
    assert_eq!(listed["files"].as_array().map(Vec::len), Some(8));
}

/// Over a real socket: the upload URL names the address the client used,
/// and 8 MiB chunks pass however small the JSON body limit is.
#[tokio::test]
async fn chunked_upload_over_a_real_socket() {
    let f = Files::with(&[KEY], |_| {});
    let mut state = f.state.clone();
    let mut config = (*state.config).clone();
    config.max_body_bytes = 1024 * 1024;
    state.config = std::sync::Arc::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, hearth_server::app(state)).await;
    });
    let http = reqwest::Client::new();
    let data: Vec<u8> = (0..9_500_000u32).map(|i| (i % 251) as u8).collect();
    let r = http
        .post(format!("http://{addr}/upload/v1beta/files"))
        .header("x-goog-api-key", KEY)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header(
            "x-goog-upload-header-content-length",
            data.len().to_string(),
        )
        .header(
            "x-goog-upload-header-content-type",
            "application/octet-stream",
        )
        .json(&json!({"file": {"displayName": "big"}}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    let url = r.headers()["x-goog-upload-url"]
        .to_str()
        .expect("url")
        .to_string();
    assert!(
        url.starts_with(&format!("http://{addr}/upload/v1beta/files?upload_id=")),
        "{url}"
    );
    let mut offset = 0;
    let mut last = None;
    for piece in data.chunks(CHUNK) {
        let fin = offset + piece.len() == data.len();
        let r = http
            .post(&url) // no key, like the Python SDK
            .header("content-type", "application/json")
            .header(
                "x-goog-upload-command",
                if fin { "upload, finalize" } else { "upload" },
            )
            .header("x-goog-upload-offset", offset.to_string())
            .body(piece.to_vec())
            .send()
            .await
            .expect("chunk");
        assert_eq!(r.status(), 200);
        let status = r.headers()["x-goog-upload-status"]
            .to_str()
            .expect("status")
            .to_string();
        assert_eq!(status, if fin { "final" } else { "active" });
        last = Some(r.text().await.expect("body"));
        offset += piece.len();
    }
    let file: serde_json::Value = serde_json::from_str(&last.expect("final")).expect("json");
    assert_eq!(file["file"]["sizeBytes"], data.len().to_string());
    assert_eq!(file["file"]["sha256Hash"], sha256_hash_field(&data));
    assert_eq!(
        file["file"]["uri"],
        format!("http://{addr}/v1beta/files/{}", id_of(&file["file"]))
    );
    server.abort();
}
