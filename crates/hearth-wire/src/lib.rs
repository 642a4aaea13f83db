//! Gemini REST API wire types.
//!
//! Input accepts lowerCamelCase and snake_case for every proto field (as
//! Google's proto-JSON parser does) and rejects unknown fields; free-form
//! values (`functionCall.args`, `functionResponse.response`, schema property
//! names, `*JsonSchema`) are kept verbatim. Output is lowerCamelCase.

mod config;
mod content;
mod decode;
mod error;
mod files;
mod int64;
mod models;
mod proto_enum;
mod request;
mod response;
mod schema;
mod tools;

pub use config::*;
pub use content::*;
pub use decode::{from_slice, to_snake, DecodeError};
pub use error::*;
pub use files::*;
pub use models::*;
pub use request::*;
pub use response::*;
pub use schema::*;
pub use tools::*;

/// A free-form JSON object (`functionCall.args`, `functionResponse.response`).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;
