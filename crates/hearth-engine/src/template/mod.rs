//! Chat templates: a model's Jinja chat template rendered with minijinja
//! exactly as Hugging Face transformers' `apply_chat_template(...,
//! tokenize=False)` renders it with Python jinja2.
//!
//! What is replicated (transformers 5.x `utils/chat_template_utils.py`):
//! - environment: `trim_blocks`, `lstrip_blocks`, loop controls, no
//!   autoescape, no trailing newline kept;
//! - variables: `messages`, `tools` (`none` when absent), `documents`
//!   (`none`), `add_generation_prompt`, `bos_token`, `eos_token`, plus the
//!   caller's extra variables (`enable_thinking`, ...);
//! - messages: keys whose value is null are dropped, and a message carrying
//!   reasoning gets both `thinking` and `reasoning_content` copies;
//! - globals: `raise_exception(msg)` (its message comes back verbatim as
//!   [`TemplateError::Raised`]), `strftime_now(fmt)` (injectable clock),
//!   `namespace`, `dict`, `range`;
//! - Python-isms: `tojson` is `json.dumps` (`", "`/`": "` separators, raw
//!   non-ASCII, `indent=`), printing and `|string` use Python `str()`
//!   (`True`, `None`, `499.5`), str/dict methods (`.strip()`, `.split()`,
//!   `.startswith()`, `.items()`, `.get()`, ...) through minijinja-contrib's
//!   pycompat, and `is sequence` is true for strings and mappings;
//! - undefined values print as `""`, iterate as empty and have length 0,
//!   while attribute access on them and `undefined + str` are errors.
//!
//! Known differences from jinja2: `x in undefined` is false (jinja2
//! raises), and Python tuples (from `|items`) print as lists.

pub mod builtin;
mod caps;
mod clock;
mod env;
mod error;
mod messages;
mod python;
mod shape;

use std::collections::BTreeMap;

use minijinja::{Environment, Value};

use crate::contract::{EngineError, Field, Prompt};
use crate::output::Dialect;
use crate::prompt_format::{PromptFormat, RenderOptions};

pub use caps::{CallIds, Shaping};
pub use clock::{CivilDateTime, Clock};
pub use error::TemplateError;
pub use messages::hf_messages;
pub use shape::system_media_to_first_user;

/// The name the template is stored under inside its environment.
const TEMPLATE_NAME: &str = "chat_template";

