//! Tools, function declarations and tool configuration.

use serde::{Deserialize, Serialize};

use crate::Schema;

/// One tool. Only `functionDeclarations` can run locally; the server-side
/// tools are accepted by the parser so that the server can reject them with a
/// clear message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tool {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "function_declarations"
    )]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "code_execution"
    )]
    pub code_execution: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "google_search"
    )]
    pub google_search: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "google_search_retrieval"
    )]
    pub google_search_retrieval: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "url_context"
    )]
    pub url_context: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "google_maps"
    )]
    pub google_maps: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "file_search"
    )]
    pub file_search: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "computer_use"
    )]
    pub computer_use: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "mcp_servers"
    )]
    pub mcp_servers: Option<serde_json::Value>,
}

impl Tool {
    /// The wire names of the server-side tools this tool asks for.
    pub fn server_side_tools(&self) -> Vec<&'static str> {
        let all: [(&'static str, bool); 8] = [
            ("codeExecution", self.code_execution.is_some()),
            ("googleSearch", self.google_search.is_some()),
            (
                "googleSearchRetrieval",
                self.google_search_retrieval.is_some(),
            ),
            ("urlContext", self.url_context.is_some()),
            ("googleMaps", self.google_maps.is_some()),
            ("fileSearch", self.file_search.is_some()),
            ("computerUse", self.computer_use.is_some()),
            ("mcpServers", self.mcp_servers.is_some()),
        ];
        all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionDeclaration {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Schema>,
    /// Plain JSON Schema, kept verbatim.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "parameters_json_schema"
    )]
    pub parameters_json_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Schema>,
    /// Plain JSON Schema, kept verbatim.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_json_schema"
    )]
    pub response_json_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "function_calling_config"
    )]
    pub function_calling_config: Option<FunctionCallingConfig>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "retrieval_config"
    )]
    pub retrieval_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionCallingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FunctionCallingMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "allowed_function_names"
    )]
    pub allowed_function_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FunctionCallingMode {
    ModeUnspecified,
    Auto,
    Any,
    None,
    Validated,
}

crate::proto_enum::proto_enum!(FunctionCallingMode {
    ModeUnspecified = 0 => "MODE_UNSPECIFIED",
    Auto = 1 => "AUTO",
    Any = 2 => "ANY",
    None = 3 => "NONE",
    Validated = 4 => "VALIDATED",
});
