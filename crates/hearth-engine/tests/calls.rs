//! Function calls cut out of the answer and parsed, through the real engine
//! and scheduler, over a runner that writes a fixed script (byte tokens): a
//! well-formed call becomes a ToolCall event, a broken one ends the
//! candidate with MALFORMED_FUNCTION_CALL.
#![cfg(feature = "testing")]

use std::collections::HashMap;
use std::sync::Arc;

use hearth_engine::llm::{LlmEngine, LlmEngineConfig, PromptFormat, RenderOptions};
use hearth_engine::output::Dialect;
use hearth_engine::runner::{BatchToken, Runner, RunnerError};
use hearth_engine::test_runner::{ByteTokenizer, END, VOCAB};
use hearth_engine::*;
use serde_json::json;

/// A template that renders declarations itself and writes Hermes calls.
struct Hermes;

impl PromptFormat for Hermes {
    fn render(&self, _: &Prompt, _: &RenderOptions) -> Result<String, EngineError> {
        Ok("prompt".into())
    }
    fn supports_thinking(&self) -> bool {
        false
    }
    fn tool_dialect(&self) -> Option<Dialect> {
        Some(Dialect::Hermes)
    }
}

/// Emits `script` byte by byte after the prompt, then the end token.
struct Script {
    script: Vec<u8>,
    /// Position of each sequence's first logits (the prompt's last token).
    base: HashMap<u32, u32>,
    rows: Vec<Vec<f32>>,
}

impl Runner for Script {
    fn kv_capacity(&self) -> u32 {
        512
    }
    fn max_sequences(&self) -> u32 {
        1
    }
    fn max_batch(&self) -> usize {
        64
    }
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), RunnerError> {
        self.rows.clear();
        for b in batch {
            if !b.logits {
                self.rows.push(Vec::new());
                continue;
            }
            let base = *self.base.entry(b.seq).or_insert(b.pos);
            let step = (b.pos - base) as usize;
            let next = self.script.get(step).map_or(END, |&c| i32::from(c));
            let mut row = vec![0.0; VOCAB];
            row[next as usize] = 10.0;
            self.rows.push(row);
        }
        Ok(())
    }
    fn logits(&self, i: usize) -> &[f32] {
        &self.rows[i]
    }
    fn seq_remove(&mut self, seq: u32, from: u32, _: Option<u32>) -> bool {
        if from == 0 {
            self.base.remove(&seq);
        }
        true
    }
    fn seq_copy(&mut self, _: u32, _: u32, _: u32, _: Option<u32>) -> Result<(), RunnerError> {
        Ok(())
    }
}

fn run(script: &str) -> Vec<EngineEvent> {
    let script = script.as_bytes().to_vec();
    let engine = LlmEngine::start(
        LlmEngineConfig {
            id: "script".into(),
            display_name: "script".into(),
            description: String::new(),
            max_output_tokens: 256,
            prefill_chunk: 64,
            queue_limit: 4,
            max_thinking_tokens: None,
            sampling: Default::default(),
            jump_forward: true,
            speculate: true,
        },
        Arc::new(ByteTokenizer::default()),
        Arc::new(Hermes),
        Box::new(move || {
            Ok(Box::new(Script {
                script: script.clone(),
                base: HashMap::new(),
                rows: Vec::new(),
            }) as Box<dyn Runner>)
        }),
    )
    .expect("engine");
    let mut prompt = Prompt::user("weather?");
    prompt.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: String::new(),
        parameters: Some(json!({"type": "object"})),
    }];
    let request = GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        thinking: ThinkingBudget::Off,
        ..GenerateRequest::new(prompt)
    };
    let mut rx = engine.generate(request).expect("accepted");
    let mut events = Vec::new();
    while let Some(ev) = rx.blocking_recv() {
        events.push(ev);
    }
    events
}

fn text(events: &[EngineEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Delta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn finish(events: &[EngineEvent]) -> Option<FinishReason> {
    events.iter().find_map(|e| match e {
        EngineEvent::Finished { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_call_between_markers_becomes_a_tool_call_event() {
    let ev = run("Let me see.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
    assert_eq!(text(&ev), "Let me see.");
    let calls: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ToolCall { name, args, .. } => Some((name.clone(), args.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        vec![("get_weather".to_string(), json!({"city": "Paris"}))]
    );
    assert_eq!(finish(&ev), Some(FinishReason::Stop));
}

#[test]
fn broken_or_unknown_calls_are_malformed() {
    for script in [
        "<tool_call>{\"name\": \"get_weather\", \"argu",
        "<tool_call>{\"name\": \"get_weather\", \"arguments\": 3}</tool_call>",
        "<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call>",
    ] {
        let ev = run(script);
        assert_eq!(
            finish(&ev),
            Some(FinishReason::MalformedFunctionCall),
            "{script}"
        );
        assert!(!ev.iter().any(|e| matches!(e, EngineEvent::ToolCall { .. })));
        assert!(
            !text(&ev).contains("tool_call"),
            "call text never leaks: {script}"
        );
    }
}
