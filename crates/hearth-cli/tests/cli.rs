//! The `hearth` binary end to end: `serve` from a TOML file on the tiny
//! Qwen 3 model, then `generate`, `chat` and `models` against it through
//! hearth-client, then a graceful SIGTERM.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{model_path, spawn_serve, Spawned};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hearth")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hearth serve --config <file>` with the settings in a TOML file (the port
/// is 0: the system picks a free one, which the server names in its log).
fn serve(dir: &Path) -> Server {
    let config = dir.join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            "model = [{:?}]\nparallel = 2\nctx = 512\nthreads = 2\nmax_thinking_tokens = 3\nalias = [\"gemini-*=qwen3-f32\"]\n",
            model_path().display().to_string()
        ),
    )
    .expect("write config");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("HEARTH_FILES_DIR", dir.join("files"))
        .env_remove("HEARTH_MODEL");
    let Spawned { child, url, log } = spawn_serve(cmd);
    Server { child, url, log }
}

fn hearth(server: &Server, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .args(["--url", &server.url])
        .env_remove("GEMINI_API_KEY")
        .env_remove("GOOGLE_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hearth");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A plain HTTP/1.1 GET (no keep-alive): the whole response, head and body.
fn http_get(url: &str, path: &str) -> String {
    use std::io::Read;
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host).expect("connect");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    conn.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn serve_generate_chat_models_and_shutdown() {
    let dir = temp_dir("e2e");
    let mut server = serve(&dir);

    // generate: streams text; temperature 0 is reproducible.
    let args = [
        "generate",
        "Bonjour !",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
    ];
    let first = hearth(&server, &args, None);
    assert!(
        first.status.success(),
        "{first:?}\nserver log:\n{}",
        server.log()
    );
    assert!(!stdout(&first).trim().is_empty());
    let again = hearth(&server, &args, None);
    assert_eq!(stdout(&first), stdout(&again));

    // The system instruction and an attached text file reach the model.
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "Les chats ont quatre pattes.").expect("notes");
    let with_all = hearth(
        &server,
        &[
            "generate",
            "Résume.",
            "--system",
            "Tu es un chat.",
            "--file",
            notes.to_str().expect("utf-8 path"),
            "--thinking-budget",
            "0",
            "--max-tokens",
            "4",
        ],
        None,
    );
    assert!(with_all.status.success(), "{with_all:?}");

    // A bad field is the server's 400, named, and a failing exit.
    let bad = hearth(&server, &["generate", "x", "--temperature", "-1"], None);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("400") && err.contains("temperature"), "{err}");

    // chat: two turns from stdin, then the history.
    let chat = hearth(
        &server,
        &["chat", "--max-tokens", "4", "--temperature", "0"],
        Some("I have 2 dogs.\nHow many paws?\n/history\n/exit\n"),
    );
    assert!(chat.status.success(), "{chat:?}");
    let out = stdout(&chat);
    assert!(out.contains("user: I have 2 dogs."), "{out}");
    assert!(out.contains("user: How many paws?"), "{out}");
    assert_eq!(out.matches("model: ").count(), 2, "{out}");

    // models: the loaded model, and GGUF files of a Hugging Face cache.
    let cache = dir.join("hub");
    let snap = cache.join("models--acme--tiny-GGUF/snapshots/0123abcd");
    std::fs::create_dir_all(&snap).expect("snapshot dir");
    std::fs::copy(model_path(), snap.join("tiny-Q8_0.gguf")).expect("copy model");
    let models = Command::new(bin())
        .args(["models", "--url", &server.url])
        .env("HF_HUB_CACHE", &cache)
        .output()
        .expect("hearth models");
    let out = stdout(&models);
    assert!(models.status.success(), "{models:?}");
    assert!(out.contains("models/qwen3-f32"), "{out}");
    assert!(out.contains("acme/tiny-GGUF/tiny-Q8_0.gguf"), "{out}");

    // GET models describes the model, never the server's disk.
    let listing = http_get(&server.url, "/v1beta/models");
    assert!(listing.starts_with("HTTP/1.1 200"), "{listing}");
    assert!(listing.contains("\"description\""), "{listing}");
    let dir_shown = model_path()
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    assert!(
        !listing.contains(&dir_shown) && !listing.contains(".gguf"),
        "a path in the listing: {listing}"
    );

    // SIGTERM: a graceful stop with a zero exit status.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_config_file_is_named() {
    let dir = temp_dir("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "prot = 8080\n").expect("write");
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown setting \"prot\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
