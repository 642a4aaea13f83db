//! The client's one error type.

/// What can go wrong talking to a Gemini API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a Google error body (or a non-2xx status):
    /// `code` is the HTTP status, `status` the google.rpc name
    /// (`INVALID_ARGUMENT`, `NOT_FOUND` …), `message` the server's words.
    /// Mid-stream `{"error": …}` events surface as this too.
    #[error("{code} {status}: {message}")]
    Api {
        code: u16,
        status: String,
        message: String,
        /// The whole error body, when it was JSON.
        details: Option<Box<serde_json::Value>>,
    },
    /// The request could not be sent or the answer not read (connection,
    /// TLS, timeout …).
    #[error("HTTP transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// A 2xx answer that is not what the API promises.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The client is not configured well enough to send anything.
    #[error("client configuration: {0}")]
    Config(String),
    /// Reading a file to upload failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// True for timeouts of the client's own deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_timeout())
    }

    /// Builds the error for a non-2xx answer from its status and body: a
    /// Google error body gives code, status and message; anything else keeps
    /// the reason phrase and the raw text (as both SDKs do).
    pub(crate) fn from_body(http: reqwest::StatusCode, body: &[u8]) -> Error {
        if let Some(err) = api_error(body) {
            return err;
        }
        Error::Api {
            code: http.as_u16(),
            status: http.canonical_reason().unwrap_or("UNKNOWN").to_string(),
            message: String::from_utf8_lossy(body).trim().to_string(),
            details: None,
        }
    }
}

/// `{"error": {"code": …, "message": …, "status": …}}` → `Error::Api`.
pub(crate) fn api_error(body: &[u8]) -> Option<Error> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    error_value(&value)
}

pub(crate) fn error_value(value: &serde_json::Value) -> Option<Error> {
    let err = value.get("error")?.as_object()?;
    let code = err.get("code")?.as_u64()?;
    if !(400..=599).contains(&code) {
        return None;
    }
    Some(Error::Api {
        code: u16::try_from(code).unwrap_or(500),
        status: err
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        message: err
            .get("message")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        details: Some(Box::new(value.clone())),
    })
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
