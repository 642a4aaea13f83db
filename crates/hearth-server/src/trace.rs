//! Every request gets an id: from the client's `x-request-id` when it is a
//! plain token, else a fresh one. It is on every log line written while the
//! request is handled (a `request{id=…}` span), in the `x-request-id`
//! response header, and in Google's `google.rpc.RequestInfo` detail of
//! error bodies. One access-log line per request (`hearth::access`): the
//! method, the path (never the query, which may hold `?key=`), the status
//! and the time to the response's head.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub(crate) fn current_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `f` as part of request `id` (for what is made outside the
/// request's task, such as a stream's later events).
pub(crate) fn in_request<R>(id: Option<&str>, f: impl FnOnce() -> R) -> R {
    match id {
        Some(id) => REQUEST_ID.sync_scope(id.to_string(), f),
        None => f(),
    }
}

/// A client's id is kept when it is 1 to 64 of `[A-Za-z0-9._-]`.
fn client_id(req: &Request) -> Option<String> {
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then(|| v.to_string())
}

pub async fn request(req: Request, next: Next) -> Response {
    let id = client_id(&req).unwrap_or_else(crate::generate::response_id);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", id = %id);
    let started = Instant::now();
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "hearth::access",
            %method,
            path,
            status = resp.status().as_u16(),
            ms = (started.elapsed().as_secs_f64() * 1e3).round(),
            "request"
        );
    });
    resp
}
