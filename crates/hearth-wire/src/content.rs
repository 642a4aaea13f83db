//! Content and its parts.

use serde::{Deserialize, Serialize};

use crate::JsonObject;

/// A turn of the conversation (`role` is "user" or "model").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a content: exactly one data field, plus metadata flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "inline_data"
    )]
    pub inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "file_data")]
    pub file_data: Option<FileData>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "function_call"
    )]
    pub function_call: Option<FunctionCall>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "function_response"
    )]
    pub function_response: Option<FunctionResponse>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "executable_code"
    )]
    pub executable_code: Option<ExecutableCode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "code_execution_result"
    )]
    pub code_execution_result: Option<CodeExecutionResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque bytes, base64 in JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "thought_signature"
    )]
    pub thought_signature: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "video_metadata"
    )]
    pub video_metadata: Option<VideoMetadata>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "media_resolution"
    )]
    pub media_resolution: Option<PartMediaResolution>,
}

impl Content {
    /// A user turn (the SDKs' `createUserContent`).
    pub fn user(parts: impl IntoIterator<Item = Part>) -> Self {
        Content {
            role: Some("user".into()),
            parts: parts.into_iter().collect(),
        }
    }

    /// A model turn (`createModelContent`).
    pub fn model(parts: impl IntoIterator<Item = Part>) -> Self {
        Content {
            role: Some("model".into()),
            parts: parts.into_iter().collect(),
        }
    }
}

impl Part {
    pub fn text(text: impl Into<String>) -> Self {
        Part {
            text: Some(text.into()),
            ..Part::default()
        }
    }

    /// A reference to an uploaded file (the SDKs' `createPartFromUri`).
    pub fn from_uri(file_uri: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Part {
            file_data: Some(FileData {
                mime_type: Some(mime_type.into()),
                file_uri: file_uri.into(),
            }),
            ..Part::default()
        }
    }

    /// Inline bytes, already base64-encoded (`createPartFromBase64`).
    pub fn from_base64(data: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Part {
            inline_data: Some(Blob {
                mime_type: mime_type.into(),
                data: data.into(),
            }),
            ..Part::default()
        }
    }

    /// Names of the data fields that are set (the oneof must hold exactly one).
    pub fn data_fields(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let fields: [(&'static str, bool); 7] = [
            ("text", self.text.is_some()),
            ("inlineData", self.inline_data.is_some()),
            ("fileData", self.file_data.is_some()),
            ("functionCall", self.function_call.is_some()),
            ("functionResponse", self.function_response.is_some()),
            ("executableCode", self.executable_code.is_some()),
            ("codeExecutionResult", self.code_execution_result.is_some()),
        ];
        for (name, present) in fields {
            if present {
                set.push(name);
            }
        }
        set
    }
}

/// Inline bytes (`data` is base64).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Blob {
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    #[serde(default)]
    pub data: String,
}

/// A reference to an uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileData {
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "mime_type")]
    pub mime_type: Option<String>,
    #[serde(default, alias = "file_uri")]
    pub file_uri: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<JsonObject>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub response: JsonObject,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "will_continue"
    )]
    pub will_continue: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutableCode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub code: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeExecutionResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Clip and frame-rate settings for a video part (durations like "1.5s").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoMetadata {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "start_offset"
    )]
    pub start_offset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "end_offset")]
    pub end_offset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
}

/// Per-part media resolution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartMediaResolution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<MediaResolution>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "num_tokens")]
    pub num_tokens: Option<i32>,
}

/// Media resolution levels (generationConfig.mediaResolution and per part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaResolution {
    MediaResolutionUnspecified,
    MediaResolutionLow,
    MediaResolutionMedium,
    MediaResolutionHigh,
    MediaResolutionUltraHigh,
}

crate::proto_enum::proto_enum!(MediaResolution {
    MediaResolutionUnspecified = 0 => "MEDIA_RESOLUTION_UNSPECIFIED",
    MediaResolutionLow = 1 => "MEDIA_RESOLUTION_LOW",
    MediaResolutionMedium = 2 => "MEDIA_RESOLUTION_MEDIUM",
    MediaResolutionHigh = 3 => "MEDIA_RESOLUTION_HIGH",
    MediaResolutionUltraHigh => "MEDIA_RESOLUTION_ULTRA_HIGH",
});
