//! The real chat templates (../shared/fixtures/chat-templates) on the tiny
//! random models: declarations rendered by the template itself, calls forced
//! in each template's own syntax (Qwen 3 Hermes JSON, Qwen 3.5 XML, Gemma 4,
//! Llama 3.1 JSON), parsed back into valid arguments; and thinking through
//! the real Qwen 3 / Gemma 4 templates.

use std::path::Path;

use hearth_engine::{
    Engine, EngineEvent, FinishReason, GenerateRequest, Prompt, Role, SamplingParams, Segment,
    TextKind, ThinkingBudget, ToolChoice, ToolSpec, Turn,
};
use hearth_llama::{load_engine, ContextOptions, LoadOptions};
use serde_json::{json, Value};

/// Whether ../shared's real templates are beside the checkout (else the
/// test is skipped, said in one line).
fn real_templates(test: &str) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/chat-templates");
    if dir.is_dir() {
        return true;
    }
    println!(
        "skipped: {test}: {} is not beside this checkout",
        dir.display()
    );
    false
}

fn engine(model: &str, template: &str) -> hearth_engine::llm::LlmEngine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(format!(
        "../../../shared/fixtures/chat-templates/{template}.jinja"
    ));
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    engine_with(model, &source)
}

fn engine_with(model: &str, source: &str) -> hearth_engine::llm::LlmEngine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut opts = LoadOptions::new(root.join(format!("../../testdata/models/{model}.gguf")));
    opts.context = ContextOptions {
        sequences: 2,
        ctx_per_sequence: 2048,
        batch: 512,
        threads: 2,
        kv_f32: false,
        kv_unified: true,
    };
    opts.chat_template = Some(source.to_string());
    load_engine(&opts).unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "get_weather".into(),
            description: "Weather of a city".into(),
            parameters: Some(json!({"type": "object", "properties": {
                "city": {"type": "string", "enum": ["Paris", "Lyon"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "metric": {"type": "boolean"}}, "required": ["city"]})),
        },
        ToolSpec {
            name: "get_time".into(),
            description: "Time in a city".into(),
            parameters: Some(json!({"type": "object", "properties": {
                "city": {"type": "string", "enum": ["Paris", "Lyon"]}}, "required": ["city"]})),
        },
    ]
}

fn request(seed: u64) -> GenerateRequest {
    let mut prompt = Prompt::user("Weather in Paris?");
    prompt.system = vec![Segment::Text("Be brief.".into())];
    prompt.tools = tools();
    GenerateRequest {
        sampling: SamplingParams {
            temperature: 1.0,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        max_output_tokens: Some(200),
        thinking: ThinkingBudget::Off,
        tool_choice: ToolChoice::Any(Vec::new()),
        ..GenerateRequest::new(prompt)
    }
}

struct Outcome {
    calls: Vec<(String, Value)>,
    thought_tokens: u32,
    kinds: Vec<TextKind>,
    reason: Option<FinishReason>,
}

fn run(e: &dyn Engine, req: GenerateRequest) -> Outcome {
    let mut rx = e.generate(req).expect("accepted");
    let mut o = Outcome {
        calls: Vec::new(),
        thought_tokens: 0,
        kinds: Vec::new(),
        reason: None,
    };
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::ToolCall { name, args, .. } => o.calls.push((name, args)),
            EngineEvent::Delta { kind, .. } => o.kinds.push(kind),
            EngineEvent::Finished { reason, usage, .. } => {
                o.reason = Some(reason);
                o.thought_tokens = usage.thought_tokens;
            }
            EngineEvent::Failed(e) => panic!("{e}"),
            EngineEvent::Started { .. } => {}
        }
    }
    o
}

