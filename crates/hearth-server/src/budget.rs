//! Bounded memory at the edge: the bytes of model-method bodies
//! (generateContent, streamGenerateContent, countTokens) that all requests
//! together hold at once. Each such request reserves its declared
//! Content-Length (the largest body when it declares none) before its body
//! is read, and gives it back when its handler returns; when the budget is
//! spent it is answered 429 RESOURCE_EXHAUSTED, as Google answers an
//! overloaded endpoint, and the client retries. Uploads stream to disk and
//! are bounded by the Files API's own limits instead.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

pub async fn hold_body_bytes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path().starts_with("/upload/") {
        return next.run(req).await;
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
    match state.body_budget.clone().try_acquire_many_owned(kib) {
        Ok(held) => {
            let response = next.run(req).await;
            drop(held);
            response
        }
        Err(_) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Resource has been exhausted: the server holds as many request bytes as it may at once (serve --max-inflight-mib); retry shortly.",
        )
        .into_response(),
    }
}
