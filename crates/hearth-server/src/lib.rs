//! The Gemini REST API (`/v1` and `/v1beta`) over hearth engines.

pub mod auth;
mod budget;
pub mod convert;
pub mod documents;
pub mod error;
pub mod files;
mod generate;
pub mod metrics;
mod models;
pub mod registry;
mod request;
mod stream;
mod trace;
pub mod video;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use hearth_store::Store;

pub use error::ApiError;
pub use registry::ModelRegistry;

/// Server settings that requests see.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accepted API keys; empty: no key is required.
    pub api_keys: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The bytes of generateContent / countTokens bodies that all requests
    /// together may hold at once (at least one largest body); beyond it a
    /// request is answered 429 RESOURCE_EXHAUSTED before its body is read.
    pub max_inflight_body_bytes: usize,
    /// Requests prepared at once (JSON parsing, base64 decoding, template
    /// rendering, tokenization, grammar compilation, image decoding), on
    /// blocking threads rather than the async workers that stream replies.
    pub prep_workers: usize,
    /// Model-method requests served at once (streams until their last
    /// event); beyond it a request is answered 429 RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// The server's deadline for a model-method request (a client's
    /// `X-Server-Timeout` can only shorten it); None: only the client's.
    pub request_timeout: Option<std::time::Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        // Google's inline-request limit (2026 docs: 100 MB) plus base64 overhead.
        ServerConfig {
            api_keys: Vec::new(),
            max_body_bytes: 140 * 1024 * 1024,
            max_inflight_body_bytes: 1024 * 1024 * 1024,
            prep_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_concurrent_requests: 512,
            request_timeout: Some(std::time::Duration::from_secs(600)),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<ModelRegistry>,
    pub config: Arc<ServerConfig>,
    /// The Files API's store; `None`: files routes answer 501 and every
    /// `fileData` part is a 403.
    pub files: Option<Arc<Store>>,
    /// Request-body bytes still free to hold, in KiB ([`budget`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Model-method requests that may run at once ([`budget`]).
    pub requests: Arc<tokio::sync::Semaphore>,
    /// Reads PDF parts in worker processes; `None`: PDF parts are a 400.
    pub documents: Option<hearth_document::Reader>,
    /// Permits to prepare a request ([`AppState::prepare`]).
    prep: Arc<tokio::sync::Semaphore>,
    /// What `/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(registry: ModelRegistry, config: ServerConfig) -> Self {
        let budget = config.max_inflight_body_bytes.max(config.max_body_bytes);
        let workers = config.prep_workers.max(1);
        let requests = config.max_concurrent_requests.max(1);
        AppState {
            registry: Arc::new(registry),
            config: Arc::new(config),
            files: None,
            documents: None,
            body_budget: Arc::new(tokio::sync::Semaphore::new(budget.div_ceil(1024))),
            requests: Arc::new(tokio::sync::Semaphore::new(requests)),
            prep: Arc::new(tokio::sync::Semaphore::new(workers)),
            metrics: Arc::default(),
        }
    }

    /// Runs the CPU-heavy part of a request (parsing, decoding, rendering,
    /// tokenizing) on a blocking thread, at most `prep_workers` at once
    /// (TGI's validation workers), so that the async workers stay free to
    /// stream other replies: a few huge countTokens cannot stall every SSE
    /// stream. Waiting requests queue for a permit.
    pub async fn prepare<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .prep
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the request pool is closed"))?;
        // The work logs under the request's span (its id) on that thread too.
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => {
                tracing::error!("preparing a request panicked: {e}");
                Err(ApiError::internal("An internal error has occurred."))
            }
            Err(_) => Err(ApiError::internal("the request was cancelled")),
        }
    }

    /// Reads PDF parts with `reader`.
    pub fn with_documents(mut self, reader: hearth_document::Reader) -> Self {
        self.documents = Some(reader);
        self
    }

    /// Serves the Files API from `store`.
    pub fn with_files(mut self, store: Arc<Store>) -> Self {
        self.files = Some(store);
        self
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/{version}/models", get(models::list))
        .route(
            "/{version}/models/{name}",
            get(models::get).post(generate::dispatch),
        )
        .route("/{version}/files", get(files::list))
        .route(
            "/{version}/files/{name}",
            get(files::get).delete(files::delete),
        )
        .route("/upload/{version}/files", post(files::upload::upload))
        .route("/metrics", get(metrics::scrape))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            budget::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn(trace::request))
        .with_state(state)
}

/// Any other URL: a 404, once the body is read (a client still sending it
/// would otherwise see its connection cut instead of the answer).
async fn no_route(State(state): State<AppState>, body: axum::body::Body) -> ApiError {
    let _ = request::body_bytes(body, state.config.max_body_bytes).await;
    ApiError::not_found("The requested URL was not found on this server.")
}

/// Refuses to expose an unauthenticated server beyond loopback unless the
/// operator says so explicitly.
pub fn check_bind(
    addr: &std::net::SocketAddr,
    config: &ServerConfig,
    allow_unauthenticated: bool,
) -> Result<(), String> {
    if addr.ip().is_loopback() || !config.api_keys.is_empty() || allow_unauthenticated {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {addr} without an API key: anyone on the network could use it. \
         Set an API key (--api-key / HEARTH_API_KEYS), listen on 127.0.0.1, or pass --allow-unauthenticated."
    ))
}