#[test]
fn forced_calls_in_each_templates_own_syntax() {
    if !real_templates("1 test of calls through 4 real templates") {
        return;
    }
    for (model, template) in [
        ("qwen3-f32", "Qwen-Qwen3-0.6B"),
        ("qwen3-f32", "Qwen3.5-4B"),
        ("gemma4-f32", "google-gemma-4-31B-it"),
        ("llama3-f32", "meta-llama-Llama-3.1-8B-Instruct"),
    ] {
        let e = engine(model, template);
        // The declarations reach the prompt through the template.
        let mut bare = request(0).prompt;
        bare.tools.clear();
        assert!(
            e.count_tokens(&request(0).prompt).expect("count").total
                > e.count_tokens(&bare).expect("count").total + 10,
            "{template} renders the declarations"
        );
        for seed in 0..6 {
            let o = run(&e, request(seed));
            assert_eq!(o.reason, Some(FinishReason::Stop), "{template} seed {seed}");
            assert_eq!(o.calls.len(), 1, "{template} seed {seed}");
            let (name, args) = &o.calls[0];
            assert!(name == "get_weather" || name == "get_time", "{name}");
            assert!(
                ["Paris", "Lyon"].contains(&args["city"].as_str().unwrap_or("")),
                "{template}: {args}"
            );
            if let Some(d) = args.get("days") {
                assert!(
                    d.as_i64().is_some_and(|d| (1..=7).contains(&d)),
                    "{template}: {args}"
                );
            }
            if let Some(m) = args.get("metric") {
                assert!(m.is_boolean(), "{template}: {args}");
            }
            // The call goes back through the template as history.
            let mut next = request(seed);
            next.prompt.turns.push(Turn {
                role: Role::Model,
                segments: vec![Segment::ToolCall {
                    id: None,
                    name: name.clone(),
                    args: args.clone(),
                }],
            });
            next.prompt.turns.push(Turn {
                role: Role::User,
                segments: vec![Segment::ToolResult {
                    id: None,
                    name: name.clone(),
                    response: json!({"temp": 21}),
                }],
            });
            next.tool_choice = ToolChoice::None;
            next.max_output_tokens = Some(8);
            let o = run(&e, next);
            assert!(o.calls.is_empty() && o.reason.is_some(), "{template}");
        }
    }
}

#[test]
fn thinking_through_the_real_templates() {
    if !real_templates("1 test of thinking through 2 real templates") {
        return;
    }
    for (model, template) in [
        ("qwen3-f32", "Qwen-Qwen3-0.6B"),
        ("gemma4-f32", "google-gemma-4-31B-it"),
    ] {
        let e = engine(model, template);
        assert!(e.info().capabilities.thinking, "{template}");
        for seed in 0..6 {
            let mut req = request(seed);
            req.prompt.tools.clear();
            req.tool_choice = ToolChoice::Auto;
            req.thinking = ThinkingBudget::Tokens(12);
            req.max_output_tokens = Some(30);
            let o = run(&e, req);
            assert!(
                o.thought_tokens > 0 && o.thought_tokens <= 12,
                "{template}: {}",
                o.thought_tokens
            );
            let first_answer = o.kinds.iter().position(|k| *k == TextKind::Answer);
            assert!(
                first_answer.is_none_or(|i| o.kinds[i..].iter().all(|k| *k == TextKind::Answer))
            );
        }
    }
}

#[test]
fn templates_that_open_the_thought_themselves() {
    if !real_templates("1 test of templates that open the thought") {
        return;
    }
    let think = |e: &dyn Engine, budget: ThinkingBudget, seed: u64| {
        let mut req = request(seed);
        req.prompt.tools.clear();
        req.tool_choice = ToolChoice::Auto;
        req.thinking = budget;
        req.max_output_tokens = Some(30);
        run(e, req)
    };
    // DeepSeek R1's template writes `<think>\n` after the assistant tag
    // itself: the engine must not open a second thought.
    let r1 = engine("qwen3-f32", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B");
    for seed in 0..6 {
        let o = think(&r1, ThinkingBudget::Tokens(10), seed);
        assert!(
            o.thought_tokens > 0 && o.thought_tokens <= 10,
            "{}",
            o.thought_tokens
        );
        let first_answer = o.kinds.iter().position(|k| *k == TextKind::Answer);
        assert!(first_answer.is_none_or(|i| o.kinds[i..].iter().all(|k| *k == TextKind::Answer)));
    }
    // A template that always opens the thought, asked not to think: the
    // thought is closed at once (one closing token), no thought text.
    let always = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}<|im_start|>assistant\n<think>\n";
    let e = engine_with("qwen3-f32", always);
    for seed in 0..6 {
        let o = think(&e, ThinkingBudget::Off, seed);
        assert_eq!(o.thought_tokens, 1, "seed {seed}");
        assert!(!o.kinds.contains(&TextKind::Thought), "seed {seed}");
        let o = think(&e, ThinkingBudget::Tokens(6), seed);
        assert!(o.thought_tokens > 0 && o.thought_tokens <= 6);
    }
}
