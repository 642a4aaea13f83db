//! Gemini <-> engine translation, the only place that knows both sides.
//! Requests are validated on the way in: every field is honoured or turned
//! into a 400 that names it.

pub mod config;
mod prompt;
mod response;
mod schema;

pub use prompt::{count_request_prompt, prompt_from_contents};
pub use response::{prompt_details, CandidateSet, ChunkBuilder, ResponseMeta};
pub use schema::schema_to_json;

use std::collections::HashMap;
use std::sync::Arc;

use hearth_engine::{GenerateRequest, ModelInfo};
use hearth_wire::GenerateContentRequest;

use crate::error::ApiError;

/// A generateContent request the engine can run as is.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    pub engine: GenerateRequest,
    /// Return thought parts (they are always counted).
    pub include_thoughts: bool,
    /// Return logprobsResult.
    pub response_logprobs: bool,
    /// Where the request's schema came from (engine errors about the
    /// schema name this field).
    pub schema_field: &'static str,
}

/// The uploaded files a request refers to (`fileData`), by file id,
/// resolved before conversion (the store is read off the async threads).
#[derive(Debug, Clone, Default)]
pub struct FileParts {
    files: HashMap<String, ResolvedFile>,
    /// Documents read before conversion (off the async threads, in worker
    /// processes), by the path of their part: `contents[i].parts[j]`.
    documents: HashMap<String, Arc<hearth_document::Document>>,
    /// Videos read before conversion ([`crate::video`]), by part path.
    videos: HashMap<String, Arc<Vec<hearth_engine::VideoPart>>>,
    /// Whether this server reads documents at all.
    reads_documents: bool,
}

/// A stored file's type and bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedFile {
    pub mime_type: String,
    pub bytes: Arc<Vec<u8>>,
}

impl FileParts {
    pub fn insert(&mut self, id: String, file: ResolvedFile) {
        self.files.insert(id, file);
    }

    pub fn get(&self, id: &str) -> Option<&ResolvedFile> {
        self.files.get(id)
    }

    pub fn insert_document(&mut self, at: String, doc: Arc<hearth_document::Document>) {
        self.documents.insert(at, doc);
    }

    pub fn document(&self, at: &str) -> Option<&Arc<hearth_document::Document>> {
        self.documents.get(at)
    }

    pub fn insert_video(&mut self, at: String, video: Arc<Vec<hearth_engine::VideoPart>>) {
        self.videos.insert(at, video);
    }

    pub fn video(&self, at: &str) -> Option<&Arc<Vec<hearth_engine::VideoPart>>> {
        self.videos.get(at)
    }

    pub fn set_reads_documents(&mut self, yes: bool) {
        self.reads_documents = yes;
    }

    pub fn reads_documents(&self) -> bool {
        self.reads_documents
    }
}

/// Proto `bytes` in JSON: standard or URL-safe base64, padded or not.
pub fn base64_bytes(data: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let d = data.trim();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(d).ok())
}

/// A part whose bytes are read before conversion (a PDF, a video).
pub struct Payload<'a> {
    /// `contents[i].parts[j]`.
    pub at: String,
    /// `….inline_data` or `….file_data`: where its errors point.
    pub field: String,
    pub part: &'a hearth_wire::Part,
    pub bytes: Arc<Vec<u8>>,
}

/// The parts of `contents` whose declared type (inline) or stored type
/// (`fileData`, already in `files`) `wanted` picks, with their bytes. Bad
/// base64 is skipped here: the conversion answers it, naming the part.
pub fn payloads<'a>(
    contents: &'a [hearth_wire::Content],
    files: &FileParts,
    wanted: impl Fn(&str) -> bool,
) -> Vec<Payload<'a>> {
    let mut out = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        for (j, part) in content.parts.iter().enumerate() {
            let at = format!("contents[{i}].parts[{j}]");
            let (field, bytes) = if let Some(blob) = part.inline_data.as_ref() {
                if !wanted(&blob.mime_type) {
                    continue;
                }
                let Some(bytes) = base64_bytes(&blob.data) else {
                    continue;
                };
                (format!("{at}.inline_data"), Arc::new(bytes))
            } else if let Some(fd) = part.file_data.as_ref() {
                let file = file_id_from_uri(&fd.file_uri).and_then(|id| files.get(&id));
                let Some(file) = file.filter(|f| wanted(&f.mime_type)) else {
                    continue;
                };
                (format!("{at}.file_data"), file.bytes.clone())
            } else {
                continue;
            };
            out.push(Payload {
                at,
                field,
                part,
                bytes,
            });
        }
    }
    out
}

