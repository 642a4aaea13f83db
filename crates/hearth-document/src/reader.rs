//! The server's side: one worker process a document, a few at once.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::{Document, DocumentError, ReadOptions, MAX_BYTES};

/// How documents are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// The worker: a program and the arguments that make it one (the
    /// `hearth` binary and `document-worker`).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Wall-clock limit for one document.
    pub timeout: Duration,
    /// Address-space limit of one worker, MiB.
    pub memory_mib: u64,
    /// Workers at once; more documents wait their turn.
    pub workers: usize,
}

impl ReaderConfig {
    /// The worker is this very executable's `document-worker` subcommand.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(ReaderConfig {
            program: std::env::current_exe()?,
            args: vec!["document-worker".into()],
            timeout: Duration::from_secs(120),
            memory_mib: 2048,
            workers: 2,
        })
    }
}

/// Reads documents in worker processes.
#[derive(Debug, Clone)]
pub struct Reader {
    config: Arc<ReaderConfig>,
    permits: Arc<Semaphore>,
}

impl Reader {
    pub fn new(config: ReaderConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.workers.max(1)));
        Reader {
            config: Arc::new(config),
            permits,
        }
    }

    /// Reads one PDF. Cancel-safe: dropping the future kills the worker.
    pub async fn read(
        &self,
        bytes: Arc<Vec<u8>>,
        opts: ReadOptions,
    ) -> Result<Document, DocumentError> {
        if bytes.len() > MAX_BYTES {
            return Err(DocumentError::TooLarge(bytes.len()));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DocumentError::Internal("the reader is shut down".into()))?;
        let c = &self.config;
        let mut cmd = tokio::process::Command::new(&c.program);
        cmd.args(&c.args)
            .arg(format!("--max-pages={}", opts.max_pages))
            .arg(format!("--memory-mib={}", c.memory_mib))
            .arg(format!("--cpu-secs={}", c.timeout.as_secs() + 1))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(px) = opts.render_px {
            cmd.arg(format!("--render-px={px}"));
        }
        let mut child = cmd.spawn().map_err(|e| {
            DocumentError::Internal(format!("starting {} failed: {e}", c.program.display()))
        })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DocumentError::Internal(
                "the worker's pipes are missing".into(),
            ));
        };
        let feed = async move {
            // A worker that died early closes its stdin: its exit says why.
            let _ = stdin.write_all(&bytes).await;
            drop(stdin);
        };
        // Pages as base64 PNGs: bounded well above 1000 rendered pages.
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(1 << 30);
        let mut stderr = stderr.take(64 * 1024);
        let collect = async {
            let (_, o, e, status) = tokio::join!(
                feed,
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err),
                child.wait()
            );
            (o, e, status)
        };
        let (o, _, status) = match tokio::time::timeout(c.timeout, collect).await {
            Ok(done) => done,
            Err(_) => {
                let _ = child.kill().await;
                return Err(DocumentError::Timeout(c.timeout.as_secs()));
            }
        };
        let status =
            status.map_err(|e| DocumentError::Internal(format!("waiting for the worker: {e}")))?;
        o.map_err(|e| DocumentError::Internal(format!("reading the worker's output: {e}")))?;
        let stderr = String::from_utf8_lossy(&err);
        if !status.success() {
            return Err(crashed(status, &stderr, c));
        }
        serde_json::from_slice::<Result<Document, DocumentError>>(&out).map_err(|e| {
            DocumentError::Internal(format!("the worker's answer is not readable: {e}"))
        })?
    }
}

/// A worker that did not answer: what the sender's document did to it.
fn crashed(status: std::process::ExitStatus, stderr: &str, c: &ReaderConfig) -> DocumentError {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("memory allocation") || stderr.contains("out of memory") {
        return DocumentError::OutOfMemory(c.memory_mib);
    }
    match status.signal() {
        // RLIMIT_CPU's signal.
        Some(24) => DocumentError::Timeout(c.timeout.as_secs()),
        Some(sig) => DocumentError::Invalid(format!("the reader stopped on it (signal {sig})")),
        None => {
            let last = stderr.lines().last().unwrap_or_default();
            DocumentError::Internal(format!("the worker exited with {status}: {last}"))
        }
    }
}
