//! API keys: `x-goog-api-key` header or `?key=`, checked when configured.
//! One exception: the bytes of a resumable upload go to the upload URL,
//! which is itself the credential (the Python SDK sends no key with them).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_store::Store;
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// Whose request this is, for prefix reuse: the n-th configured API key is
/// scope n + 1 (0: no keys, one shared scope). Set by [`require_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheScope(pub u64);

/// The 1-based index of the key `given` among `keys`, 0 if none: SHA-256
/// digests compared in constant time against every key, so neither the
/// time taken nor an early exit says how much of a key, its length, or
/// which key, matched.
fn key_index(keys: &[String], given: &str) -> u64 {
    use sha2::{Digest, Sha256};
    use subtle::ConditionallySelectable;
    let digest = Sha256::digest(given.as_bytes());
    let mut found = 0u64;
    for (i, good) in keys.iter().enumerate() {
        let same = Sha256::digest(good.as_bytes()).ct_eq(&digest);
        found = u64::conditional_select(&found, &(i as u64 + 1), same);
    }
    found
}

pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return next.run(req).await;
    }
    if let Some((store, id)) = upload_session(&state, &req) {
        let live = tokio::task::spawn_blocking(move || store.upload_status(&id).is_ok())
            .await
            .unwrap_or(false);
        if live {
            return next.run(req).await;
        }
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
        Some(k) => match key_index(keys, &k) {
            0 => ApiError::invalid("API key not valid. Please pass a valid API key.").into_response(),
            n => {
                req.extensions_mut().insert(CacheScope(n));
                next.run(req).await
            }
        },
    }
}

fn query_key(uri: &axum::http::Uri) -> Option<String> {
    query_param(uri, "key")
}

fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    let Query(q) = Query::<HashMap<String, String>>::try_from_uri(uri).ok()?;
    q.get(name).cloned()
}

/// For `POST /upload/{v1|v1beta}/files?upload_id=<id>`: the store and the
/// id to check. When `<id>` names an open upload session, the request
/// carries its own credential.
fn upload_session(state: &AppState, req: &Request) -> Option<(Arc<Store>, String)> {
    let store = state.files.clone()?;
    let path = req.uri().path();
    let upload_path = matches!(path, "/upload/v1/files" | "/upload/v1beta/files");
    if req.method() != Method::POST || !upload_path {
        return None;
    }
    let id = query_param(req.uri(), "upload_id")?;
    hearth_store::names::is_upload_id(&id).then_some((store, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_index_and_nothing_else_matches() {
        let keys = vec![
            "alpha".to_string(),
            "beta-longer".to_string(),
            "gamma".to_string(),
        ];
        assert_eq!(key_index(&keys, "alpha"), 1);
        assert_eq!(key_index(&keys, "beta-longer"), 2);
        assert_eq!(key_index(&keys, "gamma"), 3);
        for wrong in ["", "alph", "alphaa", "beta", "GAMMA", "gamma "] {
            assert_eq!(key_index(&keys, wrong), 0, "{wrong:?}");
        }
    }
}
