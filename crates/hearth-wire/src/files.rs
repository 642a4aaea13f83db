//! File resources (Files API).

use serde::{Deserialize, Serialize};

use crate::{Status, VideoMetadata};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "display_name"
    )]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "mime_type")]
    pub mime_type: Option<String>,
    /// int64: a JSON string on output; a string or a number on input.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "size_bytes",
        with = "crate::int64::opt"
    )]
    pub size_bytes: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "create_time"
    )]
    pub create_time: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "update_time"
    )]
    pub update_time: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "expiration_time"
    )]
    pub expiration_time: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "sha256_hash"
    )]
    pub sha256_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "download_uri"
    )]
    pub download_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FileState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FileSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "video_metadata"
    )]
    pub video_metadata: Option<VideoMetadata>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    StateUnspecified,
    Processing,
    Active,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileSource {
    SourceUnspecified,
    Uploaded,
    Generated,
    Registered,
}

/// Body of the resumable upload's start request: `{"file": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFileRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<File>,
}

/// Body of the finalize answer: `{"file": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFileResponse {
    pub file: File,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFilesResponse {
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}