/// For models whose GGUF carries no `tokenizer.chat_template`: ChatML
/// (`<|im_start|>role\ncontent<|im_end|>\n`), the format transformers used
/// as its default chat template. Assistant tool calls are written as
/// Hermes-style `<tool_call>` JSON lines after the content; tool results are
/// turns of role `tool`; tool declarations are not rendered.
pub const FALLBACK_TEMPLATE: &str = "\
{%- for message in messages %}
    {{- '<|im_start|>' + message['role'] + '\\n' }}
    {%- if message['content'] is string %}
        {{- message['content'] }}
    {%- endif %}
    {%- for tool_call in message['tool_calls'] | default([]) %}
        {%- if not loop.first or message['content'] %}
            {{- '\\n' }}
        {%- endif %}
        {{- '<tool_call>\\n' + {'name': tool_call['function']['name'], 'arguments': tool_call['function']['arguments']} | tojson + '\\n</tool_call>' }}
    {%- endfor %}
    {{- '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}";

/// A compiled chat template with the special tokens it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    clock: Clock,
    thinking: bool,
    tools: bool,
    dialect: Option<crate::output::Dialect>,
    shaping: Shaping,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("thinking", &self.thinking)
            .field("tools", &self.tools)
            .field("shaping", &self.shaping)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token`/`eos_token` are the model's special
    /// tokens as text (`""` when the model has none).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        let mut env = env::hf_environment();
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        let template = env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        let reads = template.undeclared_variables(false);
        let thinking = reads.contains("enable_thinking")
            || source.contains("<think>")
            || source.contains("<|think|>");
        let tools = reads.contains("tools") || reads.contains("custom_tools");
        use crate::output::Dialect;
        let dialect = if !tools {
            None
        } else if source.contains("<|tool_call>") {
            Some(Dialect::Gemma4)
        } else if source.contains("<function=") {
            Some(Dialect::QwenXml)
        } else if source.contains("<tool_call>") {
            Some(Dialect::Hermes)
        } else if source.contains("<|python_tag|>") || source.contains("<|start_header_id|>") {
            Some(Dialect::Json)
        } else {
            None
        };
        let mut template = ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            clock: CivilDateTime::now_utc,
            thinking,
            tools,
            dialect,
            shaping: Shaping::default(),
        };
        let render = |messages: &[serde_json::Value], tools: Option<&[serde_json::Value]>| {
            let extra = serde_json::Map::new();
            template.render(messages, tools, true, &extra).ok()
        };
        template.shaping = Shaping::probe(render, dialect.is_some());
        Ok(template)
    }

    /// How conversations are reshaped before this template renders them.
    pub fn shaping(&self) -> Shaping {
        self.shaping
    }

    /// Renders the engine's `prompt` (its media already replaced by the
    /// reader's marker text) reshaped into what the template accepts
    /// ([`Shaping`]), with the generation prompt. A template that drops the
    /// system message in this conversation (Mistral's keeps it only with a
    /// last user turn) gets it at the head of the first user turn instead.
    pub fn render_prompt(
        &self,
        prompt: &Prompt,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TemplateError> {
        let (messages, tools) = hf_messages(prompt)?;
        let system = messages
            .first()
            .filter(|m| m["role"] == "system")
            .and_then(|m| m["content"].as_str())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let shaped = shape::shape(messages, &self.shaping);
        let out = self.render(&shaped, tools.as_deref(), true, extra)?;
        if self.shaping.fold_system || system.is_empty() || out.contains(&system) {
            return Ok(out);
        }
        // Rare: the messages are built again rather than kept for it (a
        // prompt can be tens of megabytes).
        let folded = Shaping {
            fold_system: true,
            ..self.shaping
        };
        let (messages, _) = hf_messages(prompt)?;
        self.render(
            &shape::shape(messages, &folded),
            tools.as_deref(),
            true,
            extra,
        )
    }

    /// Replaces the clock behind `strftime_now` (tests fix "now").
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.clock = now;
        self
    }

    /// Renders HF-style `messages` (objects with `role`, `content`,
    /// `tool_calls`, ...) and `tools` (OpenAI/HF function specs, or None for
    /// no tools). `extra` adds template variables such as `enable_thinking`;
    /// it may override `bos_token`/`eos_token` but not the core variables.
    pub fn render(
        &self,
        messages: &[serde_json::Value],
        tools: Option<&[serde_json::Value]>,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TemplateError> {
        const CORE: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];
        if let Some(key) = extra.keys().find(|k| CORE.contains(&k.as_str())) {
            return Err(TemplateError::Unsupported(format!(
                "extra template variable {key:?} collides with a built-in one"
            )));
        }
        let messages = messages::normalize(messages)?;
        let clock = self.clock;
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        ctx.insert("bos_token".into(), Value::from(self.bos_token.as_str()));
        ctx.insert("eos_token".into(), Value::from(self.eos_token.as_str()));
        ctx.insert(
            "strftime_now".into(),
            Value::from_function(move |fmt: &str| clock().strftime(fmt)),
        );
        for (key, value) in extra {
            ctx.insert(key.clone(), Value::from_serialize(value));
        }
        ctx.insert("messages".into(), Value::from_serialize(&messages));
        ctx.insert(
            "tools".into(),
            tools.map_or(Value::from(()), Value::from_serialize),
        );
        ctx.insert("documents".into(), Value::from(()));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| TemplateError::Syntax(describe(&e)))?;
        template.render(Value::from_iter(ctx)).map_err(render_error)
    }

    /// Whether the template reads `enable_thinking` or emits a thinking block.
    pub fn supports_thinking(&self) -> bool {
        self.thinking
    }

    /// How the template writes function calls, when it renders declarations
    /// and calls itself (None: hearth writes them into the prompt).
    pub fn tool_dialect(&self) -> Option<crate::output::Dialect> {
        self.dialect
    }

    /// Whether the template reads `tools` (so declarations reach the model).
    pub fn supports_tools(&self) -> bool {
        self.tools
    }
}

/// A minijinja error as one line, with its chain of causes.
fn describe(err: &minijinja::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn render_error(err: minijinja::Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(raised) = cause.downcast_ref::<env::Raised>() {
            return TemplateError::Raised(raised.0.clone());
        }
        source = cause.source();
    }
    TemplateError::Render(describe(&err))
}

impl PromptFormat for ChatTemplate {
    fn render(&self, prompt: &Prompt, options: &RenderOptions) -> Result<String, EngineError> {
        let mut extra = serde_json::Map::new();
        if let Some(on) = options.enable_thinking {
            extra.insert("enable_thinking".into(), serde_json::Value::Bool(on));
        }
        self.render_prompt(prompt, &extra).map_err(template_error)
    }

    fn shaping(&self) -> Shaping {
        ChatTemplate::shaping(self)
    }

    fn supports_thinking(&self) -> bool {
        ChatTemplate::supports_thinking(self)
    }

    fn tool_dialect(&self) -> Option<Dialect> {
        ChatTemplate::tool_dialect(self)
    }
}

fn template_error(e: TemplateError) -> EngineError {
    match e {
        // What hearth reshapes (a system role, alternation, several calls,
        // call ids) never gets here; what is left the template cannot
        // express at all.
        TemplateError::Raised(m) => EngineError::InvalidRequest {
            field: Some(Field::Contents),
            message: format!(
                "this model's chat template cannot express this conversation, even reshaped as hearth reshapes conversations for it (the template says: {m})"
            ),
        },
        TemplateError::Unsupported(m) => EngineError::InvalidRequest {
            field: Some(Field::Contents),
            message: m,
        },
        other => EngineError::Internal(format!("chat template: {other}")),
    }
}

#[cfg(test)]
mod tests;
