//! What goes with the contents of a request: the SDKs' `GenerateContentConfig`
//! (system instruction, generation settings, tools, safety settings), and the
//! conversions that let a `&str`, parts or contents stand for `contents`.

use hearth_wire::{
    Content, GenerateContentRequest, GenerationConfig, Part, SafetySetting, Schema, ThinkingConfig,
    Tool, ToolConfig,
};

/// Everything of a generateContent request except its contents, built with
/// chained setters: `Config::new().system_instruction("…").temperature(0.1)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub system_instruction: Option<Content>,
    pub generation: GenerationConfig,
    pub tools: Option<Vec<Tool>>,
    pub tool_config: Option<ToolConfig>,
    pub safety_settings: Option<Vec<SafetySetting>>,
    pub cached_content: Option<String>,
}

impl Config {
    pub fn new() -> Self {
        Self::default()
    }

    /// A system instruction given as text or as contents.
    pub fn system_instruction(mut self, instruction: impl IntoContents) -> Self {
        let parts = instruction
            .into_contents()
            .into_iter()
            .flat_map(|c| c.parts)
            .collect();
        self.system_instruction = Some(Content { role: None, parts });
        self
    }

    pub fn temperature(mut self, t: f64) -> Self {
        self.generation.temperature = Some(t);
        self
    }
    pub fn top_p(mut self, p: f64) -> Self {
        self.generation.top_p = Some(p);
        self
    }
    pub fn top_k(mut self, k: i32) -> Self {
        self.generation.top_k = Some(k);
        self
    }
    pub fn seed(mut self, seed: i64) -> Self {
        self.generation.seed = Some(seed);
        self
    }
    pub fn max_output_tokens(mut self, n: i32) -> Self {
        self.generation.max_output_tokens = Some(n);
        self
    }
    pub fn candidate_count(mut self, n: i32) -> Self {
        self.generation.candidate_count = Some(n);
        self
    }
    pub fn stop_sequences(mut self, stops: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.generation.stop_sequences = Some(stops.into_iter().map(Into::into).collect());
        self
    }
    pub fn presence_penalty(mut self, p: f64) -> Self {
        self.generation.presence_penalty = Some(p);
        self
    }
    pub fn frequency_penalty(mut self, p: f64) -> Self {
        self.generation.frequency_penalty = Some(p);
        self
    }
    /// `responseLogprobs` plus the number of top alternatives per token.
    pub fn logprobs(mut self, top: i32) -> Self {
        self.generation.response_logprobs = Some(true);
        self.generation.logprobs = Some(top);
        self
    }

    /// `thinkingConfig.thinkingBudget`: 0 turns thinking off, -1 lets the
    /// model decide, N caps the thought tokens.
    pub fn thinking_budget(mut self, budget: i32) -> Self {
        self.thinking().thinking_budget = Some(budget);
        self
    }
    /// `thinkingConfig.includeThoughts`.
    pub fn include_thoughts(mut self, include: bool) -> Self {
        self.thinking().include_thoughts = Some(include);
        self
    }
    fn thinking(&mut self) -> &mut ThinkingConfig {
        self.generation
            .thinking_config
            .get_or_insert_with(ThinkingConfig::default)
    }

    pub fn response_mime_type(mut self, mime: impl Into<String>) -> Self {
        self.generation.response_mime_type = Some(mime.into());
        self
    }
    /// JSON output following a Gemini (OpenAPI subset) schema.
    pub fn response_schema(mut self, schema: Schema) -> Self {
        self.generation.response_mime_type = Some("application/json".into());
        self.generation.response_schema = Some(schema);
        self
    }
    /// JSON output following a JSON Schema.
    pub fn response_json_schema(mut self, schema: serde_json::Value) -> Self {
        self.generation.response_mime_type = Some("application/json".into());
        self.generation.response_json_schema = Some(schema);
        self
    }

    pub fn tools(mut self, tools: Vec<Tool>) -> Self {
        self.tools = Some(tools);
        self
    }
    pub fn tool_config(mut self, config: ToolConfig) -> Self {
        self.tool_config = Some(config);
        self
    }
    pub fn safety_settings(mut self, settings: Vec<SafetySetting>) -> Self {
        self.safety_settings = Some(settings);
        self
    }
    /// Replaces the whole generation config.
    pub fn generation_config(mut self, generation: GenerationConfig) -> Self {
        self.generation = generation;
        self
    }

    /// The wire request for these contents.
    pub fn request(&self, contents: Vec<Content>) -> GenerateContentRequest {
        let generation =
            (self.generation != GenerationConfig::default()).then(|| self.generation.clone());
        GenerateContentRequest {
            model: None,
            contents,
            system_instruction: self.system_instruction.clone(),
            tools: self.tools.clone(),
            tool_config: self.tool_config.clone(),
            safety_settings: self.safety_settings.clone(),
            cached_content: self.cached_content.clone(),
            generation_config: generation,
        }
    }
}

/// What may stand for `contents`, as in the SDKs: a string or parts make one
/// user turn; contents are taken as they are.
pub trait IntoContents {
    fn into_contents(self) -> Vec<Content>;
}

impl IntoContents for &str {
    fn into_contents(self) -> Vec<Content> {
        vec![Content::user([Part::text(self)])]
    }
}
impl IntoContents for String {
    fn into_contents(self) -> Vec<Content> {
        vec![Content::user([Part::text(self)])]
    }
}
impl IntoContents for &String {
    fn into_contents(self) -> Vec<Content> {
        self.as_str().into_contents()
    }
}
impl IntoContents for Part {
    fn into_contents(self) -> Vec<Content> {
        vec![Content::user([self])]
    }
}
impl IntoContents for Vec<Part> {
    fn into_contents(self) -> Vec<Content> {
        vec![Content::user(self)]
    }
}
impl IntoContents for Content {
    fn into_contents(self) -> Vec<Content> {
        vec![self]
    }
}
impl IntoContents for Vec<Content> {
    fn into_contents(self) -> Vec<Content> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_wire_request_like_the_sdks() {
        let cfg = Config::new()
            .system_instruction("You are a cat. Your name is Neko.")
            .temperature(0.1)
            .thinking_budget(0);
        let req = cfg.request("Hello there".into_contents());
        let json = serde_json::to_value(&req).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
                "systemInstruction": {"parts": [{"text": "You are a cat. Your name is Neko."}]},
                "generationConfig": {"temperature": 0.1, "thinkingConfig": {"thinkingBudget": 0}}
            })
        );
        let plain = Config::new().request("x".into_contents());
        assert!(plain.generation_config.is_none());
    }
}
