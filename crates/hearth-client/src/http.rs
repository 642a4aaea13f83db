//! Requests: URLs, headers, retries and error decoding, shared by every
//! service.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Opt-in retries with exponential back-off.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryOptions {
    /// Attempts in all, the first included (so 1 means no retry).
    pub attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Each delay is the previous one times this.
    pub multiplier: f64,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            attempts: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

impl RetryOptions {
    fn delay(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        self.initial_delay.mul_f64(factor).min(self.max_delay)
    }
}

/// The statuses both official SDKs retry on.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

const USER_AGENT: &str = concat!("hearth-client/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) api_version: String,
    api_key: Option<String>,
    timeout: Option<Duration>,
    retry: Option<RetryOptions>,
}

/// One request to send (rebuilt for every attempt).
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<bytes::Bytes>,
    /// False for upload bytes: their URL is the credential.
    pub with_key: bool,
    pub query: &'a [(&'a str, String)],
}

impl Http {
    pub(crate) fn new(
        base_url: String,
        api_version: String,
        api_key: Option<String>,
        timeout: Option<Duration>,
        retry: Option<RetryOptions>,
    ) -> Result<Http> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-goog-api-client"),
            HeaderValue::from_static(USER_AGENT),
        );
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .build()?;
        Ok(Http {
            client,
            base_url,
            api_version,
            api_key,
            timeout,
            retry,
        })
    }

    /// `base/version/path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.base_url, self.api_version, path)
    }

    /// `base/upload/version/path` (the Files API's upload endpoint).
    pub(crate) fn upload_url(&self, path: &str) -> String {
        format!("{}/upload/{}/{}", self.base_url, self.api_version, path)
    }

    /// A call to `url` with a JSON body (or none).
    pub(crate) fn json_call<'a>(
        method: Method,
        url: String,
        body: Option<&impl serde::Serialize>,
        query: &'a [(&'a str, String)],
    ) -> Result<Call<'a>> {
        let body = match body {
            Some(b) => Some(bytes::Bytes::from(serde_json::to_vec(b).map_err(|e| {
                Error::Config(format!("request does not serialize: {e}"))
            })?)),
            None => None,
        };
        Ok(Call {
            method,
            url,
            headers: Vec::new(),
            body,
            with_key: true,
            query,
        })
    }

    /// Sends with the configured retries; any non-2xx answer is an error.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response> {
        let attempts = self.retry.as_ref().map_or(1, |r| r.attempts.max(1));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= attempts;
            let resp = match self.send_once(call).await {
                Ok(resp) => resp,
                Err(e) if !last && (e.is_connect() || e.is_timeout()) => {
                    self.back_off(attempt).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if !last && retryable(status) {
                self.back_off(attempt).await;
                continue;
            }
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::from_body(status, &body));
        }
    }

    async fn back_off(&self, attempt: u32) {
        if let Some(retry) = &self.retry {
            tokio::time::sleep(retry.delay(attempt - 1)).await;
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> reqwest::Result<reqwest::Response> {
        let mut req = self
            .client
            .request(call.method.clone(), &call.url)
            .header("content-type", "application/json");
        if !call.query.is_empty() {
            req = req.query(call.query);
        }
        if call.with_key {
            if let Some(key) = &self.api_key {
                req = req.header("x-goog-api-key", key);
            }
        }
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(timeout) = self.timeout {
            req = req.timeout(timeout);
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        req.send().await
    }

    /// Sends and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T> {
        let resp = self.send(call).await?;
        let body = resp.bytes().await?;
        decode(&body)
    }
}

/// `pageSize` / `pageToken` of a list call.
pub(crate) fn page_query(
    page_size: Option<u32>,
    page_token: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(size) = page_size {
        query.push(("pageSize", size.to_string()));
    }
    if let Some(token) = page_token {
        query.push(("pageToken", token.to_string()));
    }
    query
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "{e} in answer: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_is_capped() {
        let r = RetryOptions {
            attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            multiplier: 2.0,
        };
        assert_eq!(r.delay(0), Duration::from_millis(100));
        assert_eq!(r.delay(1), Duration::from_millis(200));
        assert_eq!(r.delay(2), Duration::from_millis(300));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::BAD_REQUEST));
    }
}
