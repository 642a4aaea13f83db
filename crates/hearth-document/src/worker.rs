//! The child process that reads one document: `hearth document-worker`.
//!
//! It limits itself first (address space, CPU seconds), then reads the PDF
//! from stdin and writes `{"Ok": Document}` or `{"Err": DocumentError}` as
//! JSON to stdout. A hostile file can make it run out of memory or time, or
//! crash it; all of that ends this process only.

use std::io::{Read, Write};

use crate::{pdf, Document, DocumentError, ReadOptions};

/// The worker's settings, from its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Address space, MiB (RLIMIT_AS).
    pub memory_mib: u64,
    /// CPU time, seconds (RLIMIT_CPU): a backstop behind the parent's deadline.
    pub cpu_secs: u64,
}

/// Runs the worker; returns the process's exit code.
pub fn run(opts: ReadOptions, limits: WorkerLimits) -> i32 {
    let bytes = limits.memory_mib.saturating_mul(1024 * 1024);
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes) {
        eprintln!("document-worker: setting the memory limit failed: {e}");
        return 2;
    }
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CPU, limits.cpu_secs, limits.cpu_secs) {
        eprintln!("document-worker: setting the CPU limit failed: {e}");
        return 2;
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("document-worker: reading stdin failed: {e}");
        return 2;
    }
    let result: Result<Document, DocumentError> =
        std::panic::catch_unwind(move || pdf::read(input, &opts)).unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser stopped on it".into());
            Err(DocumentError::Invalid(why))
        });
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &result)
        .and_then(|()| out.flush().map_err(serde_json::Error::io));
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("document-worker: writing the result failed: {e}");
            2
        }
    }
}

/// Parses the worker's arguments (`--render-px=N --max-pages=N
/// --memory-mib=N --cpu-secs=N`, as [`crate::Reader`] passes them) and runs it.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    let mut opts = ReadOptions::default();
    let mut limits = WorkerLimits {
        memory_mib: 2048,
        cpu_secs: 120,
    };
    for arg in args {
        let parsed = arg
            .split_once('=')
            .and_then(|(k, v)| Some((k, v.parse::<u64>().ok()?)));
        match parsed {
            Some(("--render-px", v)) => opts.render_px = u32::try_from(v).ok(),
            Some(("--max-pages", v)) => opts.max_pages = usize::try_from(v).unwrap_or(usize::MAX),
            Some(("--memory-mib", v)) => limits.memory_mib = v,
            Some(("--cpu-secs", v)) => limits.cpu_secs = v,
            _ => {
                eprintln!("document-worker: unknown argument {arg:?}");
                return 2;
            }
        }
    }
    run(opts, limits)
}
