//! Documents as a model reads them: a PDF becomes, page by page, its text
//! and (for a model with a vision projector) an image of the page.
//!
//! Parsing and rendering untrusted PDFs is the riskiest thing hearth does
//! with input, so it never happens in the server process: [`Reader`] runs
//! [`worker::run`] in a child process (the `hearth document-worker`
//! subcommand) under an address-space and CPU limit, kills it past a
//! deadline, and bounds how many run at once. [`pdf::read`] is the work
//! itself, on [`hayro`] (parser, interpreter and rasterizer in pure Rust).

pub mod pdf;
mod reader;
pub mod worker;

pub use reader::{Reader, ReaderConfig};

use serde::{Deserialize, Serialize};

/// Google's limits for a PDF in a prompt (Gemini API, document understanding).
pub const MAX_PAGES: usize = 1000;
pub const MAX_BYTES: usize = 50 * 1024 * 1024;

/// What to make of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// Render each page so that its longer side is this many pixels; `None`:
    /// text only.
    pub render_px: Option<u32>,
    /// More pages than this is an error.
    pub max_pages: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            render_px: None,
            max_pages: MAX_PAGES,
        }
    }
}

/// A document read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub pages: Vec<Page>,
}

/// One page: its text in reading order, and its image when asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub text: String,
    /// The page rendered on white, as PNG.
    #[serde(default, with = "png_base64", skip_serializing_if = "Option::is_none")]
    pub image: Option<Vec<u8>>,
}

/// Why a document cannot be read. Every variant but [`DocumentError::Internal`]
/// is the sender's: a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum DocumentError {
    #[error("the PDF is encrypted (password-protected); send it decrypted")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF has {0} pages; at most {MAX_PAGES} pages are read")]
    TooManyPages(usize),
    #[error("the PDF cannot be parsed: {0}")]
    Invalid(String),
    #[error("the PDF is {0} bytes; at most {MAX_BYTES} bytes are read")]
    TooLarge(usize),
    #[error("reading the PDF took longer than {0} s, the limit for one document")]
    Timeout(u64),
    #[error("reading the PDF needed more than the {0} MiB one document may use")]
    OutOfMemory(u64),
    #[error("the document reader failed: {0}")]
    Internal(String),
}

impl DocumentError {
    /// Whether the sender's document is at fault (a 400), not the server.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, DocumentError::Internal(_))
    }
}

mod png_base64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
