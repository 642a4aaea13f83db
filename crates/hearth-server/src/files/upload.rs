//! POST /upload/{version}/files: the resumable protocol exactly as both
//! official SDKs drive it (start, 8 MiB chunks, finalize; also query and
//! cancel), plus one-shot multipart and raw uploads for curl.
//!
//! The upload URL is the credential of its session: requests that carry a
//! live `upload_id` need no API key (see `auth.rs`).

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use hearth_store::{mime, Appended, Chunk, FileRecord, NewUpload, Store};
use hearth_wire::{CreateFileRequest, CreateFileResponse, File};

use super::{base_url, blocking, multipart, resource, store_error};
use crate::request::{check_version, query};
use crate::{ApiError, AppState};

/// The chunk size the SDKs use (and that the start answer announces).
pub const CHUNK_GRANULARITY: u64 = 8 * 1024 * 1024;
/// The start request's metadata body is small.
const START_BODY_LIMIT: usize = 64 * 1024;

/// What every kind of upload request needs.
struct Ctx {
    store: Arc<Store>,
    headers: HeaderMap,
    base: String,
    version: String,
}

impl Ctx {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn upload_url(&self, upload_id: &str) -> String {
        format!(
            "{}/upload/{}/files?upload_id={upload_id}&upload_protocol=resumable",
            self.base, self.version
        )
    }

    fn final_answer(&self, rec: &FileRecord) -> Response {
        let file = resource(rec, &self.base, &self.version);
        (
            [("x-goog-upload-status", "final")],
            Json(CreateFileResponse { file }),
        )
            .into_response()
    }
}

pub async fn upload(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&version)?;
    let q = query(&uri, &["upload_id", "upload_protocol", "uploadType"])?;
    let ctx = Ctx {
        store: super::store(&state)?,
        base: base_url(&headers, &uri),
        headers,
        version,
    };
    if let Some(id) = q.get("upload_id") {
        // Errors end the request with a non-active status, so that both SDKs
        // raise them at once instead of sending the next chunk.
        return Ok(session(&ctx, id, body)
            .await
            .unwrap_or_else(|e| ([("x-goog-upload-status", "final")], e).into_response()));
    }
    let protocol = ctx
        .header("x-goog-upload-protocol")
        .or(q.get("uploadType").map(String::as_str))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_multipart = ctx
        .header("content-type")
        .and_then(multipart::boundary)
        .is_some();
    match protocol.as_str() {
        "resumable" => start(&ctx, body).await,
        "multipart" => one_shot_multipart(&ctx, body, state.config.max_body_bytes).await,
        "" if is_multipart => one_shot_multipart(&ctx, body, state.config.max_body_bytes).await,
        "raw" | "media" => one_shot_raw(&ctx, body).await,
        "" => Err(ApiError::invalid(
            "Upload protocol missing: send X-Goog-Upload-Protocol: resumable (with X-Goog-Upload-Command: start), or a multipart/related body with ?uploadType=multipart.",
        )),
        other => Err(ApiError::invalid(format!(
            "Unsupported upload protocol \"{other}\": use resumable, multipart or raw."
        ))),
    }
}

/// `X-Goog-Upload-Command` as a set: "upload, finalize" -> {finalize, upload}.
fn commands(ctx: &Ctx) -> BTreeSet<String> {
    ctx.header("x-goog-upload-command")
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Resumable start: records the session and answers its URL.
async fn start(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    if !commands(ctx).contains("start") {
        return Err(ApiError::invalid(
            "A resumable upload begins with X-Goog-Upload-Command: start (its bytes then go to the X-Goog-Upload-URL of the answer).",
        ));
    }
    let bytes = axum::body::to_bytes(body, START_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "The upload's metadata body exceeds {START_BODY_LIMIT} bytes."
            ))
        })?;
    let file = metadata(&bytes)?.unwrap_or_default();
    let new = declared_upload(ctx, file, None)?;
    let (size, mime_type) = (new.size_bytes, new.mime_type.clone());
    let ticket = blocking(ctx.store.clone(), move |s| s.start_upload(new)).await?;
    let url = ctx.upload_url(&ticket.upload_id);
    let mut headers = vec![
        ("x-goog-upload-status", "active".to_string()),
        ("x-goog-upload-url", url.clone()),
        ("x-goog-upload-control-url", url),
        (
            "x-goog-upload-chunk-granularity",
            CHUNK_GRANULARITY.to_string(),
        ),
        ("x-goog-upload-header-content-length", size.to_string()),
    ];
    if let Some(m) = mime_type {
        headers.push(("x-goog-upload-header-content-type", m));
    }
    let mut resp = StatusCode::OK.into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

