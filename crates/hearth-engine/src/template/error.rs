//! Why a chat template could not be compiled or rendered.

/// Why a chat template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The template source does not parse.
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// Rendering failed (an undefined value misused, a type error, ...).
    #[error("chat template rendering failed: {0}")]
    Render(String),
    /// The template called `raise_exception(message)`; this is its message.
    #[error("chat template rejected the conversation: {0}")]
    Raised(String),
    /// The conversation holds something templates cannot express yet.
    #[error("unsupported in a chat template: {0}")]
    Unsupported(String),
}
