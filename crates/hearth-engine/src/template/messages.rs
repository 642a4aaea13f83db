//! The engine's [`Prompt`] as Hugging Face chat messages, and the message
//! normalization `apply_chat_template` performs before rendering.

use serde_json::{json, Map, Value};

use super::error::TemplateError;
use super::python::json_dumps;
use crate::contract::{DocumentPart, Prompt, Role, Segment, ToolSpec, Turn};

/// Names a message's reasoning may come under; transformers copies the
/// first one present to `thinking` (first key) and `reasoning_content` (last key).
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// What transformers does to messages before rendering: null-valued keys are
/// dropped (`content: null` becomes a missing `content`), and reasoning is
/// aliased to both `thinking` and `reasoning_content`.
pub(super) fn normalize(messages: &[Value]) -> Result<Vec<Value>, TemplateError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let Value::Object(fields) = message else {
                return Err(TemplateError::Render(format!(
                    "messages[{i}] must be an object, got {message}"
                )));
            };
            let mut kept: Map<String, Value> = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let reasoning = REASONING_FIELDS.iter().find_map(|f| kept.get(*f)).cloned();
            if let Some(reasoning) = reasoning {
                let mut aliased = Map::new();
                aliased.insert("thinking".to_owned(), reasoning.clone());
                aliased.append(&mut kept);
                aliased.insert("reasoning_content".to_owned(), reasoning);
                kept = aliased;
            }
            Ok(Value::Object(kept))
        })
        .collect()
}

/// The engine's [`Prompt`] as HF/OpenAI chat messages plus tool specs, the
/// input of [`ChatTemplate::render`](super::ChatTemplate::render):
/// - the system instruction becomes a leading `{"role": "system"}` message
///   (its text segments joined with `""`);
/// - a user turn becomes `{"role": "user", "content"}` (its consecutive text
///   segments joined with `""`), and each tool result in it a
///   `{"role": "tool", "tool_call_id"?, "name", "content"}` message whose
///   content is the response as Python `json.dumps` text (a string response
///   is used as is);
/// - a model turn becomes one `{"role": "assistant", "content"}` message
///   (`content` always present, `""` when the turn only calls tools, since
///   several templates fail on a missing content) with its calls as
///   `tool_calls: [{"id"?, "type": "function", "function": {"name", "arguments": {..}}}]`;
/// - tools become `{"type": "function", "function": {"name", "description", "parameters"?}}`,
///   and no tools gives `None` (templates treat `none` and `[]` differently).
///
/// Media segments are [`TemplateError::Unsupported`] for now.
pub fn hf_messages(prompt: &Prompt) -> Result<(Vec<Value>, Option<Vec<Value>>), TemplateError> {
    let mut messages = Vec::new();
    if !prompt.system.is_empty() {
        let mut content = String::new();
        for segment in &prompt.system {
            match segment {
                Segment::Text(t) => content.push_str(t),
                Segment::Media { mime_type, .. } => {
                    return Err(TemplateError::Unsupported(format!(
                        "the system instruction holds {mime_type} media; chat templates take text only for now"
                    )))
                }
                _ => {
                    return Err(TemplateError::Unsupported(
                        "the system instruction holds text and media only".into(),
                    ))
                }
            }
        }
        messages.push(json!({"role": "system", "content": content}));
    }
    for (index, turn) in prompt.turns.iter().enumerate() {
        match turn.role {
            Role::User => user_messages(index, turn, &mut messages)?,
            Role::Model => messages.push(model_message(index, turn)?),
        }
    }
    let tools = (!prompt.tools.is_empty()).then(|| prompt.tools.iter().map(tool_spec).collect());
    Ok((messages, tools))
}

fn media_error(index: usize, mime_type: &str) -> TemplateError {
    TemplateError::Unsupported(format!(
        "turns[{index}] holds {mime_type} media; chat templates take text only for now"
    ))
}

/// A user turn: runs of text become user messages, tool results tool messages.
fn user_messages(index: usize, turn: &Turn, out: &mut Vec<Value>) -> Result<(), TemplateError> {
    let mut text: Option<String> = None;
    for segment in &turn.segments {
        match segment {
            Segment::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            Segment::Document(parts) => {
                for part in parts {
                    match part {
                        DocumentPart::Text(t) => text.get_or_insert_with(String::new).push_str(t),
                        DocumentPart::Image(_) => return Err(media_error(index, "image/png")),
                    }
                }
            }
            Segment::ToolResult { id, name, response } => {
                if let Some(t) = text.take() {
                    out.push(json!({"role": "user", "content": t}));
                }
                let mut message = Map::new();
                message.insert("role".into(), "tool".into());
                if let Some(id) = id {
                    message.insert("tool_call_id".into(), id.as_str().into());
                }
                message.insert("name".into(), name.as_str().into());
                let content = match response {
                    Value::String(s) => s.clone(),
                    other => json_dumps(other),
                };
                message.insert("content".into(), content.into());
                out.push(Value::Object(message));
            }
            Segment::ToolCall { name, .. } => {
                return Err(TemplateError::Unsupported(format!(
                    "turns[{index}] is a user turn holding a call of {name:?}; only model turns call functions"
                )))
            }
            Segment::Media { mime_type, .. } => return Err(media_error(index, mime_type)),
            // The engine expands videos into text and media before rendering.
            Segment::Video { .. } => return Err(media_error(index, "video/mp4")),
        }
    }
    if let Some(t) = text {
        out.push(json!({"role": "user", "content": t}));
    } else if turn.segments.is_empty() {
        out.push(json!({"role": "user", "content": ""}));
    }
    Ok(())
}

/// A model turn: one assistant message with its text and tool calls.
fn model_message(index: usize, turn: &Turn) -> Result<Value, TemplateError> {
    let mut content = String::new();
    let mut calls = Vec::new();
    for segment in &turn.segments {
        match segment {
            Segment::Text(t) => content.push_str(t),
            Segment::Document(_) | Segment::Video { .. } => {
                return Err(TemplateError::Unsupported(format!(
                    "turns[{index}] is a model turn holding a document or a video; they come from the user"
                )))
            }
            Segment::ToolCall { id, name, args } => {
                let mut call = Map::new();
                if let Some(id) = id {
                    call.insert("id".into(), id.as_str().into());
                }
                call.insert("type".into(), "function".into());
                call.insert("function".into(), json!({"name": name, "arguments": args}));
                calls.push(Value::Object(call));
            }
            Segment::ToolResult { name, .. } => {
                return Err(TemplateError::Unsupported(format!(
                    "turns[{index}] is a model turn holding the result of {name:?}; results come from the user"
                )))
            }
            Segment::Media { mime_type, .. } => return Err(media_error(index, mime_type)),
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), content.into());
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

fn tool_spec(tool: &ToolSpec) -> Value {
    let mut function = Map::new();
    function.insert("name".into(), tool.name.as_str().into());
    function.insert("description".into(), tool.description.as_str().into());
    if let Some(parameters) = &tool.parameters {
        function.insert("parameters".into(), parameters.clone());
    }
    json!({"type": "function", "function": function})
}
