//! `hearth bench`: a load generator for Gemini-API servers (hearth) and
//! OpenAI-compatible ones (llama-server), through their real HTTP streaming
//! endpoints: tokens/s, time to first token, inter-token latency, peak RSS.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Api {
    /// POST /v1beta/models/{model}:streamGenerateContent?alt=sse
    Gemini,
    /// POST /v1/chat/completions with stream (llama-server, vLLM …)
    Openai,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// N concurrent streams of equal prompts, for each --concurrency level.
    Streams,
    /// Long and short prompts interleaved at the highest concurrency level.
    Mixed,
    /// One conversation of --turns turns, each resending the whole history.
    Chat,
    /// One stream, alternating requests without and with a JSON schema
    /// (constrained decoding): decode tokens/s of each and their ratio
    /// (`--api openai` sends the schema as `response_format` json_schema).
    Schema,
    /// One stream asked to repeat a paragraph of its prompt word for word
    /// (extraction, rewriting: where prompt-lookup speculation pays): decode
    /// tokens/s.
    Quote,
}

/// The paragraph of the `quote` scenario.
const QUOTE: &str = "The committee met on Tuesday to review the budget for the coming year. \
    After a long discussion, the members agreed to increase the funding for the public library \
    by ten percent, to repair the roof of the community hall before the winter, and to hire two \
    more teachers for the primary school. The mayor thanked the volunteers who had organised the \
    summer festival, which raised more money for charity than in any previous year. The next \
    meeting will take place on the first Monday of the month, in the council chamber, at seven \
    in the evening, and all residents are welcome to attend and ask questions.";

/// The schema of the `schema` scenario: an extraction-style list of records
/// with bounded strings, an enum, numbers and booleans, long enough that the
/// reply runs to maxOutputTokens like the free one. (Open-ended strings let a
/// small model loop inside the first string to the end: that measures one
/// string, not constrained decoding.)
fn bench_schema() -> Value {
    json!({"type": "array", "minItems": 32, "items": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 16},
        "category": {"type": "string", "enum": ["instrument", "vegetable", "mammal", "building"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "available": {"type": "boolean"}},
        "required": ["name", "category", "score", "available"]}})
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, value_enum, default_value_t = Api::Gemini)]
    api: Api,
    /// Model name sent to the server.
    #[arg(long, default_value = "gemini-2.5-flash")]
    model: String,
    #[arg(long, value_enum, default_value_t = Scenario::Streams)]
    scenario: Scenario,
    /// Concurrency levels (streams at once).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    concurrency: Vec<usize>,
    /// Requests per stream at each level.
    #[arg(long, default_value_t = 2)]
    requests: usize,
    /// Output tokens asked per request.
    #[arg(long, default_value_t = 32)]
    max_tokens: u32,
    /// Prompt length in words (short prompts; long ones are 16x).
    #[arg(long, default_value_t = 32)]
    prompt_words: usize,
    /// Turns of the chat scenario.
    #[arg(long, default_value_t = 10)]
    turns: usize,
    /// Server process id, to report its peak resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label printed on every result line.
    #[arg(long, default_value = "server")]
    label: String,
    /// Also print one line per request of the streams and mixed scenarios
    /// (when it was sent, its time to first token, its tokens), in order of
    /// sending, to read a distribution rather than two percentiles.
    #[arg(long)]
    samples: bool,
}

/// What one streamed request measured.
#[derive(Debug, Default, Clone)]
struct Sample {
    /// When it was sent, from the start of its level (streams, mixed).
    sent: Duration,
    ttft: Duration,
    gaps: Vec<Duration>,
    tokens: u64,
    reply: String,
    /// Prompt tokens, and those the server says it took from its cache.
    prompt: Option<(u64, u64)>,
}

const WORDS: &[&str] = &[
    "river", "stone", "light", "garden", "window", "music", "paper", "cloud", "forest", "bridge",
    "candle", "harbor",
];

/// A prompt of `words` words, distinct per `seed` from its first word on (no shared prefix).
fn prompt(words: usize, seed: usize) -> String {
    let mut out = format!("Request {seed}: continue this list.");
    for i in 0..words {
        out.push(' ');
        out.push_str(WORDS[(seed * 7 + i * 3 + i / 5) % WORDS.len()]);
    }
    out
}

