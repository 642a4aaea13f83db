//! How a prompt becomes text: the contract between the engine and a chat
//! format (the model's chat template, or a test's own).

use crate::contract::{EngineError, Prompt};
use crate::output::Dialect;
use crate::template::Shaping;

/// How a prompt becomes text: the model's chat template.
pub trait PromptFormat: Send + Sync {
    fn render(&self, prompt: &Prompt, options: &RenderOptions) -> Result<String, EngineError>;
    /// The template can switch thinking on and off.
    fn supports_thinking(&self) -> bool;
    /// How the template writes function calls, when it renders declarations
    /// itself (None: hearth writes them into the system instruction).
    fn tool_dialect(&self) -> Option<Dialect> {
        None
    }
    /// How conversations are reshaped for the template.
    fn shaping(&self) -> Shaping {
        Shaping::default()
    }
}

/// Template switches derived from the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    /// Some(false): ask the template not to think (`enable_thinking=false`).
    pub enable_thinking: Option<bool>,
}
