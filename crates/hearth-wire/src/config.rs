//! generationConfig, thinkingConfig and safety settings.

use crate::proto_enum::proto_enum;
use serde::{Deserialize, Serialize};

use crate::{MediaResolution, Schema};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerationConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "stop_sequences"
    )]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_mime_type"
    )]
    pub response_mime_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_schema"
    )]
    pub response_schema: Option<Schema>,
    /// Plain JSON Schema, kept verbatim (never renamed).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_json_schema",
        alias = "_responseJsonSchema"
    )]
    pub response_json_schema: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_modalities"
    )]
    pub response_modalities: Option<Vec<Modality>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "candidate_count"
    )]
    pub candidate_count: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_output_tokens"
    )]
    pub max_output_tokens: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "top_p")]
    pub top_p: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "top_k",
        with = "crate::int64::opt_i32"
    )]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "presence_penalty"
    )]
    pub presence_penalty: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "frequency_penalty"
    )]
    pub frequency_penalty: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "response_logprobs"
    )]
    pub response_logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "enable_enhanced_civic_answers"
    )]
    pub enable_enhanced_civic_answers: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "speech_config"
    )]
    pub speech_config: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "image_config"
    )]
    pub image_config: Option<serde_json::Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "thinking_config"
    )]
    pub thinking_config: Option<ThinkingConfig>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "media_resolution"
    )]
    pub media_resolution: Option<MediaResolution>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThinkingConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "include_thoughts"
    )]
    pub include_thoughts: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "thinking_budget"
    )]
    pub thinking_budget: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "thinking_level"
    )]
    pub thinking_level: Option<ThinkingLevel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThinkingLevel {
    ThinkingLevelUnspecified,
    Minimal,
    Low,
    Medium,
    High,
}

/// Numbers as `GenerationConfig.Modality` (responseModalities); VIDEO and
/// DOCUMENT, of the usage details' own Modality, are read by name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Modality {
    ModalityUnspecified,
    Text,
    Image,
    Audio,
    Video,
    Document,
}

proto_enum!(Modality {
    ModalityUnspecified = 0 => "MODALITY_UNSPECIFIED",
    Text = 1 => "TEXT",
    Image = 2 => "IMAGE",
    Audio = 3 => "AUDIO",
    Video => "VIDEO",
    Document => "DOCUMENT",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SafetySetting {
    pub category: HarmCategory,
    pub threshold: HarmBlockThreshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HarmCategory {
    HarmCategoryUnspecified,
    HarmCategoryDerogatory,
    HarmCategoryToxicity,
    HarmCategoryViolence,
    HarmCategorySexual,
    HarmCategoryMedical,
    HarmCategoryDangerous,
    HarmCategoryHarassment,
    HarmCategoryHateSpeech,
    HarmCategorySexuallyExplicit,
    HarmCategoryDangerousContent,
    HarmCategoryCivicIntegrity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HarmBlockThreshold {
    HarmBlockThresholdUnspecified,
    BlockLowAndAbove,
    BlockMediumAndAbove,
    BlockOnlyHigh,
    BlockNone,
    Off,
}

proto_enum!(HarmCategory {
    HarmCategoryUnspecified = 0 => "HARM_CATEGORY_UNSPECIFIED",
    HarmCategoryDerogatory = 1 => "HARM_CATEGORY_DEROGATORY",
    HarmCategoryToxicity = 2 => "HARM_CATEGORY_TOXICITY",
    HarmCategoryViolence = 3 => "HARM_CATEGORY_VIOLENCE",
    HarmCategorySexual = 4 => "HARM_CATEGORY_SEXUAL",
    HarmCategoryMedical = 5 => "HARM_CATEGORY_MEDICAL",
    HarmCategoryDangerous = 6 => "HARM_CATEGORY_DANGEROUS",
    HarmCategoryHarassment = 7 => "HARM_CATEGORY_HARASSMENT",
    HarmCategoryHateSpeech = 8 => "HARM_CATEGORY_HATE_SPEECH",
    HarmCategorySexuallyExplicit = 9 => "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    HarmCategoryDangerousContent = 10 => "HARM_CATEGORY_DANGEROUS_CONTENT",
    HarmCategoryCivicIntegrity = 11 => "HARM_CATEGORY_CIVIC_INTEGRITY",
});

proto_enum!(HarmBlockThreshold {
    HarmBlockThresholdUnspecified = 0 => "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    BlockLowAndAbove = 1 => "BLOCK_LOW_AND_ABOVE",
    BlockMediumAndAbove = 2 => "BLOCK_MEDIUM_AND_ABOVE",
    BlockOnlyHigh = 3 => "BLOCK_ONLY_HIGH",
    BlockNone = 4 => "BLOCK_NONE",
    Off = 5 => "OFF",
});
