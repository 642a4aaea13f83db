//! Function declarations, calls and results written into the prompt as
//! text, for chat templates that render none of them: declarations at the
//! end of the system instruction, calls and results as Hermes-style
//! `<tool_call>` / `<tool_response>` JSON in their turns.

use crate::contract::{Prompt, Segment};

/// `prompt` with its tools as text (None: it has no tools, calls or results).
pub fn tools_as_text(prompt: &Prompt) -> Option<Prompt> {
    let has_tool_turns = prompt.turns.iter().any(|t| {
        t.segments
            .iter()
            .any(|s| matches!(s, Segment::ToolCall { .. } | Segment::ToolResult { .. }))
    });
    if prompt.tools.is_empty() && !has_tool_turns {
        return None;
    }
    let mut out = prompt.clone();
    if !prompt.tools.is_empty() {
        let decls: Vec<serde_json::Value> = prompt
            .tools
            .iter()
            .map(|t| {
                serde_json::json!({"name": t.name, "description": t.description,
                    "parameters": t.parameters.clone().unwrap_or_else(|| serde_json::json!({"type": "object"}))})
            })
            .collect();
        let mut text = if out.system.is_empty() {
            String::new()
        } else {
            "\n\n".to_owned()
        };
        text.push_str("You may call these functions:\n");
        for d in decls {
            text.push_str(&d.to_string());
            text.push('\n');
        }
        text.push_str("To call one, answer with <tool_call>\n{\"name\": <function name>, \"arguments\": <arguments object>}\n</tool_call>");
        out.system.push(Segment::Text(text));
    }
    out.tools.clear();
    for turn in &mut out.turns {
        for seg in &mut turn.segments {
            let text = match seg {
                Segment::ToolCall { name, args, .. } => format!(
                    "<tool_call>\n{}\n</tool_call>",
                    serde_json::json!({"name": name, "arguments": args})
                ),
                Segment::ToolResult { name, response, .. } => format!(
                    "<tool_response>\n{}\n</tool_response>",
                    serde_json::json!({"name": name, "response": response})
                ),
                _ => continue,
            };
            *seg = Segment::Text(text);
        }
    }
    Some(out)
}