/// The file id a `fileData.fileUri` names: `files/<id>`, or a File
/// resource's uri `<any base>/v1beta/files/<id>` (or `/v1/`).
pub fn file_id_from_uri(uri: &str) -> Option<String> {
    let uri = uri.trim();
    let id = match uri.strip_prefix("files/") {
        Some(id) => id,
        None => {
            let (before, id) = uri.rsplit_once("/files/")?;
            if !(before.ends_with("/v1beta") || before.ends_with("/v1")) {
                return None;
            }
            id
        }
    };
    hearth_store::names::parse_file_id(id).ok()
}

/// Validates a request against the model that will run it; `files` holds
/// the bytes of the files its `fileData` parts name.
pub fn validate(
    req: GenerateContentRequest,
    path_model: &str,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<ValidRequest, ApiError> {
    if let Some(m) = &req.model {
        let bare = |s: &str| s.strip_prefix("models/").unwrap_or(s).to_string();
        if bare(m) != bare(path_model) {
            return Err(ApiError::field(
                "model",
                format!("the body names {m} but the URL names {path_model}"),
            ));
        }
    }
    if let Some(c) = &req.cached_content {
        return Err(ApiError::permission_denied(format!(
            "CachedContent not found (or permission denied): {c}. hearth has no cachedContents yet; \
             it reuses the KV of repeated prompt prefixes by itself."
        )));
    }
    let tools = prompt::function_tools(req.tools.as_deref(), info)?;
    let tool_choice = prompt::tool_choice(req.tool_config.as_ref(), &tools)?;
    let prompt = prompt_from_contents(
        &req.contents,
        req.system_instruction.as_ref(),
        tools,
        info,
        files,
    )?;
    if prompt
        .turns
        .last()
        .is_some_and(|t| t.role == hearth_engine::Role::Model)
    {
        return Err(ApiError::field(
            &format!("contents[{}].role", req.contents.len() - 1),
            "the last turn must be a user turn (role \"user\"): hearth answers the user, it does not extend a model turn",
        ));
    }
    let schema_field = match &req.generation_config {
        Some(c) if c.response_json_schema.is_some() => "generation_config.response_json_schema",
        _ => "generation_config.response_schema",
    };
    let cfg = config::validate_config(req.generation_config.unwrap_or_default(), info)?;
    let mut prompt = prompt;
    prompt::apply_media_resolution(&mut prompt, cfg.media_resolution);
    // safetySettings: decoded (categories and thresholds checked by the
    // parser) and accepted; hearth does not filter (README).
    Ok(ValidRequest {
        engine: GenerateRequest {
            prompt,
            sampling: cfg.sampling,
            max_output_tokens: cfg.max_output_tokens,
            stop_sequences: cfg.stop_sequences,
            candidate_count: cfg.candidate_count,
            logprobs: cfg.logprobs,
            thinking: cfg.thinking,
            constraint: cfg.constraint,
            tool_choice,
            media_resolution: cfg.media_resolution,
            // Set by the handler from the request's API key and span.
            cache_scope: 0,
            span: hearth_engine::LogSpan::default(),
        },
        include_thoughts: cfg.include_thoughts,
        response_logprobs: cfg.logprobs.is_some(),
        schema_field,
    })
}

#[cfg(test)]
mod tests {
    use super::file_id_from_uri;

    #[test]
    fn file_uris_name_their_file() {
        for (uri, id) in [
            ("files/abc123", Some("abc123")),
            ("http://127.0.0.1:8765/v1beta/files/abc123", Some("abc123")),
            (
                "https://generativelanguage.googleapis.com/v1/files/x-1",
                Some("x-1"),
            ),
            ("http://h/some/prefix/v1beta/files/abc", Some("abc")),
            ("http://h/v2/files/abc", None),
            ("files/../etc", None),
            ("http://h/v1beta/files/a/b", None),
            ("gs://bucket/files/abc", None),
            ("https://www.youtube.com/watch?v=x", None),
            ("files/ABC", None),
        ] {
            assert_eq!(file_id_from_uri(uri).as_deref(), id, "{uri}");
        }
    }
}
