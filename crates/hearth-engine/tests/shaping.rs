//! Every conversation shape Gemini accepts renders on every real chat
//! template in ../shared/fixtures/chat-templates, reshaped as the engine
//! reshapes it, and the rendering holds every text the request carried.
//! Skipped, with one line saying so, when ../shared is not beside the
//! checkout. The table it prints (template x shape) is the README's.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{fixed_now, real_templates_dir};
use hearth_engine::inline_tools::tools_as_text;
use hearth_engine::template::{system_media_to_first_user, ChatTemplate};
use hearth_engine::{Prompt, Role, Segment, ToolSpec, Turn};
use serde_json::{json, Value};

mod common;

/// What the engine puts where a media item goes (the projector's marker).
const MARKER: &str = "<__media__>";

fn text(t: &str) -> Segment {
    Segment::Text(t.to_owned())
}

fn turn(role: Role, segments: Vec<Segment>) -> Turn {
    Turn { role, segments }
}

fn call(id: Option<&str>, city: &str) -> Segment {
    Segment::ToolCall {
        id: id.map(str::to_owned),
        name: "get_weather".into(),
        args: json!({"city": city}),
    }
}

fn response(id: Option<&str>, report: &str) -> Segment {
    Segment::ToolResult {
        id: id.map(str::to_owned),
        name: "get_weather".into(),
        response: json!({"report": report}),
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather of a city".into(),
        parameters: Some(json!({"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]})),
    }
}

/// The guide's conversation shapes, each with the texts its rendering must hold.
fn shapes() -> Vec<(&'static str, Prompt, Vec<&'static str>)> {
    use Role::{Model, User};
    let cat = "You are a cat. Your name is Neko.";
    let image = Segment::Media {
        mime_type: "image/png".into(),
        data: Arc::new(vec![0x89, b'P', b'N', b'G']),
        tokens: None,
    };
    let with_tools = |turns: Vec<Turn>| Prompt {
        system: vec![text("Answer with the weather.")],
        turns,
        tools: vec![weather_tool()],
    };
    vec![
        (
            "system + user",
            Prompt {
                system: vec![text(cat)],
                turns: vec![turn(User, vec![text("Hello there")])],
                tools: Vec::new(),
            },
            vec![cat, "Hello there"],
        ),
        (
            "history with a model turn",
            Prompt {
                system: vec![text(cat)],
                turns: vec![
                    turn(User, vec![text("I have 2 dogs in my house.")]),
                    turn(
                        Model,
                        vec![text("Great to meet you. What would you like to know?")],
                    ),
                    turn(User, vec![text("How many paws are in my house?")]),
                ],
                tools: Vec::new(),
            },
            vec![
                cat,
                "I have 2 dogs in my house.",
                "What would you like to know?",
                "How many paws are in my house?",
            ],
        ),
        (
            "consecutive user turns",
            Prompt {
                system: vec![text(cat)],
                turns: vec![
                    turn(User, vec![text("First question: what is 2+2?")]),
                    turn(User, vec![text("Second question: what is 3+3?")]),
                ],
                tools: Vec::new(),
            },
            vec![
                cat,
                "First question: what is 2+2?",
                "Second question: what is 3+3?",
            ],
        ),
        (
            "opening model turn",
            Prompt {
                system: vec![text(cat)],
                turns: vec![
                    turn(Model, vec![text("Meow, I am Neko.")]),
                    turn(User, vec![text("Hello Neko")]),
                ],
                tools: Vec::new(),
            },
            vec![cat, "Meow, I am Neko.", "Hello Neko"],
        ),
        (
            "two calls + two responses",
            with_tools(vec![
                turn(User, vec![text("Weather in Paris and Rome?")]),
                turn(
                    Model,
                    vec![call(Some("call-a"), "Paris"), call(Some("call-b"), "Rome")],
                ),
                turn(
                    User,
                    vec![
                        response(Some("call-a"), "sunnyparis"),
                        response(Some("call-b"), "rainyrome"),
                    ],
                ),
                turn(Model, vec![text("Sunny in Paris, rainy in Rome.")]),
                turn(User, vec![text("And tomorrow?")]),
            ]),
            vec![
                "Answer with the weather.",
                "Weather in Paris and Rome?",
                "Paris",
                "Rome",
                "sunnyparis",
                "rainyrome",
                "Sunny in Paris, rainy in Rome.",
                "And tomorrow?",
            ],
        ),
        (
            "call without an id",
            with_tools(vec![
                turn(User, vec![text("Weather in Oslo?")]),
                turn(Model, vec![text("Let me look."), call(None, "Oslo")]),
                turn(User, vec![response(None, "snowyoslo")]),
            ]),
            vec![
                "Answer with the weather.",
                "Weather in Oslo?",
                "Let me look.",
                "Oslo",
                "snowyoslo",
            ],
        ),
        (
            "image in the system instruction",
            Prompt {
                system: vec![text("Describe pictures like this one:"), image],
                turns: vec![turn(User, vec![text("What is this style called?")])],
                tools: Vec::new(),
            },
            vec![
                "Describe pictures like this one:",
                "What is this style called?",
            ],
        ),
    ]
}

/// The prompt as the engine hands it to the template: tools as text when the
/// template renders none, system media moved where it refuses them, each
/// media item as the marker.
fn as_engine_renders(template: &ChatTemplate, prompt: &Prompt) -> Prompt {
    let mut prompt = match template.tool_dialect() {
        Some(_) => prompt.clone(),
        None => tools_as_text(prompt).unwrap_or_else(|| prompt.clone()),
    };
    if template.shaping().move_system_media {
        system_media_to_first_user(&mut prompt);
    }
    let marked = |segments: &mut Vec<Segment>| {
        for s in segments {
            if matches!(s, Segment::Media { .. }) {
                *s = text(MARKER);
            }
        }
    };
    marked(&mut prompt.system);
    for t in &mut prompt.turns {
        marked(&mut t.segments);
    }
    prompt
}

#[test]
fn every_gemini_conversation_renders_on_every_real_template() {
    let dir = real_templates_dir();
    let shapes = shapes();
    let Ok(entries) = fs::read_dir(&dir) else {
        println!(
            "skipped: 1 test over {} conversation shapes: {} is not beside this checkout (the real chat templates live in ../shared)",
            shapes.len(),
            dir.display()
        );
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jinja"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no templates in {}", dir.display());
    let tokens: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/chat-templates/tokens.json"),
        )
        .expect("tokens.json"),
    )
    .expect("tokens.json parses");
    let mut failures = Vec::new();
    let names: Vec<&str> = shapes.iter().map(|s| s.0).collect();
    let mut table = vec![format!(
        "| template | {} | hearth's shaping |",
        names.join(" | ")
    )];
    for path in &paths {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("stem");
        let bos = tokens[stem]["bos_token"].as_str().unwrap_or_default();
        let eos = tokens[stem]["eos_token"].as_str().unwrap_or_default();
        let source = fs::read_to_string(path).expect("template source");
        let template = ChatTemplate::new(&source, bos, eos)
            .expect("template compiles")
            .with_clock(fixed_now);
        let mut row = vec![stem.to_owned()];
        for (name, prompt, texts) in &shapes {
            let prompt = as_engine_renders(&template, prompt);
            let media = prompt
                .segments()
                .filter(|s| matches!(s, Segment::Text(t) if t == MARKER))
                .count();
            match template.render_prompt(&prompt, &serde_json::Map::new()) {
                Ok(out) => {
                    let missing: Vec<&&str> = texts.iter().filter(|t| !out.contains(**t)).collect();
                    if !missing.is_empty() {
                        failures.push(format!("{stem} / {name}: missing {missing:?} in {out:?}"));
                    }
                    if out.matches(MARKER).count() != media {
                        failures.push(format!("{stem} / {name}: {media} media, rendered {out:?}"));
                    }
                    row.push("rendered".into());
                }
                Err(e) => {
                    failures.push(format!("{stem} / {name}: {e}"));
                    row.push(format!("error: {e}"));
                }
            }
        }
        let shaping = template.shaping().describe(true);
        row.push(if shaping.is_empty() {
            "as sent".into()
        } else {
            shaping.join("; ")
        });
        table.push(format!("| {} |", row.join(" | ")));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
