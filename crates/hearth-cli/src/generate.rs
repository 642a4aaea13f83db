//! `hearth generate "prompt"`: one answer, streamed to the terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use hearth_client::types::{Content, GenerateContentResponse, Part};
use hearth_client::Config;

use crate::remote::{pick_model, RemoteArgs};

/// Settings shared by `generate` and `chat`.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Model to ask (default: the first one the server lists).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// System instruction.
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: Option<f64>,
    /// Largest number of tokens in the answer.
    #[arg(long)]
    pub max_tokens: Option<i32>,
    /// Thinking budget in tokens (0: no thinking, -1: the model decides).
    #[arg(long, allow_hyphen_values = true)]
    pub thinking_budget: Option<i32>,
    /// Sampling seed, for reproducible answers.
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<i64>,
}

impl SamplingArgs {
    pub fn config(&self) -> Config {
        let mut cfg = Config::new();
        if let Some(s) = &self.system {
            cfg = cfg.system_instruction(s.as_str());
        }
        if let Some(t) = self.temperature {
            cfg = cfg.temperature(t);
        }
        if let Some(n) = self.max_tokens {
            cfg = cfg.max_output_tokens(n);
        }
        if let Some(b) = self.thinking_budget {
            cfg = cfg.thinking_budget(b);
        }
        if let Some(s) = self.seed {
            cfg = cfg.seed(s);
        }
        cfg
    }
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The prompt.
    prompt: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// JSON output following this JSON Schema (a file path, or the schema itself).
    #[arg(long)]
    json_schema: Option<String>,
    /// Attach a file (sent inline; repeatable).
    #[arg(long = "file", short = 'f')]
    files: Vec<PathBuf>,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let model = pick_model(&client, args.sampling.model.as_deref()).await?;
    let mut config = args.sampling.config();
    if let Some(schema) = &args.json_schema {
        config = config.response_json_schema(read_schema(schema)?);
    }
    let mut parts = Vec::new();
    for path in &args.files {
        parts.push(
            hearth_client::inline_part(path, None)
                .await
                .with_context(|| format!("cannot attach {}", path.display()))?,
        );
    }
    parts.push(Part::text(args.prompt.as_str()));
    let mut stream = client
        .models()
        .generate_content_stream(&model, vec![Content::user(parts)], config)
        .await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        print_chunk(&mut out, &chunk?)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Writes a chunk's text as it comes (thoughts, when returned, in brackets).
pub fn print_chunk(out: &mut impl Write, chunk: &GenerateContentResponse) -> anyhow::Result<()> {
    let parts = chunk
        .candidates
        .iter()
        .flatten()
        .take(1)
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| c.parts.iter());
    for part in parts {
        if let Some(text) = &part.text {
            if part.thought == Some(true) {
                write!(out, "[{text}]")?;
            } else {
                write!(out, "{text}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// A schema given inline (starts with `{`) or as a file path.
fn read_schema(arg: &str) -> anyhow::Result<serde_json::Value> {
    let text = if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg).with_context(|| format!("cannot read schema file {arg}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("--json-schema is not JSON: {arg}"))
}
