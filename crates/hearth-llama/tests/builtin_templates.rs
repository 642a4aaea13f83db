//! hearth's built-in chat formats (for GGUFs without a chat template)
//! render exactly what llama.cpp's own built-in templates
//! (`llama_chat_apply_template`, llama-chat.cpp) render for the same
//! conversations: every text-only case of testdata/chat-templates/cases.json.

use std::path::{Path, PathBuf};

use hearth_engine::template::builtin::BUILTIN_FORMATS;
use hearth_engine::template::ChatTemplate;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate};
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// (name, messages, add_generation_prompt) of the cases whose messages are
/// plain text in the system / user / assistant roles.
fn text_cases() -> Vec<(String, Vec<Value>, bool)> {
    let text = std::fs::read_to_string(testdata("chat-templates/cases.json")).expect("cases.json");
    let all: Value = serde_json::from_str(&text).expect("json");
    let mut out = Vec::new();
    for case in all["cases"].as_array().expect("cases") {
        if case.get("tools").is_some() || case.get("kwargs").is_some() {
            continue;
        }
        let messages = case["messages"].as_array().expect("messages").clone();
        let plain = messages.iter().all(|m| {
            m["content"].is_string()
                && matches!(m["role"].as_str(), Some("system" | "user" | "assistant"))
                && m.as_object().is_some_and(|o| o.len() == 2)
        });
        if plain {
            out.push((
                case["name"].as_str().expect("name").to_string(),
                messages,
                case["add_generation_prompt"].as_bool().unwrap_or(true),
            ));
        }
    }
    out
}

#[test]
fn builtin_formats_render_as_llama_cpp_does() {
    // Any model will do: llama.cpp's built-in templates do not read it.
    let (model, _) = hearth_llama::load_model(&testdata("models/qwen3-f32.gguf"), 0).expect("load");
    let cases = text_cases();
    assert!(cases.len() >= 6, "only {} text cases", cases.len());
    let mut compared = 0;
    for format in BUILTIN_FORMATS {
        if format.name == "gemma4" {
            continue; // not one of llama.cpp's: checked against Gemma 4's own template
        }
        let ours = ChatTemplate::new(format.source, "<s>", "</s>").expect("compiles");
        let theirs = LlamaChatTemplate::new(format.name).expect("name");
        for (case, messages, add_generation_prompt) in &cases {
            let rendered = ours
                .render(
                    messages,
                    None,
                    *add_generation_prompt,
                    &serde_json::Map::new(),
                )
                .unwrap_or_else(|e| panic!("{} / {case}: {e}", format.name));
            let chat: Vec<LlamaChatMessage> = messages
                .iter()
                .map(|m| {
                    LlamaChatMessage::new(
                        m["role"].as_str().unwrap_or_default().to_string(),
                        m["content"].as_str().unwrap_or_default().to_string(),
                    )
                    .expect("message")
                })
                .collect();
            let reference = model
                .apply_chat_template(&theirs, &chat, *add_generation_prompt)
                .unwrap_or_else(|e| panic!("llama.cpp {} / {case}: {e}", format.name));
            assert_eq!(rendered, reference, "{} / {case}", format.name);
            compared += 1;
        }
    }
    assert!(compared >= 36, "{compared}");
}
