//! Thinking budgets, output schemas and forced function calls hold on the
//! tiny random-weight models (testdata/models) under sampling at
//! temperature 1, across many seeds: whatever the weights say, the engine's
//! masks and markers decide what may be emitted.

mod support;

use hearth_engine::{
    Engine, EngineEvent, FinishReason, GenerateRequest, OutputConstraint, Prompt, SamplingParams,
    TextKind, ThinkingBudget, ToolChoice, ToolSpec,
};
use serde_json::{json, Value};

const SEEDS: u64 = 12;

fn engine(name: &str) -> hearth_engine::llm::LlmEngine {
    engine_with(name, true)
}

fn engine_with(name: &str, jump_forward: bool) -> hearth_engine::llm::LlmEngine {
    support::tiny_engine(name, 4, |o| o.jump_forward = jump_forward)
}

fn request(text: &str, seed: u64, max: u32) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams {
            temperature: 1.0,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        max_output_tokens: Some(max),
        thinking: ThinkingBudget::Off,
        ..GenerateRequest::new(Prompt::user(text))
    }
}

#[derive(Debug, Default)]
struct Outcome {
    thought: String,
    answer: String,
    /// Kinds in arrival order (thoughts must all come first).
    kinds: Vec<TextKind>,
    calls: Vec<(String, Value)>,
    thought_tokens: u32,
    reason: Option<FinishReason>,
}

fn run(engine: &dyn Engine, req: GenerateRequest) -> Outcome {
    let mut rx = engine.generate(req).expect("accepted");
    let mut out = Outcome::default();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::Delta { kind, text, .. } => {
                out.kinds.push(kind);
                match kind {
                    TextKind::Thought => out.thought.push_str(&text),
                    TextKind::Answer => out.answer.push_str(&text),
                }
            }
            EngineEvent::ToolCall { name, args, .. } => out.calls.push((name, args)),
            EngineEvent::Finished { reason, usage, .. } => {
                out.reason = Some(reason);
                out.thought_tokens = usage.thought_tokens;
            }
            EngineEvent::Failed(e) => panic!("generation failed: {e}"),
            EngineEvent::Started { .. } => {}
        }
    }
    out
}

/// Validates `v` against the JSON Schema subset these tests use.
fn valid(v: &Value, s: &Value) -> Result<(), String> {
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        return alts
            .iter()
            .any(|a| valid(v, a).is_ok())
            .then_some(())
            .ok_or(format!("{v} matches no anyOf branch"));
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        if !values.contains(v) {
            return Err(format!("{v} not in {values:?}"));
        }
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        return Err(format!("{v} is not {types:?}"));
    }
    if let Some(n) = v.as_f64() {
        if s.get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
            || s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
        {
            return Err(format!("{n} out of bounds"));
        }
    }
    if let Some(t) = v.as_str() {
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| t.chars().count() as u64 > m)
        {
            return Err(format!("{t:?} too long"));
        }
    }
    if let Some(items) = v.as_array() {
        if s.get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| items.len() as u64 > m)
        {
            return Err("too many items".into());
        }
        if let Some(item) = s.get("items") {
            items.iter().try_for_each(|i| valid(i, item))?;
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap_or_default()) {
                return Err(format!("{r} missing from {v}"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => valid(x, ps)?,
                None if props.is_some() => return Err(format!("unexpected key {k}")),
                None => {}
            }
        }
    }
    Ok(())
}

#[test]
fn thinking_budgets_hold_and_thoughts_come_first() {
    for name in ["qwen3-f32", "gemma4-f32"] {
        let e = engine(name);
        assert!(e.info().capabilities.thinking, "{name} thinks");
        // (Gemma 4's opening marker alone is 7 tokens with the tiny tokenizer.)
        for budget in [10u32, 16, 24] {
            for seed in 0..SEEDS {
                let mut req = request("Why is the sky blue?", seed, 40);
                req.thinking = ThinkingBudget::Tokens(budget);
                let o = run(&e, req);
                assert!(
                    o.thought_tokens > 0 && o.thought_tokens <= budget,
                    "{name} budget {budget} seed {seed}: {} thought tokens",
                    o.thought_tokens
                );
                let first_answer = o.kinds.iter().position(|k| *k == TextKind::Answer);
                if let Some(i) = first_answer {
                    assert!(
                        o.kinds[i..].iter().all(|k| *k == TextKind::Answer),
                        "{name}: a thought after the answer began"
                    );
                }
                for marker in ["<think>", "</think>", "<|channel>", "<channel|>"] {
                    assert!(!o.thought.contains(marker) && !o.answer.starts_with(marker));
                }
                // No end of turn inside a thought: a reply that stopped
                // (rather than ran out of tokens) closed its thought first,
                // so it holds more than the opening marker.
                if o.reason == Some(FinishReason::Stop) {
                    assert!(o.thought_tokens >= 2, "{name} seed {seed}");
                }
                assert!(o.reason.is_some());
            }
        }
        // Budget 0: no thought at all, whatever the model prefers.
        for seed in 0..SEEDS {
            let o = run(&e, request("Why?", seed, 24));
            assert_eq!(o.thought_tokens, 0, "{name} seed {seed}");
            assert!(o.thought.is_empty());
        }
    }
}

