//! What `generate`, `chat` and `models` need to reach a running server:
//! they are clients of the HTTP API (through hearth-client), like any app.

use anyhow::Context;
use clap::Args;
use hearth_client::Client;

/// Where hearth listens when nothing says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Server base URL (else GOOGLE_GEMINI_BASE_URL, else http://127.0.0.1:8080).
    #[arg(long, env = "HEARTH_URL")]
    pub url: Option<String>,
    /// API key, if the server requires one (else GEMINI_API_KEY / GOOGLE_API_KEY).
    #[arg(long = "key", env = "HEARTH_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl RemoteArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut builder = Client::builder().api_version("v1beta");
        if let Some(key) = &self.key {
            builder = builder.api_key(key);
        }
        let from_env = std::env::var("GOOGLE_GEMINI_BASE_URL").ok();
        let url = self
            .url
            .clone()
            .or(from_env)
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        builder
            .base_url(url)
            .env()
            .build()
            .context("cannot configure the client")
    }
}

/// `--model`, or the first model the server lists.
pub async fn pick_model(client: &Client, model: Option<&str>) -> anyhow::Result<String> {
    if let Some(m) = model {
        return Ok(m.to_string());
    }
    let page = client
        .models()
        .list_page(Some(1), None)
        .await
        .with_context(|| format!("cannot reach hearth at {}", client.base_url()))?;
    page.models
        .into_iter()
        .next()
        .map(|m| m.name)
        .context("the server lists no model")
}
