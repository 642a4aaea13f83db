//! PDF parts: read before conversion, in the document reader's worker
//! processes (hearth-document), never on the async threads or the engine's.

use std::sync::Arc;

use futures_util::future::try_join_all;
use hearth_document::{DocumentError, ReadOptions};
use hearth_engine::ModelInfo;
use hearth_wire::Content;

use crate::convert::{payloads, FileParts, Payload};
use crate::{ApiError, AppState};

pub const PDF: &str = "application/pdf";

/// The side pages are rendered to when the projector does not say.
const DEFAULT_PAGE_PX: u32 = 896;

/// Whether a declared MIME type is PDF.
pub fn is_pdf(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case(PDF)
}

/// Reads every PDF among the parts of `contents` (inline, or a stored
/// file already in `files`) into `files`, by the part's path. A model that
/// reads images gets each page's image as well as its text.
pub async fn read_documents(
    state: &AppState,
    contents: &[Content],
    info: &ModelInfo,
    files: &mut FileParts,
) -> Result<(), ApiError> {
    let Some(reader) = state.documents.clone() else {
        return Ok(());
    };
    files.set_reads_documents(true);
    let opts = ReadOptions {
        render_px: info
            .capabilities
            .reads("image/png")
            .then(|| info.capabilities.image_size.unwrap_or(DEFAULT_PAGE_PX)),
        ..ReadOptions::default()
    };
    let mut jobs = Vec::new();
    for Payload {
        at, field, bytes, ..
    } in payloads(contents, files, is_pdf)
    {
        let reader = reader.clone();
        jobs.push(async move {
            match reader.read(bytes, opts).await {
                Ok(doc) => Ok((at, Arc::new(doc))),
                Err(e) => Err(document_error(&field, e)),
            }
        });
    }
    for (at, doc) in try_join_all(jobs).await? {
        files.insert_document(at, doc);
    }
    Ok(())
}

fn document_error(field: &str, e: DocumentError) -> ApiError {
    if e.is_input_error() {
        return ApiError::field(field, e.to_string());
    }
    tracing::error!(%field, error = %e, "the document reader failed");
    ApiError::internal("reading the document failed on the server")
}
