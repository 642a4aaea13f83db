//! contents, systemInstruction and tools -> the engine's Prompt.

use std::sync::Arc;

use hearth_engine::{
    DocumentPart, MediaDetail, ModelInfo, Prompt, Role, Segment, ToolChoice, ToolSpec, Turn,
};
use hearth_wire::{
    Content, CountTokensRequest, FileData, FunctionCallingMode, Part, Tool, ToolConfig,
};

use super::{file_id_from_uri, schema_to_json, FileParts};
use crate::error::ApiError;

/// MIME types Gemini reads as media (checklist), by prefix or exact name.
const MEDIA_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "audio/wav",
    "audio/mp3",
    "audio/mpeg",
    "audio/aiff",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "video/mp4",
    "video/mpeg",
    "video/mov",
    "video/quicktime",
    "video/avi",
    "video/x-flv",
    "video/mpg",
    "video/webm",
    "video/wmv",
    "video/3gpp",
];

/// Document types read as plain text.
const TEXT_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/css",
    "text/csv",
    "text/md",
    "text/markdown",
    "text/xml",
    "text/rtf",
    "application/rtf",
    "text/javascript",
    "application/x-javascript",
    "text/x-python",
    "application/x-python",
    "application/json",
    "application/xml",
];

pub fn prompt_from_contents(
    contents: &[Content],
    system: Option<&Content>,
    tools: Vec<ToolSpec>,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Prompt, ApiError> {
    if contents.is_empty() {
        return Err(ApiError::field("contents", "contents is not specified"));
    }
    let mut turns = Vec::with_capacity(contents.len());
    for (i, content) in contents.iter().enumerate() {
        turns.push(turn(i, content, info, files)?);
    }
    Ok(Prompt {
        system: system_segments(system, info, files)?,
        turns,
        tools,
    })
}

fn turn(
    i: usize,
    content: &Content,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Turn, ApiError> {
    let role = match content.role.as_deref() {
        // `function`: the turn of function results that the legacy
        // JavaScript SDK's ChatSession sends; Google's endpoint takes it as
        // the user side of the exchange, as hearth does.
        None | Some("") | Some("user") | Some("function") => Role::User,
        Some("model") => Role::Model,
        Some(_) => return Err(ApiError::invalid("Please use a valid role: user, model.")),
    };
    if content.parts.is_empty() {
        return Err(ApiError::field(
            &format!("contents[{i}].parts"),
            "contents.parts must not be empty.",
        ));
    }
    let mut segments = Vec::with_capacity(content.parts.len());
    for (j, part) in content.parts.iter().enumerate() {
        let at = format!("contents[{i}].parts[{j}]");
        if let Some(seg) = segment(&at, role, part, info, files)? {
            segments.push(seg);
        }
    }
    Ok(Turn { role, segments })
}

/// One part -> one segment (None: a thought summary, which Gemini does not
/// feed back to the model either).
fn segment(
    at: &str,
    role: Role,
    part: &Part,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Option<Segment>, ApiError> {
    let fields = part.data_fields();
    if fields.len() != 1 {
        return Err(ApiError::field(
            at,
            format!(
                "a part must hold exactly one of text, inlineData, fileData, functionCall, functionResponse, executableCode, codeExecutionResult (found {})",
                if fields.is_empty() { "none".to_string() } else { fields.join(", ") }
            ),
        ));
    }
    if let Some(sig) = &part.thought_signature {
        decode_bytes(&format!("{at}.thought_signature"), sig)?;
    }
    let is_media = part.inline_data.is_some() || part.file_data.is_some();
    if part.media_resolution.is_some() && !is_media {
        return Err(ApiError::field(
            &format!("{at}.media_resolution"),
            "mediaResolution applies to media parts only",
        ));
    }
    if part.video_metadata.is_some() && !is_media {
        return Err(ApiError::field(
            &format!("{at}.video_metadata"),
            "videoMetadata applies to video parts only",
        ));
    }
    if let Some(text) = &part.text {
        if part.thought == Some(true) {
            return Ok(None);
        }
        if role == Role::User && text.is_empty() {
            return Err(ApiError::field(&format!("{at}.text"), "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."));
        }
        return Ok(Some(Segment::Text(text.clone())));
    }
    if let Some(blob) = &part.inline_data {
        return inline_segment(at, part, &blob.mime_type, &blob.data, info, files).map(Some);
    }
    if let Some(fd) = &part.file_data {
        return file_segment(at, part, fd, info, files).map(Some);
    }
    if let Some(call) = &part.function_call {
        if role != Role::Model {
            return Err(ApiError::field(
                &format!("{at}.function_call"),
                "functionCall parts belong in model turns",
            ));
        }
        let args = serde_json::Value::Object(call.args.clone().unwrap_or_default());
        return Ok(Some(Segment::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            args,
        }));
    }
    if let Some(resp) = &part.function_response {
        if role != Role::User {
            return Err(ApiError::field(
                &format!("{at}.function_response"),
                "functionResponse parts belong in user turns",
            ));
        }
        let id = resp.id.clone().filter(|s| !s.is_empty());
        let response = serde_json::Value::Object(resp.response.clone());
        return Ok(Some(Segment::ToolResult {
            id,
            name: resp.name.clone(),
            response,
        }));
    }
    let which = if part.executable_code.is_some() {
        "executable_code"
    } else {
        "code_execution_result"
    };
    Err(ApiError::field(
        &format!("{at}.{which}"),
        "code execution is a server-side tool that hearth does not provide",
    ))
}

fn inline_segment(
    at: &str,
    part: &Part,
    mime: &str,
    data: &str,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Segment, ApiError> {
    let field = format!("{at}.inline_data");
    if mime.trim().is_empty() {
        return Err(ApiError::field(
            &format!("{field}.mime_type"),
            "mimeType is required",
        ));
    }
    let data_field = format!("{field}.data");
    let bytes = decode_bytes(&data_field, data)?;
    let payload = Payload {
        at,
        field,
        data_field,
        mime,
        bytes: Arc::new(bytes),
    };
    payload_segment(payload, part, info, files)
}

/// A `fileData` part: the stored file, read like inline data of its type.
fn file_segment(
    at: &str,
    part: &Part,
    fd: &FileData,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Segment, ApiError> {
    let field = format!("{at}.file_data");
    let Some(id) = file_id_from_uri(&fd.file_uri) else {
        let shown: String = fd.file_uri.chars().take(200).collect();
        return Err(ApiError::field(
            &format!("{field}.file_uri"),
            format!("Unsupported file URI \"{shown}\": hearth reads the files uploaded to its Files API (files/<id>, or the uri of a File resource)"),
        ));
    };
    let Some(file) = files.get(&id) else {
        return Err(crate::files::file_not_found(&id));
    };
    if let Some(m) = fd.mime_type.as_deref().filter(|m| !m.trim().is_empty()) {
        if !hearth_store::mime::same(m, &file.mime_type) {
            return Err(ApiError::field(
                &format!("{field}.mime_type"),
                format!(
                    "fileData.mimeType is {m} but files/{id} holds {}",
                    file.mime_type
                ),
            ));
        }
    }
    let payload = Payload {
        at,
        data_field: format!("{field}.file_uri"),
        field,
        mime: &file.mime_type,
        bytes: file.bytes.clone(),
    };
    payload_segment(payload, part, info, files)
}

/// Bytes of a declared type, inline or from a file.
struct Payload<'a> {
    /// The part's path, `contents[i].parts[j]`.
    at: &'a str,
    /// `<at>.inline_data` or `<at>.file_data`.
    field: String,
    /// Where the bytes came from, for a UTF-8 error.
    data_field: String,
    mime: &'a str,
    bytes: Arc<Vec<u8>>,
}

/// Text-like types become prompt text; media go to the model when it can
/// read them; anything else is a 400 naming the field.
fn payload_segment(
    p: Payload<'_>,
    part: &Part,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Segment, ApiError> {
    let Payload {
        at,
        field,
        data_field,
        mime,
        bytes,
    } = p;
    let mime = mime.trim().to_ascii_lowercase();
    let base = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if TEXT_TYPES.contains(&base.as_str()) {
        if part.video_metadata.is_some() || part.media_resolution.is_some() {
            return Err(ApiError::field(
                at,
                "videoMetadata and mediaResolution apply to media parts only",
            ));
        }
        return std::str::from_utf8(&bytes)
            .map(|t| Segment::Text(t.to_string()))
            .map_err(|_| {
                ApiError::field(&data_field, format!("{base} data is not valid UTF-8 text"))
            });
    }
    if crate::documents::is_pdf(&base) {
        return pdf_segment(at, &field, part, info, files);
    }
    let known = |m: &str| MEDIA_TYPES.contains(&m);
    if !known(&base) && !known(&hearth_store::mime::canonical(&base)) {
        return Err(ApiError::field(
            &format!("{field}.mime_type"),
            format!("Unsupported MIME type: {base}"),
        ));
    }
    // A video is read as its frames (and audio track): by models that read images.
    let video = base.starts_with("video/");
    let readable = if video {
        info.capabilities.reads("image/png")
    } else {
        info.capabilities.reads(&base)
    };
    if !readable {
        let why = if info.capabilities.media.is_empty() {
            "it is a text-only model (no multimodal projector is loaded for it)".to_string()
        } else {
            format!("it reads {}", info.capabilities.media.join(", "))
        };
        return Err(ApiError::field(
            &field,
            format!("model '{}' cannot read {base}: {why}", info.id),
        ));
    }
    let tokens = match &part.media_resolution {
        Some(r) => part_tokens(at, r, video)?,
        None => None,
    };
    if tokens.is_some() && !(video || base.starts_with("image/")) {
        return Err(ApiError::field(
            &format!("{at}.media_resolution"),
            "mediaResolution applies to images and videos",
        ));
    }
    if part.video_metadata.is_some() && !video {
        return Err(ApiError::field(
            &format!("{at}.video_metadata"),
            "videoMetadata applies to video parts only",
        ));
    }
    if video {
        let Some(parts) = files.video(at) else {
            return Err(ApiError::internal("the video of this part was not read"));
        };
        return Ok(Segment::Video {
            parts: parts.as_ref().clone(),
            tokens,
        });
    }
    Ok(Segment::Media {
        mime_type: base,
        data: bytes,
        tokens,
    })
}

/// The image tokens a media resolution asks for, as Gemini 3 spends them:
/// an image LOW 280, MEDIUM 560, HIGH (and ULTRA_HIGH) 1120; a video frame
/// LOW and MEDIUM 70, HIGH 280. None: the model's own count.
pub fn resolution_tokens(level: MediaDetail, video: bool) -> u32 {
    match (level, video) {
        (MediaDetail::Low, false) => 280,
        (MediaDetail::Medium, false) => 560,
        (MediaDetail::High, false) => 1120,
        (MediaDetail::Low | MediaDetail::Medium, true) => 70,
        (MediaDetail::High, true) => 280,
    }
}

/// A part's own `mediaResolution`: a level, or `numTokens`.
fn part_tokens(
    at: &str,
    r: &hearth_wire::PartMediaResolution,
    video: bool,
) -> Result<Option<u32>, ApiError> {
    use hearth_wire::MediaResolution as R;
    let field = format!("{at}.media_resolution");
    if let Some(n) = r.num_tokens {
        if r.level.is_some() {
            return Err(ApiError::field(&field, "set level or numTokens, not both"));
        }
        return u32::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| ApiError::field(&field, format!("numTokens must be above 0, got {n}")));
    }
    Ok(match r.level {
        None | Some(R::MediaResolutionUnspecified) => None,
        Some(R::MediaResolutionLow) => Some(resolution_tokens(MediaDetail::Low, video)),
        Some(R::MediaResolutionMedium) => Some(resolution_tokens(MediaDetail::Medium, video)),
        Some(R::MediaResolutionHigh | R::MediaResolutionUltraHigh) => {
            Some(resolution_tokens(MediaDetail::High, video))
        }
    })
}

/// `generationConfig.mediaResolution` for every image and video of the
/// prompt that does not set its own.
pub fn apply_media_resolution(prompt: &mut Prompt, level: Option<MediaDetail>) {
    let Some(level) = level else { return };
    for seg in prompt.turns.iter_mut().flat_map(|t| t.segments.iter_mut()) {
        match seg {
            Segment::Media {
                mime_type, tokens, ..
            } if tokens.is_none() && mime_type.starts_with("image/") => {
                *tokens = Some(resolution_tokens(level, false));
            }
            Segment::Video { tokens, .. } if tokens.is_none() => {
                *tokens = Some(resolution_tokens(level, true));
            }
            _ => {}
        }
    }
}

/// A PDF part, read beforehand ([`crate::documents`]): each page's text
/// after a page marker, with the page's image first for a model that
/// reads images.
fn pdf_segment(
    at: &str,
    field: &str,
    part: &Part,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Segment, ApiError> {
    if part.video_metadata.is_some() {
        return Err(ApiError::field(
            &format!("{at}.video_metadata"),
            "videoMetadata applies to video parts only",
        ));
    }
    if part.media_resolution.is_some() {
        return Err(ApiError::field(
            &format!("{at}.media_resolution"),
            format!(
                "model '{}' reads a document's pages at a fixed resolution; mediaResolution cannot change it",
                info.id
            ),
        ));
    }
    if !files.reads_documents() {
        return Err(ApiError::field(
            field,
            "this server reads no PDF documents (it runs without a document reader)",
        ));
    }
    let Some(doc) = files.document(at) else {
        return Err(ApiError::internal("the document of this part was not read"));
    };
    let n = doc.pages.len();
    let mut parts = Vec::with_capacity(n * 3);
    for (k, page) in doc.pages.iter().enumerate() {
        let head = format!("--- Page {} of {n} ---\n", k + 1);
        match &page.image {
            Some(png) => {
                parts.push(DocumentPart::Text(head));
                parts.push(DocumentPart::Image(Arc::new(png.clone())));
                parts.push(DocumentPart::Text(format!("\n{}\n", page.text)));
            }
            None => parts.push(DocumentPart::Text(format!("{head}{}\n", page.text))),
        }
    }
    Ok(Segment::Document(parts))
}

/// Proto `bytes` in JSON: standard or URL-safe base64, padded or not.
fn decode_bytes(field: &str, data: &str) -> Result<Vec<u8>, ApiError> {
    super::base64_bytes(data).ok_or_else(|| {
        let shown: String = data.trim().chars().take(32).collect();
        ApiError::invalid(format!(
            "Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
        ))
    })
}

/// The system instruction: its text parts (joined by line breaks, as they
/// always were) and, for a model that reads them, images and audio, inline
/// or uploaded. PDFs and videos belong in `contents`.
fn system_segments(
    system: Option<&Content>,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Vec<Segment>, ApiError> {
    let Some(content) = system else {
        return Ok(Vec::new());
    };
    let mut segments: Vec<Segment> = Vec::new();
    for (j, part) in content.parts.iter().enumerate() {
        let at = format!("system_instruction.parts[{j}]");
        let mime = match (&part.inline_data, &part.file_data) {
            (Some(blob), _) => Some(blob.mime_type.clone()),
            (None, Some(fd)) => file_id_from_uri(&fd.file_uri)
                .and_then(|id| files.get(&id))
                .map(|f| f.mime_type.clone()),
            (None, None) => None,
        };
        let media = part.inline_data.is_some() || part.file_data.is_some();
        if part.data_fields().len() != 1 || !(part.text.is_some() || media) {
            return Err(ApiError::field(
                &at,
                "system instructions hold text, image and audio parts only",
            ));
        }
        if let Some(m) = mime.map(|m| m.trim().to_ascii_lowercase()) {
            if crate::documents::is_pdf(&m) || m.starts_with("video/") {
                return Err(ApiError::field(
                    &at,
                    format!("{m} belongs in contents: system instructions hold text, image and audio parts only"),
                ));
            }
        }
        let seg = match &part.text {
            Some(t) => Some(Segment::Text(t.clone())),
            None => segment(&at, Role::User, part, info, files)?,
        };
        match seg {
            Some(Segment::Text(t)) => match segments.last_mut() {
                Some(Segment::Text(last)) => {
                    last.push('\n');
                    last.push_str(&t);
                }
                _ => segments.push(Segment::Text(t)),
            },
            Some(seg) => segments.push(seg),
            None => {}
        }
    }
    Ok(segments)
}

/// tools -> the functions the model may call. Server-side tools are refused.
pub fn function_tools(tools: Option<&[Tool]>, info: &ModelInfo) -> Result<Vec<ToolSpec>, ApiError> {
    let mut specs = Vec::new();
    for (i, tool) in tools.unwrap_or_default().iter().enumerate() {
        if let Some(name) = tool.server_side_tools().first() {
            return Err(ApiError::field(
                &format!("tools[{i}].{}", hearth_wire::to_snake(name)),
                format!("{name} is a server-side tool; hearth runs models offline and provides none. Declare a function (functionDeclarations) and run it yourself."),
            ));
        }
        let decls = tool.function_declarations.as_deref().unwrap_or_default();
        if !decls.is_empty() && !info.capabilities.function_calling {
            return Err(ApiError::field(
                &format!("tools[{i}].function_declarations"),
                format!(
                    "model '{}' does not support function calling in hearth yet",
                    info.id
                ),
            ));
        }
        for (j, d) in decls.iter().enumerate() {
            specs.push(function_spec(
                &format!("tools[{i}].function_declarations[{j}]"),
                d,
            )?);
        }
    }
    Ok(specs)
}

fn function_spec(at: &str, d: &hearth_wire::FunctionDeclaration) -> Result<ToolSpec, ApiError> {
    let valid_name = !d.name.is_empty()
        && d.name.len() <= 128
        && d.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
        && !d.name.starts_with(|c: char| c.is_ascii_digit());
    if !valid_name {
        return Err(ApiError::field(&format!("{at}.name"), "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 128."));
    }
    if d.parameters.is_some() && d.parameters_json_schema.is_some() {
        return Err(ApiError::field(
            at,
            "set parameters or parametersJsonSchema, not both",
        ));
    }
    if d.behavior.is_some() {
        return Err(ApiError::field(
            &format!("{at}.behavior"),
            "behavior applies to the Live API only",
        ));
    }
    let parameters = match (&d.parameters, &d.parameters_json_schema) {
        (Some(s), _) => Some(schema_to_json(&format!("{at}.parameters"), s)?),
        (None, Some(v)) => Some(super::schema::lowercase_gemini_types(v)),
        (None, None) => None,
    };
    Ok(ToolSpec {
        name: d.name.clone(),
        description: d.description.clone().unwrap_or_default(),
        parameters,
    })
}

pub fn tool_choice(cfg: Option<&ToolConfig>, tools: &[ToolSpec]) -> Result<ToolChoice, ApiError> {
    let Some(cfg) = cfg else {
        return Ok(ToolChoice::Auto);
    };
    if cfg.retrieval_config.is_some() {
        return Err(ApiError::field(
            "tool_config.retrieval_config",
            "retrievalConfig applies to server-side tools, which hearth does not provide",
        ));
    }
    let Some(fc) = &cfg.function_calling_config else {
        return Ok(ToolChoice::Auto);
    };
    if tools.is_empty() {
        return Err(ApiError::field(
            "tool_config.function_calling_config",
            "functionCallingConfig is set but no functionDeclarations are given",
        ));
    }
    let allowed = fc.allowed_function_names.clone().unwrap_or_default();
    for name in &allowed {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(ApiError::field(
                "tool_config.function_calling_config.allowed_function_names",
                format!("{name} is not a declared function"),
            ));
        }
    }
    let mode = fc.mode.unwrap_or(FunctionCallingMode::Auto);
    if !allowed.is_empty()
        && !matches!(
            mode,
            FunctionCallingMode::Any | FunctionCallingMode::Validated
        )
    {
        return Err(ApiError::field(
            "tool_config.function_calling_config.allowed_function_names",
            "allowedFunctionNames may be set only when mode is ANY",
        ));
    }
    match mode {
        FunctionCallingMode::Auto | FunctionCallingMode::ModeUnspecified => Ok(ToolChoice::Auto),
        FunctionCallingMode::Any => Ok(ToolChoice::Any(allowed)),
        FunctionCallingMode::None => Ok(ToolChoice::None),
        FunctionCallingMode::Validated => Err(ApiError::field(
            "tool_config.function_calling_config.mode",
            "mode VALIDATED is not supported by hearth yet; use AUTO, ANY or NONE",
        )),
    }
}

/// The prompt a countTokens request describes.
pub fn count_request_prompt(
    req: &CountTokensRequest,
    info: &ModelInfo,
    files: &FileParts,
) -> Result<Prompt, ApiError> {
    match (&req.contents, &req.generate_content_request) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "* CountTokensRequest: set contents or generateContentRequest, not both",
        )),
        (None, None) => Err(ApiError::invalid(
            "* CountTokensRequest.contents: contents is not specified",
        )),
        (Some(contents), None) => prompt_from_contents(contents, None, Vec::new(), info, files),
        (None, Some(g)) => {
            let tools = function_tools(g.tools.as_deref(), info)?;
            let mut prompt = prompt_from_contents(
                &g.contents,
                g.system_instruction.as_ref(),
                tools,
                info,
                files,
            )?;
            let level = g
                .generation_config
                .as_ref()
                .and_then(|c| super::config::media_detail(c.media_resolution));
            apply_media_resolution(&mut prompt, level);
            Ok(prompt)
        }
    }
}
