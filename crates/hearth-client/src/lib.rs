//! A Rust client for the Gemini API, shaped like the official SDKs
//! (`@google/genai`, `google-genai`): `client.models()`, `client.chats()`,
//! `client.files()`. It speaks to Google's endpoint and to hearth alike;
//! only the base URL differs.
//!
//! ```no_run
//! # async fn demo() -> hearth_client::Result<()> {
//! let client = hearth_client::Client::from_env()?;
//! let response = client
//!     .models()
//!     .generate_content("gemini-2.5-flash", "How does AI work?", None)
//!     .await?;
//! println!("{}", response.text().unwrap_or_default());
//! # Ok(()) }
//! ```

mod chats;
mod config;
mod error;
mod files;
mod http;
mod models;
pub mod sse;

use std::time::Duration;

pub use chats::{Chat, Chats};
pub use config::{Config, IntoContents};
pub use error::{Error, Result};
pub use files::{guess_mime, inline_part, Files, UploadConfig};
/// The wire types (requests, responses, contents, files …).
pub use hearth_wire as types;
pub use http::RetryOptions;
pub use models::Models;

/// Google's endpoint, used when neither the builder nor the environment
/// names another one.
pub const GOOGLE_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The official SDKs' default API version.
pub const DEFAULT_API_VERSION: &str = "v1";

/// A Gemini API client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: http::Http,
}

impl Client {
    /// A client for Google's endpoint with this API key (API version `v1`).
    pub fn new(api_key: impl Into<String>) -> Result<Client> {
        Client::builder().api_key(api_key).build()
    }

    /// Configuration from the environment with the official SDKs'
    /// precedence: key `GOOGLE_API_KEY`, else `GEMINI_API_KEY`; base URL
    /// `GOOGLE_GEMINI_BASE_URL`, else Google's; API version
    /// `GOOGLE_GENAI_API_VERSION` (`beta` means `v1beta`), else `v1`.
    /// Without any key this fails, as the Python SDK does.
    pub fn from_env() -> Result<Client> {
        let builder = ClientBuilder::default().env();
        if builder.api_key.is_none() {
            return Err(Error::Config(
                "no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or pass one to Client::new"
                    .into(),
            ));
        }
        builder.build()
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// generateContent, streamGenerateContent, countTokens, models list/get.
    pub fn models(&self) -> Models {
        Models::new(self.http.clone())
    }

    /// Client-side chat sessions over generateContent.
    pub fn chats(&self) -> Chats {
        Chats::new(self.models())
    }

    /// The Files API: resumable uploads, get, list, delete.
    pub fn files(&self) -> Files {
        Files::new(self.http.clone())
    }

    /// The base URL requests go to (without the API version).
    pub fn base_url(&self) -> &str {
        &self.http.base_url
    }

    /// The API version in every path (`v1`, `v1beta`).
    pub fn api_version(&self) -> &str {
        &self.http.api_version
    }
}

/// Builds a [`Client`]. Every setting is optional; explicit settings win
/// over [`ClientBuilder::env`].
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    api_version: Option<String>,
    timeout: Option<Duration>,
    retry: Option<RetryOptions>,
}

impl ClientBuilder {
    /// The key sent as `x-goog-api-key`. Without one no key is sent (hearth
    /// without `--api-key` needs none; Google always does).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// `http://127.0.0.1:8080` for a local hearth. A path prefix is kept.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// `v1` or `v1beta` (`beta` is read as `v1beta`).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// A deadline for each request as a whole (for a stream: until its last
    /// event).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Opt-in retries on 408, 429, 500, 502, 503 and 504 with exponential
    /// back-off (off by default, as in the official SDKs).
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Fills what is still unset from the environment (see
    /// [`Client::from_env`] for the variables and their precedence).
    pub fn env(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if self.api_key.is_none() {
            self.api_key = var("GOOGLE_API_KEY").or_else(|| var("GEMINI_API_KEY"));
        }
        if self.base_url.is_none() {
            self.base_url = var("GOOGLE_GEMINI_BASE_URL");
        }
        if self.api_version.is_none() {
            self.api_version = var("GOOGLE_GENAI_API_VERSION");
        }
        self
    }

    pub fn build(self) -> Result<Client> {
        let base_url = self
            .base_url
            .unwrap_or_else(|| GOOGLE_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "base URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        let api_version = match self.api_version.as_deref() {
            None => DEFAULT_API_VERSION.to_string(),
            Some("beta") => "v1beta".to_string(),
            Some(v) => v.trim_matches('/').to_string(),
        };
        let http = http::Http::new(
            base_url,
            api_version,
            self.api_key,
            self.timeout,
            self.retry,
        )?;
        Ok(Client { http })
    }
}
