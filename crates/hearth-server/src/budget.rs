//! Bounded resources at the edge, for the model methods (generateContent,
//! streamGenerateContent, countTokens):
//!
//! - **Body bytes.** Each request reserves its declared Content-Length (the
//!   largest body when it declares none) before its body is read, and gives
//!   it back when its handler returns. Uploads stream to disk and are
//!   bounded by the Files API's own limits instead.
//! - **Requests at once.** Each holds a permit until its response body has
//!   gone out (a stream's to its last event).
//! - **Deadlines.** A request ends at the server's deadline
//!   (`--request-timeout-secs`) or at the one its client sets with
//!   `X-Server-Timeout` (the SDKs' `httpOptions.timeout`, in seconds),
//!   whichever comes first: a unary call is then answered 504
//!   DEADLINE_EXCEEDED, a stream ends with that error as its last event,
//!   and the generation is cancelled.
//!
//! When bytes or permits are spent the answer is 429 RESOURCE_EXHAUSTED, as
//! Google answers an overloaded endpoint, and the client retries.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::{ApiError, AppState};

/// When a request must be answered by ([`limit`] puts it in the request's
/// extensions).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

/// Google's words for a request past its deadline.
pub fn deadline_exceeded() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "Deadline expired before operation could complete.",
    )
}

/// The client's deadline: `X-Server-Timeout`, in seconds.
fn client_timeout(req: &Request) -> Result<Option<Duration>, ApiError> {
    let Some(v) = req.headers().get("x-server-timeout") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Some(Duration::from_secs_f64(s.min(1e9))))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid X-Server-Timeout header {:?}: a number of seconds above 0 is expected.",
                String::from_utf8_lossy(v.as_bytes())
            ))
        })
}

pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path().starts_with("/upload/") {
        return next.run(req).await;
    }
    let Ok(permit) = state.requests.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Resource has been exhausted: the server runs as many requests as it may at once (serve --max-concurrent-requests); retry shortly.",
        )
        .into_response();
    };
    let timeout = match client_timeout(&req) {
        Ok(client) => match (client, state.config.request_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        Err(e) => return e.into_response(),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    if let Some(d) = deadline {
        req.extensions_mut().insert(Deadline(d));
    }
    let max = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(max)
        .min(max);
    let kib = u32::try_from(declared.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let Ok(bytes) = state.body_budget.clone().try_acquire_many_owned(kib) else {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Resource has been exhausted: the server holds as many request bytes as it may at once (serve --max-inflight-mib); retry shortly.",
        )
        .into_response();
    };
    let response = match deadline {
        // Dropping the handler's future at the deadline cancels its work.
        Some(d) => match tokio::time::timeout_at(d, next.run(req)).await {
            Ok(r) => r,
            Err(_) => deadline_exceeded().into_response(),
        },
        None => next.run(req).await,
    };
    drop(bytes);
    if response.body().is_end_stream() || response.body().size_hint().exact().is_some() {
        return response;
    }
    response.map(|body| {
        Body::new(Held {
            body,
            _permit: permit,
        })
    })
}

/// A streamed response body that holds its request's permit to its end.
struct Held {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
