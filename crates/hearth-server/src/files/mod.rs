//! The Files API: files.get / list / delete, the upload endpoint
//! ([`upload`]), `fileData` resolution ([`resolve`]) and the expiry sweeper.

mod multipart;
pub mod resolve;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use hearth_store::{FileRecord, Store, StoreError};
use hearth_wire::{File, FileSource, FileState, ListFilesResponse};

use crate::request::{check_version, query};
use crate::{ApiError, AppState};

/// The store, or the answer of a server that has none.
pub(crate) fn store(state: &AppState) -> Result<Arc<Store>, ApiError> {
    state.files.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "The Files API is not enabled on this server (hearth serve enables it with a files directory, --files-dir).",
        )
    })
}

/// Runs a store call on a blocking thread.
pub(crate) async fn blocking<T, F>(store: Arc<Store>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| {
            tracing::error!("a file store task failed: {e}");
            ApiError::internal("Internal error in the file store.")
        })?
        .map_err(store_error)
}

/// Google's wording for a file that does not exist (or is not yours).
pub fn file_not_found(id: &str) -> ApiError {
    ApiError::permission_denied(format!(
        "You do not have permission to access the File {id} or it may not exist."
    ))
}

/// Store errors as Google's statuses.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(id) => file_not_found(&id),
        StoreError::UploadNotFound => ApiError::not_found(e.to_string()),
        StoreError::AlreadyExists(_) | StoreError::Busy => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        StoreError::QuotaExceeded(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
        StoreError::InvalidArgument(m) | StoreError::TooLarge(m) => ApiError::invalid(m),
        StoreError::OffsetMismatch { .. }
        | StoreError::SizeMismatch { .. }
        | StoreError::TooManyBytes { .. }
        | StoreError::MimeMismatch { .. }
        | StoreError::Body(_) => ApiError::invalid(e.to_string()),
        StoreError::Io { .. } | StoreError::Db { .. } => {
            tracing::error!("file store: {e}");
            ApiError::internal("Internal error in the file store; the server log has the details.")
        }
    }
}

/// `scheme://host` as the client addressed this server, for the URLs it
/// gets back (upload URLs, file URIs).
pub(crate) fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = match header("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => uri.scheme_str().unwrap_or("http"),
    };
    let valid = |h: &&str| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@\\".contains(&b))
    };
    let host = [
        header("x-forwarded-host"),
        header("host"),
        uri.authority().map(|a| a.as_str()),
    ]
    .into_iter()
    .flatten()
    .find(valid)
    .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// A stored file as the API shows it.
pub fn resource(rec: &FileRecord, base: &str, version: &str) -> File {
    File {
        name: Some(rec.name()),
        display_name: rec.display_name.clone(),
        mime_type: Some(rec.mime_type.clone()),
        size_bytes: Some(i64::try_from(rec.size_bytes).unwrap_or(i64::MAX)),
        create_time: Some(rfc3339(rec.create_time_us)),
        update_time: Some(rfc3339(rec.update_time_us)),
        expiration_time: Some(rfc3339(rec.expire_time_us)),
        sha256_hash: Some(rec.sha256_hash()),
        uri: Some(format!("{base}/{version}/files/{}", rec.id)),
        download_uri: None,
        state: Some(FileState::Active),
        source: Some(FileSource::Uploaded),
        error: None,
        video_metadata: None,
    }
}

/// RFC 3339 in UTC with microseconds: `2026-11-24T12:59:00.801506Z`.
pub fn rfc3339(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// GET /{version}/files?pageSize&pageToken
pub async fn list(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<ListFilesResponse>, ApiError> {
    check_version(&version)?;
    let q = query(&uri, &["pageSize", "pageToken"])?;
    let size = q
        .get("pageSize")
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid value at 'page_size' (TYPE_INT32), \"{s}\""
                ))
            })
        })
        .transpose()?;
    let token = q.get("pageToken").cloned();
    let store = store(&state)?;
    let page = blocking(store, move |s| s.list(size, token.as_deref())).await?;
    let base = base_url(&headers, &uri);
    Ok(Json(ListFilesResponse {
        files: page
            .files
            .iter()
            .map(|f| resource(f, &base, &version))
            .collect(),
        next_page_token: page.next_page_token,
    }))
}

/// GET /{version}/files/{id}
pub async fn get(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<File>, ApiError> {
    check_version(&version)?;
    query(&uri, &[])?;
    let store = store(&state)?;
    let rec = blocking(store, move |s| s.get(&id)).await?;
    Ok(Json(resource(&rec, &base_url(&headers, &uri), &version)))
}

/// DELETE /{version}/files/{id}: 200 with `{}` (the SDKs need a JSON 200).
pub async fn delete(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_version(&version)?;
    query(&uri, &[])?;
    let store = store(&state)?;
    blocking(store, move |s| s.delete(&id)).await?;
    Ok(Json(serde_json::json!({})))
}

/// Deletes expired files and abandoned uploads every `every`, for as long
/// as the runtime runs.
pub fn spawn_sweeper(store: Arc<Store>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.sweep()).await {
                Ok(Ok(r)) if r != hearth_store::SweepReport::default() => tracing::info!(
                    expired_files = r.expired_files,
                    abandoned_uploads = r.abandoned_uploads,
                    "files sweep"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("files sweep failed: {e}"),
                Err(e) => tracing::warn!("files sweep task failed: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_microseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_795_525_140_801_506),
            "2026-11-24T12:59:00.801506Z"
        );
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn the_base_url_is_the_one_the_client_used() {
        let mut h = HeaderMap::new();
        let uri: Uri = "/v1beta/files".parse().expect("uri");
        assert_eq!(base_url(&h, &uri), "http://localhost");
        h.insert("host", "127.0.0.1:8765".parse().expect("v"));
        assert_eq!(base_url(&h, &uri), "http://127.0.0.1:8765");
        h.insert("x-forwarded-proto", "https".parse().expect("v"));
        h.insert("x-forwarded-host", "api.example.com".parse().expect("v"));
        assert_eq!(base_url(&h, &uri), "https://api.example.com");
        h.insert("x-forwarded-host", "evil.com/path?".parse().expect("v"));
        assert_eq!(base_url(&h, &uri), "https://127.0.0.1:8765");
    }
}
