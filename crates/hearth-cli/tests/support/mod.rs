//! Helpers shared by the tests that run the real `hearth` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The tiny random Qwen 3 test model.
pub fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/qwen3-f32.gguf")
}

/// A `hearth serve` child listening on a port the system chose for it.
pub struct Spawned {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, as the server logged it.
    pub url: String,
    /// Everything the server wrote to stderr so far (for failure messages).
    pub log: Arc<Mutex<String>>,
}

impl Spawned {
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Starts `cmd` (a `hearth serve` command without `--port`) on port 0 and
/// waits for the line that names the address it listens on. No port is
/// picked ahead of time, so no other process can take it in between; if the
/// server exits first, the panic carries its log.
pub fn spawn_serve(mut cmd: Command) -> Spawned {
    let mut child = cmd
        .args(["--port", "0"])
        .env_remove("HEARTH_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listens on http://") {
                let url: String = line[at + "listens on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url);
                }
            }
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(url) => Spawned { child, url, log },
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            let text = log.lock().map(|l| l.clone()).unwrap_or_default();
            panic!("hearth serve did not listen ({e}; {status:?}); its log:\n{text}");
        }
    }
}

/// POSTs `body` as JSON; the status and the JSON answer.
pub async fn post(
    http: &reqwest::Client,
    url: String,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = http.post(url).json(body).send().await.expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

/// The tokens of `modality` in a usage's or countTokens' `promptTokensDetails`.
pub fn details(v: &serde_json::Value, modality: &str) -> u64 {
    v["promptTokensDetails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["modality"] == modality)
        .map(|d| d["tokenCount"].as_u64().unwrap_or(0))
        .sum()
}