fn body(
    api: Api,
    model: &str,
    turns: &[(String, String)],
    message: &str,
    max_tokens: u32,
    schema: Option<&Value>,
) -> (String, Value) {
    match api {
        Api::Gemini => {
            let mut contents = Vec::new();
            for (u, m) in turns {
                contents.push(json!({"role": "user", "parts": [{"text": u}]}));
                contents.push(json!({"role": "model", "parts": [{"text": m}]}));
            }
            contents.push(json!({"role": "user", "parts": [{"text": message}]}));
            let path = format!("/v1beta/models/{model}:streamGenerateContent?alt=sse");
            let mut config = json!({"temperature": 0, "maxOutputTokens": max_tokens,
                "thinkingConfig": {"thinkingBudget": 0}});
            if let Some(schema) = schema {
                config["responseMimeType"] = json!("application/json");
                config["responseJsonSchema"] = schema.clone();
            }
            (
                path,
                json!({"contents": contents, "generationConfig": config}),
            )
        }
        Api::Openai => {
            let mut messages = Vec::new();
            for (u, m) in turns {
                messages.push(json!({"role": "user", "content": u}));
                messages.push(json!({"role": "assistant", "content": m}));
            }
            messages.push(json!({"role": "user", "content": message}));
            let mut b = json!({"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                           "stream": true, "stream_options": {"include_usage": true}});
            if let Some(schema) = schema {
                // OpenAI's structured output, which llama-server enforces with its grammar.
                b["response_format"] = json!({"type": "json_schema",
                    "json_schema": {"name": "bench", "schema": schema}});
            }
            ("/v1/chat/completions".to_string(), b)
        }
    }
}

/// Sends one streaming request and times its events.
async fn run_one(
    client: &reqwest::Client,
    args: &BenchArgs,
    history: &[(String, String)],
    message: &str,
    max_tokens: u32,
    schema: Option<&Value>,
) -> anyhow::Result<Sample> {
    let (path, payload) = body(args.api, &args.model, history, message, max_tokens, schema);
    let start = Instant::now();
    let resp = client
        .post(format!("{}{path}", args.url.trim_end_matches('/')))
        .header("x-goog-api-key", "bench")
        .header("authorization", "Bearer bench")
        .json(&payload)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.url))?;
    if !resp.status().is_success() {
        bail!(
            "{} answered {}: {}",
            args.url,
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let mut sample = Sample::default();
    let mut last: Option<Instant> = None;
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.context("stream broke")?));
        while let Some(end) = buf.find("\n\n").or_else(|| buf.find("\r\n\r\n")) {
            let event: String = buf.drain(..end).collect();
            buf = buf.trim_start_matches(['\r', '\n']).to_string();
            let Some(data) = event.trim().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                continue;
            }
            let v: Value =
                serde_json::from_str(data).with_context(|| format!("bad event: {data}"))?;
            if let Some(e) = v.get("error") {
                bail!("stream error: {e}");
            }
            let (text, tokens) = event_text(args.api, &v);
            if let Some(t) = tokens {
                sample.tokens = t;
            }
            if let Some(p) = prompt_usage(args.api, &v) {
                sample.prompt = Some(p);
            }
            if text.is_empty() {
                continue;
            }
            let now = Instant::now();
            match last {
                None => sample.ttft = now - start,
                Some(prev) => sample.gaps.push(now - prev),
            }
            last = Some(now);
            sample.reply.push_str(&text);
        }
    }
    Ok(sample)
}

