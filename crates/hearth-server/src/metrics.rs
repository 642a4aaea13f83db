//! `GET /metrics`: Prometheus metrics under the names that autoscalers and
//! routers already read from vLLM (`vllm:num_requests_running`, …), one
//! series per model (`model_name`). Behind the API key when keys are set
//! (the auth layer covers every route).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_engine::{EngineEvent, FinishReason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishLabel {
    model_name: String,
    finished_reason: String,
}

type Histograms = Family<ModelLabel, Histogram, fn() -> Histogram>;

/// vLLM's buckets, so that dashboards made for it read these alike.
fn ttft_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
    ])
}
fn itl_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0,
    ])
}
fn e2e_buckets() -> Histogram {
    Histogram::new([
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    running: Family<ModelLabel, Gauge>,
    waiting: Family<ModelLabel, Gauge>,
    kv_usage: Family<ModelLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    prompt_tokens: Family<ModelLabel, Counter>,
    generation_tokens: Family<ModelLabel, Counter>,
    prefix_queries: Family<ModelLabel, Counter>,
    prefix_hits: Family<ModelLabel, Counter>,
    success: Family<FinishLabel, Counter>,
    ttft: Histograms,
    itl: Histograms,
    e2e: Histograms,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            running: Family::default(),
            waiting: Family::default(),
            kv_usage: Family::default(),
            prompt_tokens: Family::default(),
            generation_tokens: Family::default(),
            prefix_queries: Family::default(),
            prefix_hits: Family::default(),
            success: Family::default(),
            ttft: Family::new_with_constructor(ttft_buckets),
            itl: Family::new_with_constructor(itl_buckets),
            e2e: Family::new_with_constructor(e2e_buckets),
        };
        let r = &mut m.registry;
        r.register(
            "vllm:num_requests_running",
            "Requests being prefilled or decoded",
            m.running.clone(),
        );
        r.register(
            "vllm:num_requests_waiting",
            "Requests waiting for a sequence",
            m.waiting.clone(),
        );
        r.register(
            "vllm:kv_cache_usage_perc",
            "Share of KV-cache cells in use (running and kept for prefix reuse), 0 to 1",
            m.kv_usage.clone(),
        );
        r.register(
            "vllm:prompt_tokens",
            "Prompt tokens of finished prefills (cached ones included)",
            m.prompt_tokens.clone(),
        );
        r.register(
            "vllm:generation_tokens",
            "Generated tokens (thoughts included)",
            m.generation_tokens.clone(),
        );
        r.register(
            "vllm:prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache",
            m.prefix_queries.clone(),
        );
        r.register(
            "vllm:prefix_cache_hits",
            "Prompt tokens found in the prefix cache",
            m.prefix_hits.clone(),
        );
        r.register(
            "vllm:request_success",
            "Finished candidates by finish reason",
            m.success.clone(),
        );
        r.register(
            "vllm:time_to_first_token_seconds",
            "Time from a request's arrival at the engine to its first token",
            m.ttft.clone(),
        );
        r.register(
            "vllm:inter_token_latency_seconds",
            "Time between a request's successive token events",
            m.itl.clone(),
        );
        r.register(
            "vllm:e2e_request_latency_seconds",
            "Time from a request's arrival at the engine to its end",
            m.e2e.clone(),
        );
        m
    }
}

impl Metrics {
    /// The meter of one generation of `model`, started now.
    pub fn meter(self: &Arc<Self>, model: &str) -> Meter {
        Meter {
            metrics: self.clone(),
            label: ModelLabel {
                model_name: model.to_string(),
            },
            start: Instant::now(),
            last: None,
            finished: false,
        }
    }
}

/// Observes one generation's events; its end-to-end latency is counted when
/// it is dropped, if it finished.
pub struct Meter {
    metrics: Arc<Metrics>,
    label: ModelLabel,
    start: Instant,
    last: Option<Instant>,
    finished: bool,
}

impl Meter {
    pub fn observe(&mut self, ev: &EngineEvent) {
        let m = &self.metrics;
        match ev {
            EngineEvent::Started {
                prompt_tokens,
                cached_tokens,
                ..
            } => {
                let (p, c) = (u64::from(*prompt_tokens), u64::from(*cached_tokens));
                m.prompt_tokens.get_or_create(&self.label).inc_by(p);
                m.prefix_queries.get_or_create(&self.label).inc_by(p);
                m.prefix_hits.get_or_create(&self.label).inc_by(c);
            }
            EngineEvent::Delta { .. } | EngineEvent::ToolCall { .. } => {
                let now = Instant::now();
                match self.last {
                    None => m
                        .ttft
                        .get_or_create(&self.label)
                        .observe((now - self.start).as_secs_f64()),
                    Some(t) => m
                        .itl
                        .get_or_create(&self.label)
                        .observe((now - t).as_secs_f64()),
                }
                self.last = Some(now);
            }
            EngineEvent::Finished { reason, usage, .. } => {
                let tokens = u64::from(usage.output_tokens) + u64::from(usage.thought_tokens);
                m.generation_tokens
                    .get_or_create(&self.label)
                    .inc_by(tokens);
                m.success
                    .get_or_create(&FinishLabel {
                        model_name: self.label.model_name.clone(),
                        // vLLM's words, where it has them.
                        finished_reason: match reason {
                            FinishReason::Stop => "stop",
                            FinishReason::MaxTokens => "length",
                            FinishReason::MalformedFunctionCall => "malformed_function_call",
                        }
                        .to_string(),
                    })
                    .inc();
                self.finished = true;
            }
            EngineEvent::Failed(_) => {}
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.finished {
            self.metrics
                .e2e
                .get_or_create(&self.label)
                .observe(self.start.elapsed().as_secs_f64());
        }
    }
}

/// `GET /metrics`, in the OpenMetrics text format Prometheus scrapes.
pub async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = &state.metrics;
    for engine in state.registry.engines() {
        let label = ModelLabel {
            model_name: engine.info().id.clone(),
        };
        let s = engine.stats();
        m.running
            .get_or_create(&label)
            .set(i64::try_from(s.running).unwrap_or(i64::MAX));
        m.waiting
            .get_or_create(&label)
            .set(i64::try_from(s.waiting).unwrap_or(i64::MAX));
        m.kv_usage.get_or_create(&label).set(s.kv_usage);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry)
        .map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
