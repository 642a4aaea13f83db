//! POST models/{model}:generateContent | :streamGenerateContent | :countTokens

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_engine::Engine;
use hearth_wire::{CountTokensRequest, CountTokensResponse, GenerateContentRequest};

use crate::auth::CacheScope;
use crate::budget::Deadline;
use crate::convert::{self, CandidateSet, FileParts, ResponseMeta, ValidRequest};
use crate::documents::read_documents;
use crate::files::resolve::file_parts;
use crate::models::not_found;
use crate::request::{body_bytes, check_version, parse_json, query};
use crate::stream::{self, Framing};
use crate::video::read_videos;
use crate::{ApiError, AppState};

pub async fn dispatch(
    State(state): State<AppState>,
    Path((version, segment)): Path<(String, String)>,
    scope: Option<axum::Extension<CacheScope>>,
    deadline: Option<axum::Extension<Deadline>>,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = scope.map_or(0, |s| s.0 .0);
    // The body is read before anything is checked: a client still sending
    // a large body when the answer (a 404, a bad query) comes would see
    // its connection cut rather than the answer.
    let bytes = body_bytes(body, state.config.max_body_bytes).await;
    check_version(&version)?;
    let Some((model, method)) = segment.rsplit_once(':') else {
        return Err(ApiError::not_found(
            "The requested URL was not found on this server.",
        ));
    };
    let engine = match method {
        "generateContent" | "streamGenerateContent" | "countTokens" => state
            .registry
            .resolve(model)
            .ok_or_else(|| not_found(model, &version, Some(method)))?,
        other => return Err(not_found(model, &version, Some(other))),
    };
    let model = model.to_string();
    // What costs CPU (parsing, base64 decoding, rendering, tokenizing)
    // runs in the preparation pool ([`AppState::prepare`]); reading the
    // body, stored files and documents is I/O and stays here.
    match method {
        "countTokens" => {
            query(&uri, &[])?;
            let bytes = bytes?;
            let req: CountTokensRequest = state.prepare(move || parse_json(&bytes)).await?;
            let mut read: Vec<&hearth_wire::Content> = req.contents.iter().flatten().collect();
            if let Some(g) = &req.generate_content_request {
                read.extend(g.contents.iter().chain(&g.system_instruction));
            }
            let mut files = file_parts(&state, read).await?;
            let contents = match (&req.contents, &req.generate_content_request) {
                (Some(c), _) => c.as_slice(),
                (None, Some(g)) => g.contents.as_slice(),
                (None, None) => &[],
            };
            read_documents(&state, contents, engine.info(), &mut files).await?;
            read_videos(contents, engine.info(), &mut files).await?;
            state
                .prepare(move || count_tokens(engine, req, &files))
                .await
                .map(IntoResponse::into_response)
        }
        "generateContent" => {
            query(&uri, &[])?;
            let bytes = bytes?;
            let req: GenerateContentRequest = state.prepare(move || parse_json(&bytes)).await?;
            let mut files =
                file_parts(&state, req.contents.iter().chain(&req.system_instruction)).await?;
            read_documents(&state, &req.contents, engine.info(), &mut files).await?;
            read_videos(&req.contents, engine.info(), &mut files).await?;
            let id = engine.info().id.clone();
            let (events, meta) = state
                .prepare(move || begin(&engine, req, &model, &files, scope))
                .await?;
            let mut meter = state.metrics.meter(&id);
            let mut set = CandidateSet::new(meta);
            // Dropping `events` (client gone: this future is dropped) cancels.
            let mut events = events;
            while let Some(ev) = events.recv().await {
                meter.observe(&ev);
                set.push(ev)?;
            }
            set.finish().map(|r| Json(r).into_response())
        }
        _ => {
            let q = query(&uri, &[])?;
            let framing = match crate::request::alt(&q)? {
                crate::request::Alt::Sse => Framing::Sse,
                crate::request::Alt::Json | crate::request::Alt::Default => Framing::JsonArray,
            };
            let bytes = bytes?;
            let req: GenerateContentRequest = state.prepare(move || parse_json(&bytes)).await?;
            let mut files =
                file_parts(&state, req.contents.iter().chain(&req.system_instruction)).await?;
            read_documents(&state, &req.contents, engine.info(), &mut files).await?;
            read_videos(&req.contents, engine.info(), &mut files).await?;
            let id = engine.info().id.clone();
            let (events, meta) = state
                .prepare(move || begin(&engine, req, &model, &files, scope))
                .await?;
            Ok(stream::response(
                events,
                convert::ChunkBuilder::new(meta),
                framing,
                state.metrics.meter(&id),
                deadline.map(|d| d.0 .0),
            ))
        }
    }
}

/// Validates a generation request and hands it to the engine (which
/// renders and tokenizes it): its events and what its response needs.
fn begin(
    engine: &Arc<dyn Engine>,
    req: GenerateContentRequest,
    model: &str,
    files: &FileParts,
    scope: u64,
) -> Result<(hearth_engine::EventStream, ResponseMeta), ApiError> {
    let (mut valid, meta) = start(engine, req, model, files)?;
    valid.engine.cache_scope = scope;
    valid.engine.span = hearth_engine::LogSpan(tracing::Span::current());
    let field = valid.schema_field;
    let events = engine
        .generate(valid.engine)
        .map_err(|e| ApiError::from_engine(e, field))?;
    Ok((events, meta))
}

fn start(
    engine: &Arc<dyn Engine>,
    req: GenerateContentRequest,
    model: &str,
    files: &FileParts,
) -> Result<(ValidRequest, ResponseMeta), ApiError> {
    let valid = convert::validate(req, model, engine.info(), files)?;
    let meta = ResponseMeta {
        response_id: response_id(),
        model_version: engine.info().id.clone(),
        include_thoughts: valid.include_thoughts,
        response_logprobs: valid.response_logprobs,
        candidate_count: valid.engine.candidate_count,
    };
    Ok((valid, meta))
}

fn count_tokens(
    engine: Arc<dyn Engine>,
    req: CountTokensRequest,
    files: &FileParts,
) -> Result<Json<CountTokensResponse>, ApiError> {
    let prompt = convert::count_request_prompt(&req, engine.info(), files)?;
    let counts = engine.count_tokens(&prompt)?;
    Ok(Json(CountTokensResponse {
        total_tokens: i32::try_from(counts.total).unwrap_or(i32::MAX),
        cached_content_token_count: None,
        prompt_tokens_details: Some(convert::prompt_details(counts)),
        cache_tokens_details: None,
    }))
}

/// A fresh response id: 22 lowercase base-32 characters from the process's
/// randomly keyed hasher.
pub(crate) fn response_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(22);
    for half in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(half);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let mut v = h.finish();
        for _ in 0..11 {
            out.push(ALPHABET[(v & 31) as usize] as char);
            v >>= 5;
        }
    }
    out
}
