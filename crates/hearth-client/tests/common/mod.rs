//! An in-process hearth server on a loopback port, over the real engine on a
//! byte-level test model, and scripted servers for the client's own rules.
#![allow(dead_code)]

use std::sync::Arc;

use hearth_client::Client;
use hearth_engine::testing::ByteEngineOptions;
use hearth_engine::Engine;
use hearth_server::{app, AppState, ModelRegistry, ServerConfig};

pub const MODEL: &str = "tiny-test";

/// The real engine over the byte-level test model, a step every 2 ms as a
/// real engine's steps take time: a stream then has one chunk per token
/// (what is ready goes together).
pub fn engine(id: &str) -> Arc<dyn Engine> {
    let mut opts = ByteEngineOptions::named(id);
    opts.token_delay = std::time::Duration::from_millis(2);
    Arc::new(opts.start())
}

/// Serves `router` on 127.0.0.1:<free port>; returns the base URL.
pub async fn serve_router(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}

/// A hearth server over these engines.
pub async fn hearth(engines: Vec<Arc<dyn Engine>>, config: ServerConfig) -> String {
    let state = AppState::new(ModelRegistry::new(engines), config);
    serve_router(app(state)).await
}

/// A client for a hearth serving one test model, API version v1beta.
pub async fn client() -> Client {
    let base = hearth(vec![engine(MODEL)], ServerConfig::default()).await;
    Client::builder()
        .base_url(base)
        .api_version("v1beta")
        .build()
        .expect("client")
}