/// `{"file": {...}}` (or nothing). Google's own curl examples write this
/// JSON with single quotes, so that is accepted too.
fn metadata(bytes: &[u8]) -> Result<Option<File>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed = hearth_wire::from_slice::<CreateFileRequest>(bytes);
    let req = match parsed {
        Err(e) if bytes.contains(&b'\'') => {
            let relaxed = relax_quotes(&String::from_utf8_lossy(bytes));
            hearth_wire::from_slice::<CreateFileRequest>(relaxed.as_bytes()).map_err(|_| e)?
        }
        other => other?,
    };
    Ok(req.file)
}

/// Rewrites single-quoted JSON strings as double-quoted ones.
fn relax_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(d) = chars.next() {
                    out.push(d);
                    match d {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                out.push('"');
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => match chars.next() {
                            Some('\'') => out.push('\''),
                            Some(e) => {
                                out.push('\\');
                                out.push(e);
                            }
                            None => {}
                        },
                        '"' => out.push_str("\\\""),
                        '\'' => break,
                        other => out.push(other),
                    }
                }
                out.push('"');
            }
            other => out.push(other),
        }
    }
    out
}

/// The upload a start (or one-shot) request declares: size and MIME type
/// from the X-Goog-Upload-Header-* headers or the metadata, which must agree.
/// `actual`: the media's real (size, Content-Type) for one-shot uploads.
fn declared_upload(
    ctx: &Ctx,
    file: File,
    actual: Option<(u64, Option<&str>)>,
) -> Result<NewUpload, ApiError> {
    let header_len = ctx
        .header("x-goog-upload-header-content-length")
        .filter(|_| actual.is_none())
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::invalid(format!("Invalid X-Goog-Upload-Header-Content-Length: {v}"))
            })
        })
        .transpose()?;
    let meta_len = file
        .size_bytes
        .map(|n| {
            u64::try_from(n).map_err(|_| ApiError::invalid("file.sizeBytes must not be negative"))
        })
        .transpose()?;
    let first = header_len.or(actual.map(|a| a.0));
    let size_bytes = match (first, meta_len) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid(format!(
                "Size mismatch: the upload is {a} bytes but file.sizeBytes says {b}."
            )))
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(ApiError::invalid(
                "The upload's size is required: send X-Goog-Upload-Header-Content-Length (or file.sizeBytes).",
            ))
        }
    };
    let header_type = match actual {
        Some((_, ct)) => ct,
        None => ctx.header("x-goog-upload-header-content-type"),
    };
    let mime_type = match (
        header_type,
        file.mime_type.as_deref().filter(|m| !m.is_empty()),
    ) {
        (Some(a), Some(b)) if !mime::same(a, b) => {
            return Err(ApiError::invalid(format!(
                "MIME type mismatch: the upload says {a} but file.mimeType says {b}."
            )))
        }
        (_, Some(m)) | (Some(m), None) => Some(m.to_string()),
        (None, None) => None,
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(NewUpload {
        name: non_empty(file.name),
        display_name: non_empty(file.display_name),
        mime_type,
        size_bytes,
    })
}

/// A request to an open session: upload / finalize / query / cancel.
async fn session(ctx: &Ctx, upload_id: &str, body: Body) -> Result<Response, ApiError> {
    let cmds = commands(ctx);
    let id = upload_id.to_string();
    if cmds.is_empty() {
        return Err(ApiError::invalid(
            "X-Goog-Upload-Command is required: upload, upload, finalize, finalize, query or cancel.",
        ));
    }
    if cmds.contains("start") {
        return Err(ApiError::invalid(
            "This upload has already started: send its bytes with X-Goog-Upload-Command: upload (and finalize with the last chunk).",
        ));
    }
    if cmds.contains("query") {
        let st = blocking(ctx.store.clone(), move |s| s.upload_status(&id)).await?;
        return Ok(active(st.received));
    }
    if cmds.contains("cancel") {
        blocking(ctx.store.clone(), move |s| s.cancel_upload(&id)).await?;
        return Ok(([("x-goog-upload-status", "cancelled")], "").into_response());
    }
    let (is_upload, finalize) = (cmds.contains("upload"), cmds.contains("finalize"));
    if !is_upload && !finalize {
        let shown: Vec<&str> = cmds.iter().map(String::as_str).collect();
        return Err(ApiError::invalid(format!(
            "Unknown X-Goog-Upload-Command: {}",
            shown.join(", ")
        )));
    }
    let offset = match ctx.header("x-goog-upload-offset") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("Invalid X-Goog-Upload-Offset: {v}")))?,
        None if !is_upload => {
            let id = id.clone();
            blocking(ctx.store.clone(), move |s| s.upload_status(&id))
                .await?
                .received
        }
        None => {
            return Err(ApiError::invalid(
                "X-Goog-Upload-Offset is required with X-Goog-Upload-Command: upload.",
            ))
        }
    };
    let chunk = Chunk {
        offset,
        length: content_length(&ctx.headers),
        finalize,
    };
    match append_streamed(ctx.store.clone(), id, chunk, body).await? {
        Appended::Active { received } => Ok(active(received)),
        Appended::Final(rec) => Ok(ctx.final_answer(&rec)),
    }
}

