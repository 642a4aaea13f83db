//! The Files API through `app(state).oneshot(..)`: the resumable protocol
//! with the SDKs' exact headers, one-shot uploads, get / list / delete, and
//! `fileData` in generateContent.

mod common;
mod files_support;

use std::path::Path;

use axum::http::StatusCode;
use files_support::*;
use serde_json::{json, Value};

const GEN: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const COUNT: &str = "/v1beta/models/gemini-2.5-flash:countTokens";

fn capture_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in ["v1beta/py", "v1beta/js", "v1-default/py", "v1-default/js"] {
        for name in ["e_upload_then_generate", "q_files_crud"] {
            out.push(root.join(dir).join(format!("{name}.requests.jsonl")));
        }
    }
    out
}

/// The captured headers, minus those the transport sets.
fn captured_headers(rec: &Value) -> Vec<(String, String)> {
    rec["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.to_ascii_lowercase().as_str(),
                "host" | "content-length" | "connection" | "accept-encoding"
            )
        })
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// One captured SDK session replayed against a fresh server.
struct Replay {
    f: Files,
    upload_path: String,
    file: Value,
    captured_id: String,
}

/// A captured request: method, path, query, headers, body.
struct Captured {
    rec: Value,
    headers: Vec<(String, String)>,
}

impl Captured {
    fn method(&self) -> &str {
        self.rec["method"].as_str().expect("method")
    }
    fn path(&self) -> &str {
        self.rec["path"].as_str().expect("path")
    }
    fn query(&self) -> &str {
        self.rec["query"].as_str().unwrap_or_default()
    }
    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

impl Replay {
    async fn start(&mut self, c: &Captured) {
        let body = c.rec["body"].to_string();
        let r = send(&self.f.state, c.method(), c.path(), &c.headers(), body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let url = r.header("x-goog-upload-url");
        let version = c.path().split('/').nth(2).expect("version");
        let expected = format!("http://{HOST}/upload/{version}/files?upload_id=");
        assert!(url.starts_with(&expected), "{url}");
        assert!(url.ends_with("&upload_protocol=resumable"), "{url}");
        assert_eq!(r.header("x-goog-upload-chunk-granularity"), "8388608");
        self.upload_path = path_of(url);
    }

    async fn bytes(&mut self, c: &Captured) {
        let size = c.rec["body"]["_bytes"].as_u64().expect("size") as usize;
        let r = send(
            &self.f.state,
            c.method(),
            &self.upload_path,
            &c.headers(),
            png(size),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-goog-upload-status"), "final");
        let captured = &c.rec["response"]["json"]["file"];
        self.captured_id = captured["name"].as_str().expect("name")["files/".len()..].to_string();
        let file = r.json()["file"].clone();
        assert_eq!(file["sizeBytes"], size.to_string());
        assert_eq!(file["mimeType"], "image/png");
        assert_eq!(file["sha256Hash"], sha256_hash_field(&png(size)));
        assert_eq!(
            (file["state"].as_str(), file["source"].as_str()),
            (Some("ACTIVE"), Some("UPLOADED"))
        );
        assert_eq!(file.get("displayName"), captured.get("displayName"));
        self.file = file;
    }

    async fn generate(&self, c: &Captured) {
        let ours = self.file["uri"].as_str().expect("uri");
        let theirs = format!("http://127.0.0.1:8765/v1beta/files/{}", self.captured_id);
        let body = c.rec["body"].to_string().replace(&theirs, ours);
        assert!(body.contains(ours), "the capture names its upload");
        let r = send(&self.f.state, c.method(), c.path(), &c.headers(), body).await;
        r.expect_error(400, "cannot read image/png");
    }

    async fn crud(&self, c: &Captured) {
        let p = c.path().replace(&self.captured_id, &id_of(&self.file));
        let uri = match c.query() {
            "" => p,
            q => format!("{p}?{q}"),
        };
        let body = c.rec["body"]
            .as_object()
            .map(|b| Value::Object(b.clone()).to_string());
        let r = send(
            &self.f.state,
            c.method(),
            &uri,
            &c.headers(),
            body.unwrap_or_default(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        match c.method() {
            "DELETE" => assert_eq!(r.json(), json!({})),
            _ if c.query().contains("pageSize") => {
                assert_eq!(r.json()["files"], json!([self.file]))
            }
            _ => assert_eq!(r.json(), self.file),
        }
    }
}

/// Every files request both SDKs sent (v1 and v1beta) replayed with its exact
/// headers against a server that requires a key: the Python SDK's byte
/// request carries none and passes on its upload URL alone.
#[tokio::test]
async fn the_sdks_captured_file_requests_replay() {
    let Some(root) = common::shared_captures("1 test replaying the SDKs' captured file requests")
    else {
        return;
    };
    let mut replayed = 0;
    for path in capture_files(&root) {
        let text = std::fs::read_to_string(&path).expect("capture");
        let mut replay = Replay {
            f: Files::with(&[KEY], |_| {}),
            upload_path: String::new(),
            file: Value::Null,
            captured_id: String::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: Value = serde_json::from_str(line).expect("json");
            let c = Captured {
                headers: captured_headers(&rec),
                rec,
            };
            eprintln!(
                "{}: {} {}?{}",
                path.display(),
                c.method(),
                c.path(),
                c.query()
            );
            match (c.path().starts_with("/upload/"), c.query().is_empty()) {
                (true, true) => replay.start(&c).await,
                (true, false) => replay.bytes(&c).await,
                _ if c.path().contains(":generateContent") => replay.generate(&c).await,
                _ => replay.crud(&c).await,
            }
            replayed += 1;
        }
        assert!(
            !replay.captured_id.is_empty(),
            "{}: no upload",
            path.display()
        );
        if text.contains("DELETE") {
            let id = id_of(&replay.file);
            let r = send(
                &replay.f.state,
                "GET",
                &format!("/v1beta/files/{id}"),
                &[("x-goog-api-key", KEY)],
                "",
            )
            .await;
            r.expect_error(403, &format!("access the File {id}"));
        }
    }
    assert!(replayed >= 30, "only {replayed} requests replayed");
}

#[tokio::test]
async fn a_file_resource_has_every_field() {
    let f = Files::open();
    let file = upload(
        &f.state,
        b"hello",
        "text/plain",
        json!({"displayName": "greeting"}),
    )
    .await;
    let id = id_of(&file);
    assert_eq!(id.len(), 12);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(file["displayName"], "greeting");
    assert_eq!(file["mimeType"], "text/plain");
    assert_eq!(file["sizeBytes"], "5");
    assert_eq!(file["createTime"], "2026-11-24T12:59:00.000000Z");
    assert_eq!(file["updateTime"], file["createTime"]);
    assert_eq!(
        file["expirationTime"], "2026-11-26T12:59:00.000000Z",
        "48 hours"
    );
    assert_eq!(
        file["sha256Hash"],
        "MmNmMjRkYmE1ZmIwYTMwZTI2ZTgzYjJhYzViOWUyOWUxYjE2MWU1YzFmYTc0MjVlNzMwNDMzNjI5MzhiOTgyNA=="
    );
    assert_eq!(file["uri"], format!("http://{HOST}/v1beta/files/{id}"));
    assert_eq!(file["state"], "ACTIVE");
    assert_eq!(file["source"], "UPLOADED");
    let got = send(&f.state, "GET", &format!("/v1/files/{id}"), &[], "").await;
    assert_eq!(
        got.json()["uri"],
        format!("http://{HOST}/v1/files/{id}"),
        "the version asked"
    );
}

#[tokio::test]
async fn twenty_megabytes_in_8_mib_chunks() {
    let f = Files::open();
    let data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = start(&f.state, data.len(), "application/octet-stream", json!({})).await;
    let mut offset = 0;
    let mut answers = Vec::new();
    while offset < data.len() {
        let end = (offset + CHUNK).min(data.len());
        let r = chunk(
            &f.state,
            &path,
            offset,
            &data[offset..end],
            end == data.len(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        answers.push(r.header("x-goog-upload-status").to_string());
        if end < data.len() {
            assert_eq!(r.header("x-goog-upload-size-received"), end.to_string());
            assert!(r.body.is_empty());
        } else {
            let file = r.json()["file"].clone();
            assert_eq!(file["sizeBytes"], "20000000");
            assert_eq!(file["sha256Hash"], sha256_hash_field(&data));
        }
        offset = end;
    }
    assert_eq!(answers, ["active", "active", "final"]);
}

#[tokio::test]
async fn chunks_pass_on_the_upload_url_alone() {
    let f = Files::with(&["s3cret"], |_| {});
    let start_headers = [
        ("x-goog-upload-protocol", "resumable"),
        ("x-goog-upload-command", "start"),
        ("x-goog-upload-header-content-length", "4"),
        ("x-goog-upload-header-content-type", "text/plain"),
    ];
    let r = send(&f.state, "POST", "/upload/v1beta/files", &start_headers, "").await;
    r.expect_error(403, "unregistered callers");
    let mut keyed = start_headers.to_vec();
    keyed.push(("x-goog-api-key", "s3cret"));
    let r = send(&f.state, "POST", "/upload/v1beta/files", &keyed, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let path = path_of(r.header("x-goog-upload-url"));
    let bytes_headers = [
        ("x-goog-upload-command", "upload"),
        ("x-goog-upload-offset", "0"),
    ];
    let r = send(&f.state, "POST", &path, &bytes_headers, "ab").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "no key, but the upload URL: {}",
        r.text()
    );
    // A made-up session id is no credential.
    let forged = format!(
        "/upload/v1beta/files?upload_id={}&upload_protocol=resumable",
        "0".repeat(64)
    );
    send(&f.state, "POST", &forged, &bytes_headers, "ab")
        .await
        .expect_error(403, "unregistered callers");
    // The upload id opens this one session, nothing else.
    let other = path.replace("/upload/v1beta/files", "/v1beta/files");
    send(&f.state, "GET", &other, &[], "")
        .await
        .expect_error(403, "unregistered callers");
    let q = path.split_once('?').map(|(_, q)| q).expect("query");
    let r = send(&f.state, "POST", &format!("{GEN}?{q}"), &[], "{}").await;
    r.expect_error(403, "unregistered callers");
    let fin = [
        ("x-goog-upload-command", "upload, finalize"),
        ("x-goog-upload-offset", "2"),
    ];
    let r = send(&f.state, "POST", &path, &fin, "cd").await;
    assert_eq!(r.header("x-goog-upload-status"), "final", "{}", r.text());
    // A finished session is no credential either.
    send(&f.state, "POST", &path, &bytes_headers, "ab")
        .await
        .expect_error(403, "unregistered callers");
}

#[tokio::test]
async fn offsets_sizes_query_and_cancel() {
    let f = Files::open();
    let path = start(&f.state, 10, "text/plain", json!({})).await;
    let r = chunk(&f.state, &path, 3, b"abc", false).await;
    r.expect_error(400, "must start at offset 0");
    assert_eq!(
        r.header("x-goog-upload-status"),
        "final",
        "errors stop the SDKs at once"
    );
    assert_eq!(
        chunk(&f.state, &path, 0, b"abcd", false)
            .await
            .header("x-goog-upload-status"),
        "active"
    );
    chunk(&f.state, &path, 0, b"abcd", false)
        .await
        .expect_error(400, "must start at offset 4");
    chunk(&f.state, &path, 4, b"0123456789", false)
        .await
        .expect_error(400, "declared 10 bytes but 14");
    chunk(&f.state, &path, 4, b"ef", true)
        .await
        .expect_error(400, "size mismatch");
    let query = [("x-goog-upload-command", "query")];
    let r = send(&f.state, "POST", &path, &query, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-goog-upload-status"), "active");
    assert_eq!(
        r.header("x-goog-upload-size-received"),
        "4",
        "refused chunks wrote nothing"
    );
    let r = chunk(&f.state, &path, 4, b"efghij", true).await;
    assert_eq!(r.json()["file"]["sizeBytes"], "10");
    send(&f.state, "POST", &path, &query, "")
        .await
        .expect_error(404, "no open upload");

    let path = start(&f.state, 10, "text/plain", json!({})).await;
    let r = send(
        &f.state,
        "POST",
        &path,
        &[("x-goog-upload-command", "cancel")],
        "",
    )
    .await;
    assert_eq!(r.header("x-goog-upload-status"), "cancelled");
    chunk(&f.state, &path, 0, b"x", false)
        .await
        .expect_error(404, "no open upload");
    let r = send(
        &f.state,
        "POST",
        &path.replace("upload_id=", "upload_id=zz"),
        &query,
        "",
    )
    .await;
    r.expect_error(404, "no open upload");
}

#[tokio::test]
async fn start_requests_are_checked() {
    let f = Files::open();
    let base = [
        ("x-goog-upload-protocol", "resumable"),
        ("x-goog-upload-command", "start"),
    ];
    let post = |headers: Vec<(&'static str, &'static str)>, body: &'static str| {
        let st = f.state.clone();
        async move { send(&st, "POST", "/upload/v1beta/files", &headers, body).await }
    };
    post(base.to_vec(), "")
        .await
        .expect_error(400, "size is required");
    let mut h = base.to_vec();
    h.push(("x-goog-upload-header-content-length", "5"));
    post(h.clone(), r#"{"file": {"sizeBytes": "6"}}"#)
        .await
        .expect_error(400, "sizeBytes says 6");
    h.push(("x-goog-upload-header-content-type", "image/png"));
    post(h.clone(), r#"{"file": {"mimeType": "text/plain"}}"#)
        .await
        .expect_error(400, "MIME type mismatch");
    post(h.clone(), r#"{"file": {"bogus": 1}}"#)
        .await
        .expect_error(400, "bogus");
    let r = post(
        h.clone(),
        r#"{"file": {"mime_type": "image/png", "size_bytes": 5}}"#,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the Python SDK's body: {}",
        r.text()
    );
    // Google's own curl example writes the metadata with single quotes.
    let r = post(h.clone(), "{'file': {'display_name': 'organ'}}").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    post(vec![("x-goog-upload-protocol", "resumable")], "")
        .await
        .expect_error(400, "X-Goog-Upload-Command: start");
    post(vec![], "")
        .await
        .expect_error(400, "Upload protocol missing");
    let too_big = vec![
        ("x-goog-upload-protocol", "resumable"),
        ("x-goog-upload-command", "start"),
        ("x-goog-upload-header-content-length", "3000000000"),
    ];
    post(too_big, "")
        .await
        .expect_error(400, "limit is 2147483648 bytes per file");
    let mut named = h.clone();
    named[2] = ("x-goog-upload-header-content-length", "1");
    let r = post(
        named.clone(),
        r#"{"file": {"name": "files/mine", "mimeType": "image/png"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = post(
        named,
        r#"{"file": {"name": "files/mine", "mimeType": "image/png"}}"#,
    )
    .await;
    r.expect_error(409, "files/mine already exists");
    assert_eq!(r.json()["error"]["status"], "ALREADY_EXISTS");
}

#[tokio::test]
async fn media_that_is_not_what_it_claims_is_refused() {
    let f = Files::open();
    let path = start(&f.state, 11, "image/png", json!({})).await;
    let r = chunk(&f.state, &path, 0, b"hello world", true).await;
    r.expect_error(400, "not image/png content");
    let pdf = upload(&f.state, b"%PDF-1.4\n%...", "application/pdf", json!({})).await;
    assert_eq!(pdf["mimeType"], "application/pdf");
    let path = start(&f.state, 8, "application/pdf", json!({})).await;
    chunk(&f.state, &path, 0, &png(8), true)
        .await
        .expect_error(400, "look like image/png");
}

fn multipart_body(boundary: &str, meta: Option<&str>, media_type: &str, media: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(m) = meta {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{m}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: {media_type}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(media);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

async fn multipart(f: &Files, content_type: &str, body: Vec<u8>) -> Resp {
    let uri = "/upload/v1beta/files?uploadType=multipart";
    send(
        &f.state,
        "POST",
        uri,
        &[("content-type", content_type)],
        body,
    )
    .await
}

#[tokio::test]
async fn one_shot_multipart_uploads() {
    let f = Files::open();
    let meta = r#"{"file": {"displayName": "pic"}}"#;
    let body = multipart_body("hearth-b", Some(meta), "image/png", &png(100));
    let r = multipart(&f, "multipart/related; boundary=hearth-b", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-goog-upload-status"), "final");
    let file = r.json()["file"].clone();
    assert_eq!(file["displayName"], "pic");
    assert_eq!(file["mimeType"], "image/png");
    assert_eq!(file["sizeBytes"], "100");
    assert_eq!(file["sha256Hash"], sha256_hash_field(&png(100)));

    // The protocol header instead of the query; media only; a quoted boundary.
    let body = multipart_body("b", None, "text/plain", b"just text");
    let headers = [
        ("content-type", "multipart/related; boundary=\"b\""),
        ("x-goog-upload-protocol", "multipart"),
    ];
    let r = send(&f.state, "POST", "/upload/v1/files", &headers, body).await;
    assert_eq!(r.json()["file"]["mimeType"], "text/plain");
    let uri = r.json()["file"]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(uri.contains("/v1/files/"), "{uri}");

    let ct = "multipart/related; boundary=b";
    let bad = multipart_body(
        "b",
        Some(r#"{"file": {"sizeBytes": 3}}"#),
        "text/plain",
        b"four",
    );
    multipart(&f, ct, bad)
        .await
        .expect_error(400, "sizeBytes says 3");
    let fake = multipart_body("b", None, "image/png", b"not a png");
    multipart(&f, ct, fake)
        .await
        .expect_error(400, "not image/png content");
    multipart(&f, ct, b"garbage".to_vec())
        .await
        .expect_error(400, "no boundary line");
    let listed = send(&f.state, "GET", "/v1beta/files", &[], "").await.json();
    assert_eq!(
        listed["files"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    let parts = std::fs::read_dir(f.dir.path().join("files/uploads")).expect("ls");
    assert_eq!(parts.count(), 0, "refused uploads leave no part file");
}

#[tokio::test]
async fn one_shot_raw_uploads() {
    let f = Files::open();
    let uri = "/upload/v1beta/files?uploadType=media";
    let headers = [("content-type", "text/csv"), ("content-length", "4")];
    let r = send(&f.state, "POST", uri, &headers, "a,b\n").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["file"]["mimeType"], "text/csv");
    assert_eq!(r.json()["file"]["sizeBytes"], "4");
    // Without a declared type, the type is read from the bytes.
    let headers = [
        ("content-type", "application/octet-stream"),
        ("content-length", "64"),
    ];
    let r = send(&f.state, "POST", uri, &headers, png(64)).await;
    assert_eq!(r.json()["file"]["mimeType"], "image/png");
    let r = send(
        &f.state,
        "POST",
        uri,
        &[("content-type", "text/plain")],
        "x",
    )
    .await;
    r.expect_error(400, "needs a Content-Length");
}

#[tokio::test]
async fn get_list_pages_and_delete() {
    let f = Files::open();
    let mut ids = Vec::new();
    for i in 0..12 {
        let file = upload(
            &f.state,
            format!("file {i}").as_bytes(),
            "text/plain",
            json!({}),
        )
        .await;
        ids.push(id_of(&file));
        f.advance_secs(1);
    }
    let mut seen = Vec::new();
    let mut uri = "/v1beta/files?pageSize=5".to_string();
    loop {
        let page = send(&f.state, "GET", &uri, &[], "").await.json();
        seen.extend(page["files"].as_array().expect("files").iter().map(id_of));
        match page["nextPageToken"].as_str() {
            Some(t) => uri = format!("/v1beta/files?pageSize=5&pageToken={t}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "every file once, newest first");
    let default = send(&f.state, "GET", "/v1beta/files", &[], "").await.json();
    assert_eq!(default["files"].as_array().map(Vec::len), Some(10));
    send(&f.state, "GET", "/v1beta/files?pageSize=abc", &[], "")
        .await
        .expect_error(400, "page_size");
    send(&f.state, "GET", "/v1beta/files?pageToken=nonsense", &[], "")
        .await
        .expect_error(400, "Invalid page token");
    send(&f.state, "GET", "/v1beta/files?filter=x", &[], "")
        .await
        .expect_error(400, "Unknown name \"filter\"");

    let victim = &ids[0];
    let r = send(
        &f.state,
        "DELETE",
        &format!("/v1beta/files/{victim}"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    let r = send(&f.state, "GET", &format!("/v1beta/files/{victim}"), &[], "").await;
    r.expect_error(
        403,
        &format!("You do not have permission to access the File {victim} or it may not exist."),
    );
    assert_eq!(r.json()["error"]["status"], "PERMISSION_DENIED");
    send(
        &f.state,
        "DELETE",
        &format!("/v1beta/files/{victim}"),
        &[],
        "",
    )
    .await
    .expect_error(403, "may not exist");
    send(&f.state, "GET", "/v1beta/files/doesnotexist", &[], "")
        .await
        .expect_error(403, "doesnotexist");
    send(&f.state, "GET", "/v2/files", &[], "")
        .await
        .expect_error(404, "not found");
}

async fn generate(f: &Files, parts: Value) -> Resp {
    let body = json!({"contents": [{"role": "user", "parts": parts}], "generationConfig": {"maxOutputTokens": 4}});
    send(
        &f.state,
        "POST",
        GEN,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn file_data_reads_the_stored_bytes() {
    let f = Files::open();
    let text = "The organ is a keyboard instrument with pipes.";
    let file = upload(&f.state, text.as_bytes(), "text/plain", json!({})).await;
    let uri = file["uri"].as_str().expect("uri").to_string();
    let r = generate(
        &f,
        json!([{"fileData": {"fileUri": uri, "mimeType": "text/plain"}}, {"text": "Summarize."}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The file's text is in the prompt exactly as if it had been sent inline.
    let count = |parts: Value| {
        let st = f.state.clone();
        async move {
            let body = json!({"contents": [{"role": "user", "parts": parts}]}).to_string();
            send(&st, "POST", COUNT, &[], body).await.json()["totalTokens"]
                .as_i64()
                .expect("count")
        }
    };
    let inline = count(json!([{"text": text}, {"text": "Summarize."}])).await;
    let id = id_of(&file);
    for form in [
        uri.clone(),
        format!("files/{id}"),
        format!("https://elsewhere.example/v1/files/{id}"),
    ] {
        let by_file =
            count(json!([{"file_data": {"file_uri": form}}, {"text": "Summarize."}])).await;
        assert_eq!(by_file, inline, "{form}");
    }
    let nested = json!({"generateContentRequest": {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": uri}}]}]}});
    assert_eq!(
        send(&f.state, "POST", COUNT, &[], nested.to_string())
            .await
            .status,
        StatusCode::OK
    );

    let r = generate(
        &f,
        json!([{"fileData": {"fileUri": uri, "mimeType": "image/png"}}]),
    )
    .await;
    r.expect_error(
        400,
        "contents[0].parts[0].file_data.mime_type: fileData.mimeType is image/png",
    );
    let pic = upload(&f.state, &png(70), "image/png", json!({})).await;
    let r = generate(&f, json!([{"text": "Caption this."}, {"fileData": {"fileUri": pic["uri"], "mimeType": "image/png"}}])).await;
    r.expect_error(
        400,
        "contents[0].parts[1].file_data: model 'tiny-test' cannot read image/png",
    );
    let r = generate(
        &f,
        json!([{"fileData": {"fileUri": format!("http://{HOST}/v1beta/files/nosuchfile1")}}]),
    )
    .await;
    r.expect_error(
        403,
        "You do not have permission to access the File nosuchfile1 or it may not exist.",
    );
    let r = generate(&f, json!([{"fileData": {"fileUri": "gs://bucket/x.txt"}}])).await;
    r.expect_error(400, "file_data.file_uri: Unsupported file URI");
    let stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let body = json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": uri}}]}], "generationConfig": {"maxOutputTokens": 2}});
    let r = send(&f.state, "POST", stream, &[], body.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    send(&f.state, "DELETE", &format!("/v1beta/files/{id}"), &[], "").await;
    let r = generate(&f, json!([{"fileData": {"fileUri": uri}}])).await;
    r.expect_error(403, &format!("access the File {id}"));
}

#[tokio::test]
async fn without_a_store_files_are_not_served() {
    let st = common::state();
    let r = send(&st, "GET", "/v1beta/files", &[], "").await;
    r.expect_error(501, "Files API is not enabled");
    let r = send(
        &st,
        "POST",
        "/upload/v1beta/files",
        &[("x-goog-upload-protocol", "resumable")],
        "",
    )
    .await;
    r.expect_error(501, "Files API is not enabled");
    let body =
        json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "files/abc"}}]}]});
    let r = send(&st, "POST", GEN, &[], body.to_string()).await;
    r.expect_error(403, "access the File abc");
}
