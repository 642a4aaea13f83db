//! The Files API of the real `hearth serve` binary across a crash: a file is
//! uploaded, a second upload is killed (kill -9) half-way through a chunk,
//! and a restart on the same directory keeps the first file intact, shows no
//! half file, and lets the second upload resume.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{model_path, spawn_serve, Spawned};

const KEY: &str = "files-e2e-key";
const CHUNK: usize = 8 * 1024 * 1024;

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// `hearth serve` on the tiny model with its files in `files_dir`, on a
    /// port the system picks.
    fn start(files_dir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg("serve")
            .arg("--model")
            .arg(model_path())
            .args(["--api-key", KEY])
            .args(["--parallel", "1", "--ctx", "256", "--threads", "2"])
            .arg("--files-dir")
            .arg(files_dir)
            .env_remove("HEARTH_CONFIG");
        let Spawned { child, url, .. } = spawn_serve(cmd);
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the logged URL");
        Server { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL: no chance to clean anything up.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hash(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(hex)
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Resumable start as the SDKs send it; returns the upload URL.
async fn start_upload(http: &reqwest::Client, server: &Server, size: usize, name: &str) -> String {
    let r = http
        .post(server.url("/upload/v1beta/files"))
        .header("x-goog-api-key", KEY)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", size.to_string())
        .header(
            "x-goog-upload-header-content-type",
            "application/octet-stream",
        )
        .json(&json!({"file": {"display_name": name}}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    r.headers()["x-goog-upload-url"]
        .to_str()
        .expect("url")
        .to_string()
}

/// One chunk without a key, as the Python SDK sends it.
async fn send_chunk(
    http: &reqwest::Client,
    url: &str,
    offset: usize,
    data: &[u8],
    last: bool,
) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/json")
        .header(
            "x-goog-upload-command",
            if last { "upload, finalize" } else { "upload" },
        )
        .header("x-goog-upload-offset", offset.to_string())
        .body(data.to_vec())
        .send()
        .await
        .expect("chunk")
}

async fn get_json(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http
        .get(url)
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

/// Writes the headers and part of the body of a chunk, then leaves the
/// request hanging: the server is mid-chunk when it is killed.
fn half_a_chunk(
    port: u16,
    path_and_query: &str,
    offset: usize,
    chunk: &[u8],
) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         X-Goog-Upload-Command: upload, finalize\r\nX-Goog-Upload-Offset: {offset}\r\nContent-Length: {}\r\n\r\n",
        chunk.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&chunk[..chunk.len() / 2])
        .expect("half the body");
    s.flush().expect("flush");
    s
}

#[tokio::test]
async fn a_kill_9_during_an_upload_loses_nothing_finished() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files_dir = dir.path().join("files");
    let http = reqwest::Client::new();
    let first = bytes(3 * 1024 * 1024 + 17, 1);
    let second = bytes(CHUNK + 4 * 1024 * 1024, 2);

    let server = Server::start(&files_dir);
    let url = start_upload(&http, &server, first.len(), "first").await;
    let r = send_chunk(&http, &url, 0, &first, true).await;
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let kept: Value = r.json().await.expect("json");
    let kept = kept["file"].clone();
    let id = kept["name"].as_str().expect("name").to_string();
    assert_eq!(kept["sha256Hash"], sha256_hash(&first));

    let url = start_upload(&http, &server, second.len(), "second").await;
    let r = send_chunk(&http, &url, 0, &second[..CHUNK], false).await;
    assert_eq!(r.headers()["x-goog-upload-status"], "active");
    let path_and_query = &url[url.find("/upload/").expect("path")..];
    let hanging = half_a_chunk(server.port, path_and_query, CHUNK, &second[CHUNK..]);
    std::thread::sleep(Duration::from_millis(500));
    server.kill_9();
    drop(hanging);

    let server = Server::start(&files_dir);
    // The finished file is intact.
    let (status, got) = get_json(&http, server.url(&format!("/v1beta/{id}"))).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["sha256Hash"], sha256_hash(&first));
    assert_eq!(got["sizeBytes"], first.len().to_string());
    assert_eq!(got["displayName"], "first");
    // No half file is visible.
    let (_, listed) = get_json(&http, server.url("/v1beta/files")).await;
    let names: Vec<&str> = listed["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, vec![id.as_str()]);
    // The interrupted upload kept its acknowledged chunk, not the half one.
    let part = std::fs::read_dir(files_dir.join("uploads"))
        .expect("uploads")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "part"))
        .expect("the part file of the open upload");
    assert_eq!(std::fs::metadata(part).expect("part").len(), CHUNK as u64);
    let url = url.replace(
        &format!(":{}", url_port(&url)),
        &format!(":{}", server.port),
    );
    let r = http
        .post(&url)
        .header("x-goog-upload-command", "query")
        .send()
        .await
        .expect("query");
    assert_eq!(r.headers()["x-goog-upload-status"], "active");
    assert_eq!(
        r.headers()["x-goog-upload-size-received"],
        CHUNK.to_string().as_str()
    );
    // ...and resumes from there.
    let r = send_chunk(&http, &url, CHUNK, &second[CHUNK..], true).await;
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let done: Value = r.json().await.expect("json");
    assert_eq!(done["file"]["sha256Hash"], sha256_hash(&second));
    let (_, listed) = get_json(&http, server.url("/v1beta/files")).await;
    assert_eq!(listed["files"].as_array().map(Vec::len), Some(2));
}

fn url_port(url: &str) -> u16 {
    let authority = url.split("://").nth(1).and_then(|r| r.split('/').next());
    authority
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL")
}
