//! `fileData` parts: the files they name are read before conversion, off
//! the async threads.

use std::collections::BTreeSet;
use std::sync::Arc;

use hearth_wire::Content;

use super::blocking;
use crate::convert::{file_id_from_uri, FileParts, ResolvedFile};
use crate::{ApiError, AppState};

/// Reads every file the `fileData` parts of `contents` name. An unknown or
/// expired file is Google's 403; URIs that name no file of ours are left to
/// the conversion, which refuses them naming the field. Without a store
/// nothing is read (and every `fileData` part is then a 403).
pub async fn file_parts<'a>(
    state: &AppState,
    contents: impl IntoIterator<Item = &'a Content>,
) -> Result<FileParts, ApiError> {
    let ids: BTreeSet<String> = contents
        .into_iter()
        .flat_map(|c| &c.parts)
        .filter_map(|p| p.file_data.as_ref())
        .filter_map(|fd| file_id_from_uri(&fd.file_uri))
        .collect();
    let mut parts = FileParts::default();
    let Some(store) = state.files.clone() else {
        return Ok(parts);
    };
    if ids.is_empty() {
        return Ok(parts);
    }
    // Files are read whole into the prompt: no more than a request body may hold.
    let limit = state.config.max_body_bytes as u64;
    let records = blocking(store.clone(), move |s| {
        ids.iter()
            .map(|id| s.get(id))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    if let Some(big) = records.iter().find(|r| r.size_bytes > limit) {
        return Err(ApiError::invalid(format!(
            "{} is {} bytes; hearth reads at most {limit} bytes of a file into a prompt (the request size limit, --max-body-mib)",
            big.name(),
            big.size_bytes
        )));
    }
    // All the files of one request together: no more than a request body
    // either, so that naming many stored files cannot hold more memory.
    let total: u64 = records.iter().map(|r| r.size_bytes).sum();
    if total > limit {
        return Err(ApiError::invalid(format!(
            "the {} files this request names hold {total} bytes together; hearth reads at most {limit} bytes of files into one prompt (the request size limit, --max-body-mib)",
            records.len()
        )));
    }
    let found = blocking(store, move |s| {
        records
            .into_iter()
            .map(|r| {
                s.read(&r.id)
                    .map(|(rec, bytes)| (r.id, rec.mime_type, bytes))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    for (id, mime_type, bytes) in found {
        parts.insert(
            id,
            ResolvedFile {
                mime_type,
                bytes: Arc::new(bytes),
            },
        );
    }
    Ok(parts)
}
