//! Gemini's OpenAPI-subset Schema (responseSchema, function parameters).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    #[serde(
        default,
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_type"
    )]
    pub r#type: Option<SchemaType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub r#enum: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_items",
        with = "crate::int64::opt"
    )]
    pub max_items: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "min_items",
        with = "crate::int64::opt"
    )]
    pub min_items: Option<i64>,
    /// Property names are user data: never renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IndexMap<String, Schema>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "min_properties",
        with = "crate::int64::opt"
    )]
    pub min_properties: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_properties",
        with = "crate::int64::opt"
    )]
    pub max_properties: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "min_length",
        with = "crate::int64::opt"
    )]
    pub min_length: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max_length",
        with = "crate::int64::opt"
    )]
    pub max_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "any_of")]
    pub any_of: Option<Vec<Schema>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "property_ordering"
    )]
    pub property_ordering: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Schema>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchemaType {
    TypeUnspecified,
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

crate::proto_enum::proto_enum!(SchemaType {
    TypeUnspecified = 0 => "TYPE_UNSPECIFIED",
    String = 1 => "STRING",
    Number = 2 => "NUMBER",
    Integer = 3 => "INTEGER",
    Boolean = 4 => "BOOLEAN",
    Array = 5 => "ARRAY",
    Object = 6 => "OBJECT",
    Null = 7 => "NULL",
});

impl SchemaType {
    /// The JSON Schema spelling of this type.
    pub fn json_schema_name(self) -> Option<&'static str> {
        Some(match self {
            SchemaType::TypeUnspecified => return None,
            SchemaType::String => "string",
            SchemaType::Number => "number",
            SchemaType::Integer => "integer",
            SchemaType::Boolean => "boolean",
            SchemaType::Array => "array",
            SchemaType::Object => "object",
            SchemaType::Null => "null",
        })
    }
}

/// Types are upper-case in Gemini's Schema; lower-case (JSON Schema habit,
/// and the legacy JavaScript SDK's `SchemaType`) and proto numbers (the
/// legacy Python SDK's `"type": 6`) are accepted too.
fn de_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SchemaType>, D::Error> {
    let raw: Option<serde_json::Value> = Option::deserialize(d)?;
    let Some(raw) = raw else { return Ok(None) };
    let value = match &raw {
        serde_json::Value::String(s) => serde_json::Value::String(s.to_ascii_uppercase()),
        other => other.clone(),
    };
    serde_json::from_value(value).map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown variant `{}`, expected one of STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT, NULL (or their numbers 1 to 7)",
            raw.as_str().map_or_else(|| raw.to_string(), str::to_string)
        ))
    })
}
