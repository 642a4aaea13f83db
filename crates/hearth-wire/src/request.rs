//! Request bodies.

use serde::{Deserialize, Serialize};

use crate::{Content, GenerationConfig, SafetySetting, Tool, ToolConfig};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateContentRequest {
    /// Optional in the body; when present it must name the path's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "system_instruction"
    )]
    pub system_instruction: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "tool_config"
    )]
    pub tool_config: Option<ToolConfig>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "safety_settings"
    )]
    pub safety_settings: Option<Vec<SafetySetting>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "cached_content"
    )]
    pub cached_content: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "generation_config"
    )]
    pub generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountTokensRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<Content>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "generate_content_request"
    )]
    pub generate_content_request: Option<GenerateContentRequest>,
}