/// Text of an event and the output token count so far, if it says.
fn event_text(api: Api, v: &Value) -> (String, Option<u64>) {
    match api {
        Api::Gemini => {
            let text = v["candidates"][0]["content"]["parts"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["thought"] != json!(true))
                        .filter_map(|p| p["text"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            (text, v["usageMetadata"]["candidatesTokenCount"].as_u64())
        }
        Api::Openai => {
            let text = v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (text, v["usage"]["completion_tokens"].as_u64())
        }
    }
}

/// (prompt tokens, cached prompt tokens) when an event reports them:
/// Gemini's usageMetadata; llama-server's timings (tokens it evaluated, and
/// `cache_n` taken from its cache) or OpenAI's usage.
fn prompt_usage(api: Api, v: &Value) -> Option<(u64, u64)> {
    match api {
        Api::Gemini => {
            let u = &v["usageMetadata"];
            let prompt = u["promptTokenCount"].as_u64()?;
            Some((prompt, u["cachedContentTokenCount"].as_u64().unwrap_or(0)))
        }
        Api::Openai => {
            let t = &v["timings"];
            if let (Some(n), Some(cached)) = (t["prompt_n"].as_u64(), t["cache_n"].as_u64()) {
                return Some((n + cached, cached));
            }
            let u = &v["usage"];
            let prompt = u["prompt_tokens"].as_u64()?;
            Some((
                prompt,
                u["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
            ))
        }
    }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    let rank = (p * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

fn report(label: &str, what: &str, wall: Duration, samples: &[Sample]) {
    let tokens: u64 = samples.iter().map(|s| s.tokens).sum();
    let ttft: Vec<f64> = samples.iter().map(|s| s.ttft.as_secs_f64() * 1e3).collect();
    let gaps: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.gaps.iter().map(|g| g.as_secs_f64() * 1e3))
        .collect();
    println!(
        "{label} {what}: {} requests, {tokens} tokens in {:.2} s = {:.2} tok/s; ttft p50 {:.0} ms p99 {:.0} ms; itl p50 {:.1} ms p99 {:.1} ms",
        samples.len(),
        wall.as_secs_f64(),
        tokens as f64 / wall.as_secs_f64(),
        percentile(ttft.clone(), 0.5),
        percentile(ttft, 0.99),
        percentile(gaps.clone(), 0.5),
        percentile(gaps, 0.99),
    );
}

/// One line per request, in order of sending ([`BenchArgs::samples`]).
fn print_samples(label: &str, what: &str, samples: &[Sample]) {
    let mut order: Vec<&Sample> = samples.iter().collect();
    order.sort_by_key(|s| s.sent);
    for s in order {
        println!(
            "{label} {what} sample: sent {:.0} ms, ttft {:.0} ms, {} tokens",
            s.sent.as_secs_f64() * 1e3,
            s.ttft.as_secs_f64() * 1e3,
            s.tokens
        );
    }
}

async fn level(
    client: &reqwest::Client,
    args: &BenchArgs,
    salt: usize,
    concurrency: usize,
    long_every: Option<usize>,
) -> anyhow::Result<(Duration, Vec<Sample>, Vec<Sample>)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, args) = (client.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for r in 0..args.requests {
                // Distinct per scenario, level, stream and request: no server
                // may answer from a cache filled by an earlier measurement.
                let seed = salt * 1_000_000 + w * 1000 + r;
                let long = long_every.is_some_and(|k| (w + r) % k == 0);
                let words = if long {
                    args.prompt_words * 16
                } else {
                    args.prompt_words
                };
                let sent = start.elapsed();
                let mut sample = run_one(
                    &client,
                    &args,
                    &[],
                    &prompt(words, seed),
                    args.max_tokens,
                    None,
                )
                .await?;
                sample.sent = sent;
                out.push((long, sample));
            }
            anyhow::Ok(out)
        }));
    }
    let (mut short, mut long) = (Vec::new(), Vec::new());
    for t in tasks {
        for (is_long, s) in t.await.context("a bench task panicked")?? {
            if is_long {
                long.push(s)
            } else {
                short.push(s)
            }
        }
    }
    Ok((start.elapsed(), short, long))
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    // No idle connection reuse: llama-server closes streams' connections
    // despite Keep-Alive, and a request on a dead pooled connection fails.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    match args.scenario {
        Scenario::Streams => {
            for &c in &args.concurrency {
                let (wall, samples, _) = level(&client, &args, 1000 + c, c.max(1), None).await?;
                report(&args.label, &format!("streams={c}"), wall, &samples);
                if args.samples {
                    print_samples(&args.label, &format!("streams={c}"), &samples);
                }
            }
        }
        Scenario::Mixed => {
            let c = args.concurrency.iter().copied().max().unwrap_or(1).max(2);
            let (wall, short, long) = level(&client, &args, 2000 + c, c, Some(4)).await?;
            let all: Vec<Sample> = short.iter().chain(&long).cloned().collect();
            report(&args.label, &format!("mixed streams={c} all"), wall, &all);
            if args.samples {
                print_samples(&args.label, &format!("mixed streams={c}"), &all);
            }
            report(
                &args.label,
                &format!("mixed streams={c} short"),
                wall,
                &short,
            );
        }
        Scenario::Schema => {
            let schema = bench_schema();
            // Decode rate after the first token; alternating so both see the same machine state.
            let rate = |s: &Sample| {
                let t: f64 = s.gaps.iter().map(Duration::as_secs_f64).sum();
                (s.tokens.saturating_sub(1)) as f64 / t.max(1e-9)
            };
            let (mut free, mut constrained) = (Vec::new(), Vec::new());
            for r in 0..args.requests.max(1) {
                let message = prompt(args.prompt_words, 4_000_000 + r);
                let a = run_one(&client, &args, &[], &message, args.max_tokens, None).await?;
                let b = run_one(
                    &client,
                    &args,
                    &[],
                    &message,
                    args.max_tokens,
                    Some(&schema),
                )
                .await?;
                if serde_json::from_str::<Value>(&b.reply).is_err()
                    && b.tokens < u64::from(args.max_tokens)
                {
                    bail!("the constrained reply is not JSON: {}", b.reply);
                }
                free.push(rate(&a));
                constrained.push(rate(&b));
            }
            let (f, c) = (percentile(free, 50.0), percentile(constrained, 50.0));
            println!(
                "{} schema: decode {f:.1} tok/s free, {c:.1} tok/s with a JSON schema: ratio {:.3} (median of {} pairs)",
                args.label,
                c / f.max(1e-9),
                args.requests.max(1)
            );
        }
        Scenario::Quote => {
            let rate = |s: &Sample| {
                let t: f64 = s.gaps.iter().map(Duration::as_secs_f64).sum();
                (s.tokens.saturating_sub(1)) as f64 / t.max(1e-9)
            };
            let mut rates = Vec::new();
            for r in 0..args.requests.max(1) {
                let message = format!(
                    "Request {r}. Repeat the following text word for word, and nothing else:\n\n{QUOTE}"
                );
                let s = run_one(&client, &args, &[], &message, args.max_tokens, None).await?;
                rates.push(rate(&s));
            }
            let n = rates.len();
            println!(
                "{} quote: decode {:.1} tok/s (median of {n})",
                args.label,
                percentile(rates, 50.0)
            );
        }
        Scenario::Chat => {
            let mut history: Vec<(String, String)> = Vec::new();
            let mut first = None;
            for turn in 1..=args.turns {
                let message = prompt(args.prompt_words, 3_000_000 + turn);
                let start = Instant::now();
                let s = run_one(&client, &args, &history, &message, args.max_tokens, None).await?;
                let ttft = s.ttft.as_secs_f64() * 1e3;
                let base = *first.get_or_insert(ttft);
                let prompt = s.prompt.map_or(String::new(), |(p, c)| {
                    format!(
                        ", prompt {p} tokens ({c} cached, {} new)",
                        p.saturating_sub(c)
                    )
                });
                println!(
                    "{} chat turn {turn}: ttft {ttft:.0} ms ({:.2}x turn 1), {} tokens in {:.0} ms{prompt}",
                    args.label,
                    ttft / base,
                    s.tokens,
                    start.elapsed().as_secs_f64() * 1e3
                );
                history.push((message, s.reply));
            }
        }
    }
    if let Some(pid) = args.server_pid {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(status) => {
                let hwm = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .unwrap_or("VmHWM: ?");
                println!(
                    "{} peak RSS {}",
                    args.label,
                    hwm.trim_start_matches("VmHWM:").trim()
                );
            }
            Err(e) => println!("{} peak RSS unknown ({e})", args.label),
        }
    }
    Ok(())
}