fn active(received: u64) -> Response {
    (
        [
            ("x-goog-upload-status", "active".to_string()),
            ("x-goog-upload-size-received", received.to_string()),
        ],
        "",
    )
        .into_response()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Streams the request body into the store on a blocking thread, so a
/// chunk of any size never sits in memory whole.
async fn append_streamed(
    store: Arc<Store>,
    upload_id: String,
    chunk: Chunk,
    body: Body,
) -> Result<Appended, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let writer = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        store.append(&upload_id, chunk, &mut reader)
    });
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let item = frame.map_err(io::Error::other);
        let failed = item.is_err();
        // A closed channel: the store is done (or refused the chunk).
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    writer
        .await
        .map_err(|e| {
            tracing::error!("an upload task failed: {e}");
            ApiError::internal("Internal error in the file store.")
        })?
        .map_err(store_error)
}

/// The async body as a blocking `Read`.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Starts and finishes an upload in one go; a refused upload is cancelled.
async fn one_shot(ctx: &Ctx, new: NewUpload, body: Body) -> Result<Response, ApiError> {
    let length = Some(new.size_bytes);
    let ticket = blocking(ctx.store.clone(), move |s| s.start_upload(new)).await?;
    let chunk = Chunk {
        offset: 0,
        length,
        finalize: true,
    };
    let id = ticket.upload_id.clone();
    match append_streamed(ctx.store.clone(), id, chunk, body).await {
        Ok(Appended::Final(rec)) => Ok(ctx.final_answer(&rec)),
        outcome => {
            let id = ticket.upload_id;
            let _ = blocking(ctx.store.clone(), move |s| s.cancel_upload(&id)).await;
            Err(outcome
                .err()
                .unwrap_or_else(|| ApiError::internal("the upload did not finish")))
        }
    }
}

/// `multipart/related` (or form-data): metadata part, then media part.
async fn one_shot_multipart(ctx: &Ctx, body: Body, limit: usize) -> Result<Response, ApiError> {
    let ct = ctx.header("content-type").unwrap_or_default().to_string();
    let boundary = multipart::boundary(&ct).ok_or_else(|| {
        ApiError::invalid("A multipart upload needs Content-Type: multipart/related; boundary=...")
    })?;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::invalid(format!(
            "Request payload size exceeds the limit: {limit} bytes. Upload large files with the resumable protocol."
        ))
    })?;
    let parts = multipart::parse(&bytes, &boundary).map_err(ApiError::invalid)?;
    let (meta, media) = match parts.as_slice() {
        [media] => (None, media),
        [meta, media] => (metadata(&bytes[meta.body.clone()])?, media),
        _ => return Err(ApiError::invalid("A multipart upload needs a media part.")),
    };
    let data = bytes.slice(media.body.clone());
    let media_type = media
        .content_type
        .as_deref()
        .filter(|t| !t.eq_ignore_ascii_case("application/octet-stream"));
    let new = declared_upload(
        ctx,
        meta.unwrap_or_default(),
        Some((data.len() as u64, media_type)),
    )?;
    one_shot(ctx, new, Body::from(data)).await
}

/// The bytes as the body, their type as Content-Type (`uploadType=media`).
async fn one_shot_raw(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let size = content_length(&ctx.headers)
        .ok_or_else(|| ApiError::invalid("A raw upload needs a Content-Length."))?;
    let media_type = ctx.header("content-type").filter(|t| {
        let t = t.to_ascii_lowercase();
        !t.starts_with("application/x-www-form-urlencoded")
            && !t.starts_with("application/octet-stream")
    });
    let new = declared_upload(ctx, File::default(), Some((size, media_type)))?;
    one_shot(ctx, new, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_quoted_metadata_is_accepted() {
        let f = metadata(b"{'file': {'display_name': 'organ \\'pic\\' \"1\"'}}")
            .expect("relaxed")
            .expect("file");
        assert_eq!(f.display_name.as_deref(), Some("organ 'pic' \"1\""));
        let f = metadata(br#"{"file": {"mimeType": "text/plain", "sizeBytes": "5"}}"#)
            .expect("strict")
            .expect("file");
        assert_eq!(f.size_bytes, Some(5));
        assert!(metadata(b"  ").expect("empty").is_none());
        assert!(
            metadata(b"{'file': {'bogus': 1}}").is_err(),
            "unknown fields still refused"
        );
    }
}
