//! API keys: `x-goog-api-key` header or `?key=`, checked when configured.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let given = header.or_else(|| query_key(req.uri()));
    match given {
        None => ApiError::permission_denied(
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        )
        .into_response(),
        Some(k) if keys.iter().any(|good| bool::from(good.as_bytes().ct_eq(k.as_bytes()))) => next.run(req).await,
        Some(_) => ApiError::invalid("API key not valid. Please pass a valid API key.").into_response(),
    }
}

fn query_key(uri: &axum::http::Uri) -> Option<String> {
    let Query(q) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
    q.get("key").cloned()
}
