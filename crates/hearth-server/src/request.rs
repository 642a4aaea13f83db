//! Reading request bodies and query strings with Google's errors.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Query;
use axum::http::Uri;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Reads and decodes a JSON body, at most `limit` bytes.
/// A request body, at most `limit` bytes (Google's 400 beyond).
pub async fn body_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::invalid(format!(
                "Request payload size exceeds the limit: {limit} bytes."
            ))
        } else {
            ApiError::invalid(format!("Could not read the request body: {e}"))
        }
    })
}

/// A JSON request body (an empty one is `{}`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return hearth_wire::from_slice(b"{}").map_err(ApiError::from);
    }
    hearth_wire::from_slice(bytes).map_err(ApiError::from)
}

/// Query parameters; any name outside `allowed` (and the system parameters
/// every method takes) is refused as Google refuses it.
pub fn query(uri: &Uri, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    const SYSTEM: &[&str] = &["key", "alt", "$alt", "prettyPrint"];
    let Query(q) = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map_err(|e| ApiError::invalid(format!("Invalid query string: {e}")))?;
    for name in q.keys() {
        if !allowed.contains(&name.as_str()) && !SYSTEM.contains(&name.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field '{name}' could not be found in request message."
            )));
        }
    }
    alt(&q)?;
    Ok(q)
}

/// The response framing a request asks for with Google's `alt` (or `$alt`)
/// system parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alt {
    /// Not given.
    Default,
    Json,
    Sse,
}

/// `alt` / `$alt`: `json` or `sse`, optionally with `;enum-encoding=int`
/// (the legacy Python SDK sends `$alt=json;enum-encoding=int` on every
/// call). Proto JSON readers take enum names as well as numbers, so hearth
/// answers with names either way; any other value is a 400.
pub fn alt(q: &HashMap<String, String>) -> Result<Alt, ApiError> {
    let Some(raw) = q.get("alt").or_else(|| q.get("$alt")) else {
        return Ok(Alt::Default);
    };
    let mut parts = raw.split(';').map(str::trim);
    let framing = match parts.next() {
        Some("json") => Alt::Json,
        Some("sse") => Alt::Sse,
        _ => return Err(bad_alt(raw)),
    };
    for param in parts {
        match param.split_once('=') {
            Some(("enum-encoding", "int" | "string")) => {}
            _ => return Err(bad_alt(raw)),
        }
    }
    Ok(framing)
}

fn bad_alt(raw: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value for alt: {raw} (use sse or json, optionally with ;enum-encoding=int)"
    ))
}

/// `v1` and `v1beta` are served alike; anything else is not found.
pub fn check_version(version: &str) -> Result<(), ApiError> {
    match version {
        "v1" | "v1beta" => Ok(()),
        _ => Err(ApiError::not_found(
            "The requested URL was not found on this server.",
        )),
    }
}