#[test]
fn schemas_and_enums_hold_under_sampling() {
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "maxItems": 3},
        "mood": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
        "required": ["name", "age", "tags"]});
    for name in support::TINY_MODELS {
        let e = engine(name);
        for seed in 0..SEEDS {
            let mut req = request("Describe a person as JSON.", seed, 120);
            req.constraint = Some(OutputConstraint::JsonSchema(schema.clone()));
            let o = run(&e, req);
            assert_eq!(
                o.reason,
                Some(FinishReason::Stop),
                "{name} seed {seed}: {}",
                o.answer
            );
            let v: Value = serde_json::from_str(&o.answer)
                .unwrap_or_else(|err| panic!("{name} seed {seed}: {err}: {}", o.answer));
            valid(&v, &schema).unwrap_or_else(|err| panic!("{name} seed {seed}: {err}"));
            // Declared order.
            let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
            let order = ["name", "age", "tags", "mood"];
            let pos: Vec<usize> = keys
                .iter()
                .map(|k| order.iter().position(|o| o == k).expect("known key"))
                .collect();
            assert!(
                pos.windows(2).all(|w| w[0] < w[1]),
                "{name}: order {keys:?}"
            );

            let mut req = request("Pick a colour.", seed, 20);
            let values = vec!["red".to_string(), "green".into(), "light blue".into()];
            req.constraint = Some(OutputConstraint::Enum(values.clone()));
            let o = run(&e, req);
            assert!(
                values.contains(&o.answer),
                "{name} seed {seed}: {:?}",
                o.answer
            );
        }
    }
}

#[test]
fn thinking_then_a_constrained_answer() {
    let e = engine("qwen3-f32");
    for seed in 0..SEEDS {
        let mut req = request("JSON please", seed, 80);
        req.thinking = ThinkingBudget::Tokens(6);
        req.constraint = Some(OutputConstraint::JsonSchema(
            json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}),
        ));
        let o = run(&e, req);
        assert!(o.thought_tokens > 0 && o.thought_tokens <= 6);
        let v: Value = serde_json::from_str(&o.answer).expect("the answer is JSON");
        assert!(v["ok"].is_boolean(), "{v}");
    }
}

#[test]
fn forced_calls_name_an_allowed_function_with_valid_args() {
    let params = json!({"type": "object", "properties": {
        "city": {"type": "string", "enum": ["Paris", "Lyon"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city"]});
    let tools = vec![
        ToolSpec {
            name: "get_weather".into(),
            description: "Weather of a city".into(),
            parameters: Some(params.clone()),
        },
        ToolSpec {
            name: "get_time".into(),
            description: "Time of a city".into(),
            parameters: Some(params.clone()),
        },
        ToolSpec {
            name: "noop".into(),
            description: "Does nothing".into(),
            parameters: None,
        },
    ];
    for name in ["qwen3-f32", "llama3-f32", "gemma3-f32", "llama2-f32"] {
        let e = engine(name);
        for seed in 0..SEEDS {
            let mut req = request("Weather in Paris?", seed, 80);
            req.prompt.tools = tools.clone();
            let allowed = if seed % 2 == 0 {
                vec!["get_weather".to_string(), "get_time".into()]
            } else {
                Vec::new()
            };
            req.tool_choice = ToolChoice::Any(allowed.clone());
            let o = run(&e, req);
            assert_eq!(
                o.reason,
                Some(FinishReason::Stop),
                "{name} seed {seed}: {o:?}"
            );
            assert_eq!(o.calls.len(), 1, "{name} seed {seed}: {o:?}");
            let (fname, args) = &o.calls[0];
            if allowed.is_empty() {
                assert!(tools.iter().any(|t| &t.name == fname));
            } else {
                assert!(allowed.contains(fname), "{fname}");
            }
            if fname != "noop" {
                valid(args, &params).unwrap_or_else(|err| panic!("{name} seed {seed}: {err}"));
            } else {
                assert_eq!(args, &json!({}));
            }
            assert!(
                o.answer.trim().is_empty(),
                "no text beside a forced call: {o:?}"
            );

            // NONE: the call marker is banned and nothing is parsed as a call.
            let mut req = request("Weather in Paris?", seed, 24);
            req.prompt.tools = tools.clone();
            req.tool_choice = ToolChoice::None;
            assert!(run(&e, req).calls.is_empty());
        }
    }
}

/// Jump-forward appends what the grammar forces without sampling it; at
/// temperature 0 the answer is the one step-by-step constrained decoding
/// gives, on every tiny model, for a schema with many forced stretches
/// (keys, punctuation, enum values that share no prefix).
#[test]
fn jump_forward_answers_as_step_by_step_decoding_does() {
    let schema = json!({"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 12},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "genre": {"type": "string", "enum": ["documentary", "western", "musical"]},
        "cast": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 8},
            "lead": {"type": "boolean"}}, "required": ["name", "lead"]}, "maxItems": 2}},
        "required": ["title", "year", "genre", "cast"]});
    for name in support::TINY_MODELS {
        let (jump, step) = (engine_with(name, true), engine_with(name, false));
        for text in ["Describe a film as JSON.", "Another film, please."] {
            let mut req = request(text, 0, 160);
            req.sampling.temperature = 0.0;
            req.constraint = Some(OutputConstraint::JsonSchema(schema.clone()));
            let (a, b) = (run(&jump, req.clone()), run(&step, req));
            assert_eq!(a.answer, b.answer, "{name}: {text}");
            assert_eq!(a.reason, b.reason, "{name}: {text}");
            let v: Value = serde_json::from_str(&a.answer)
                .unwrap_or_else(|err| panic!("{name}: {err}: {}", a.answer));
            valid(&v, &schema).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }
}
