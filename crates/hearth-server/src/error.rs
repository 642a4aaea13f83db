//! The one error type of the HTTP layer: Google's JSON error body with the
//! matching HTTP status.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_engine::{EngineError, Field};
use hearth_wire::{DecodeError, ErrorBody, Status};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    /// 400 INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 400 INVALID_ARGUMENT naming the field, as Google words it:
    /// `* GenerateContentRequest.<field>: <message>`.
    pub fn field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::invalid(format!("* GenerateContentRequest.{field}: {message}"))
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The google.rpc status name for this HTTP status.
    pub fn status_name(&self) -> &'static str {
        match self.code.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            413 => "INVALID_ARGUMENT",
            429 => "RESOURCE_EXHAUSTED",
            499 => "CANCELLED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        }
    }

    /// Google's error body; with the request's id as a
    /// `google.rpc.RequestInfo` detail when it is made while the request is
    /// handled ([`crate::trace`]).
    pub fn body(&self) -> ErrorBody {
        let details = crate::trace::current_id().map(|id| {
            vec![serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.RequestInfo",
                "requestId": id,
            })]
        });
        ErrorBody {
            error: Status {
                code: i32::from(self.code.as_u16()),
                message: self.message.clone(),
                status: self.status_name().to_string(),
                details,
            },
        }
    }

    /// The body as JSON text; `error` is the first and only key, as the
    /// SDKs' mid-stream error detection requires.
    pub fn json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_else(|_| {
            r#"{"error":{"code":500,"message":"error","status":"INTERNAL"}}"#.to_string()
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.code.as_u16(),
            self.status_name(),
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.code,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            self.json(),
        )
            .into_response()
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::invalid(e.message)
    }
}

/// Where a request part the engine names sits in a GenerateContentRequest
/// (the one place engine terms become Gemini's). `schema`: the path of the
/// field the request gave its schema in
/// (`generation_config.response_schema` or `….response_json_schema`).
pub fn field_path(f: Field, schema: &str) -> String {
    match f {
        Field::Contents => "contents".into(),
        Field::TurnParts(i) => format!("contents[{i}].parts"),
        Field::SystemInstruction => "system_instruction".into(),
        Field::CandidateCount => "generation_config.candidate_count".into(),
        Field::JsonOutput => "generation_config.response_mime_type".into(),
        Field::Schema => schema.to_string(),
        Field::FunctionCalling => "tool_config.function_calling_config".into(),
        Field::AllowedFunctions => {
            "tool_config.function_calling_config.allowed_function_names".into()
        }
        Field::MediaResolution => "generation_config.media_resolution".into(),
    }
}

impl ApiError {
    /// An engine error, its field named after the request's schema field.
    pub fn from_engine(e: EngineError, schema: &str) -> Self {
        match e {
            EngineError::InvalidRequest {
                field: Some(f),
                message,
            } => ApiError::field(&field_path(f, schema), message),
            EngineError::InvalidRequest {
                field: None,
                message,
            } => ApiError::invalid(message),
            // Google's words.
            EngineError::PromptTooLong { tokens, limit } => ApiError::field(
                "contents",
                format!(
                    "The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
                ),
            ),
            EngineError::Overloaded(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
            EngineError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            EngineError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::from_engine(e, "generation_config.response_schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine names request parts in its own terms; here, and only
    /// here, they become Gemini's field paths and wording.
    #[test]
    fn engine_fields_become_gemini_paths() {
        let invalid = |f| EngineError::InvalidRequest {
            field: Some(f),
            message: "m".into(),
        };
        let json = "generation_config.response_json_schema";
        let cases = [
            (invalid(Field::TurnParts(2)), "generation_config.response_schema", "* GenerateContentRequest.contents[2].parts: m"),
            (invalid(Field::Schema), json, "* GenerateContentRequest.generation_config.response_json_schema: m"),
            (invalid(Field::Schema), "generation_config.response_schema", "* GenerateContentRequest.generation_config.response_schema: m"),
            (invalid(Field::AllowedFunctions), json, "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: m"),
            (invalid(Field::CandidateCount), json, "* GenerateContentRequest.generation_config.candidate_count: m"),
            (
                EngineError::PromptTooLong { tokens: 9000, limit: 8192 },
                json,
                "* GenerateContentRequest.contents: The input token count (9000) exceeds the maximum number of tokens allowed (8192).",
            ),
        ];
        for (e, schema, message) in cases {
            let api = ApiError::from_engine(e, schema);
            assert_eq!(api.code, StatusCode::BAD_REQUEST);
            assert_eq!(api.message, message);
        }
    }

    #[test]
    fn engine_errors_map_to_google_statuses() {
        let cases = [
            (
                EngineError::InvalidRequest {
                    field: Some(Field::Contents),
                    message: "m".into(),
                },
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.contents: m",
            ),
            (
                EngineError::InvalidRequest {
                    field: None,
                    message: "m".into(),
                },
                400,
                "INVALID_ARGUMENT",
                "m",
            ),
            (
                EngineError::Overloaded("full".into()),
                429,
                "RESOURCE_EXHAUSTED",
                "full",
            ),
            (
                EngineError::Unavailable("down".into()),
                503,
                "UNAVAILABLE",
                "down",
            ),
            (EngineError::Internal("bug".into()), 500, "INTERNAL", "bug"),
        ];
        for (e, code, status, msg) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.code.as_u16(), code);
            let body = api.body();
            assert_eq!(
                (
                    body.error.code,
                    body.error.status.as_str(),
                    body.error.message.as_str()
                ),
                (i32::from(code), status, msg)
            );
            assert!(api.json().starts_with(r#"{"error":{"code":"#));
        }
        assert_eq!(
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "t").status_name(),
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(
            ApiError::permission_denied("p").status_name(),
            "PERMISSION_DENIED"
        );
    }
}
