//! Unit tests: Python-jinja2 semantics beyond the fixture templates (the
//! expected strings were produced by transformers 5.24.0 / jinja2 3.1.6
//! `render_jinja_template`), `hf_messages`, and the fallback template.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::contract::{Prompt, Role, Segment, ToolSpec, Turn};

/// (name, template, Ok(python output) or Err(python exception type)).
type Probe = (
    &'static str,
    &'static str,
    Result<&'static str, &'static str>,
);

/// (Python tuples print as lists here: minijinja has no tuple type.)
const PROBES: &[Probe] = &[
    (
        "printing",
        r#"{{ none }}|{{ true }}|{{ [1, 'a', "it's", none, false, 2.50] }}|{{ {'k': [1.0, {'x': none}]} }}|{{ 1e20 }}|{{ 0.00001 }}|{{ undefined_var }}|"#,
        Ok(
            r#"None|True|[1, 'a', "it's", None, False, 2.5]|{'k': [1.0, {'x': None}]}|1e+20|1e-05||"#,
        ),
    ),
    (
        "string_filter",
        r#"{{ true|string }}|{{ [true]|string }}|{{ 3|string }}|{{ none|string }}"#,
        Ok(r#"True|[True]|3|None"#),
    ),
    (
        "tojson",
        r#"{{ messages|tojson }}
{{ messages[0]|tojson(indent=2) }}
{{ {'b': 1, 'a': [1, 2, []], 'c': {}}|tojson(sort_keys=true) }}
{{ 'é<>&\'"\n\u0001'|tojson }}
{{ {'a': 1}|tojson(separators=(',', ':')) }}
{{ {'a': [1]}|tojson(indent=0) }}
{{ [1.5, 10000000000000000.0, 2]|tojson }}"#,
        Ok(
            r#"[{"role": "user", "content": "hé"}, {"thinking": "r", "role": "assistant", "content": "yo", "reasoning_content": "r"}, {"role": "user", "content": "x"}]
{
  "role": "user",
  "content": "hé"
}
{"a": [1, 2, []], "b": 1, "c": {}}
"é<>&'\"\n\u0001"
{"a":1}
{
"a": [
1
]
}
[1.5, 1e+16, 2]"#,
        ),
    ),
    (
        "pymethods",
        r#"{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ '\n\nq\n'.lstrip('\n') }}|{{ 'q  '.rstrip() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith('bc') }}|{{ 'aXbX'.replace('X', '-') }}|{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}|{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('z') }}|{{ {'a': 1}.get('z', 5) }}"#,
        Ok(r#"a b|a|['a', 'b', '', 'c']|q
|q|True|True|a-b-|a=1;b=2;|1|None|5"#),
    ),
    (
        "loops",
        r#"{% for i in range(5, -1, -2) %}{{ i }}{% endfor %}|{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.previtem.role if loop.previtem }}/{{ loop.nextitem.role if loop.nextitem }};{% endfor %}|{{ [1,2,3][::-1] }}|{{ [1,2,3][1:] }}|{{ [1,2,3][:-1] }}|{{ 'abc'[-1] }}|{% for x in [1,2,3,4] if x is even %}{{ x }}{% endfor %}|{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}"#,
        Ok(
            r#"531|0TrueFalse/assistant;1FalseFalseuser/user;2FalseTrueassistant/;|[3, 2, 1]|[2, 3]|[1, 2]|c|24|13"#,
        ),
    ),
    (
        "tests",
        r#"{{ 'a' is sequence }}{{ {} is sequence }}{{ 1 is sequence }}{{ nothing is sequence }}{{ 'a' is iterable }}{{ nothing is iterable }}{{ {} is mapping }}{{ true is boolean }}{{ false is false }}{{ none is none }}{{ 1 is string }}"#,
        Ok(r#"TrueTrueFalseTrueTrueTrueTrueTrueTrueTrueFalse"#),
    ),
    (
        "filters",
        r#"{% for k, v in {'B': 1, 'a': 2, 'c': 3}|dictsort %}{{ k }}{% endfor %}|{{ ['a','b']|map('upper')|list }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ ['x','code','y']|reject('equalto', 'code')|join(', ') }}|{{ nothing|default('d') }}|{{ '  t  '|trim }}|{% for k, v in {'a': 1}|items %}{{ k }}{{ v }}{% endfor %}|{{ 'ab'|upper }}|{{ nothing|length }}"#,
        Ok(r#"aBc|['A', 'B']|2|x, y|d|t|a1|AB|0"#),
    ),
    (
        "namespace_macro",
        r#"{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}|{% macro m(x, y='d', z=none) %}[{{ x }}{{ y }}{{ z }}]{% endmacro %}{{ m(1) }}{{ m(1, z=3) }}{{ m(' p ')|trim }}|{% macro early(n) %}E{{ later(n) }}{% endmacro %}{% macro later(n) %}L{{ n }}{% endmacro %}{{ early(2) }}"#,
        Ok(r#"2|[1dNone][1d3][ p dNone]|EL2"#),
    ),
    (
        "whitespace",
        r#"A
  {% if true %}
    B
  {% endif %}
C
{%- if true -%}
 D 
{%- endif %}
E
"#,
        Ok(r#"A
    B
CDE"#),
    ),
    (
        "undefined_add",
        r#"{{ nothing + 'a' }}"#,
        Err("UndefinedError"),
    ),
    (
        "undefined_attr",
        r#"{{ nothing.attr }}"#,
        Err("UndefinedError"),
    ),
    (
        "string_attr",
        r#"{{ 'abc'.content is defined }}"#,
        Ok(r#"False"#),
    ),
    (
        "raise",
        r#"{{ raise_exception('No ' ~ 'way') }}"#,
        Err("TemplateError"),
    ),
    (
        "ops",
        r#"{{ 7 % 3 }}|{{ 'a' ~ 1 ~ true }}|{{ 'x' in 'axb' }}|{{ 'q' not in ['a'] }}|{{ 1 if false }}|{{ 5 // 2 }}|{{ 5 / 2 }}|{{ 2 ** 3 }}|{{ None }}{{ True }}{{ False }}"#,
        Ok(r#"1|a1True|True|True||2|2.5|8|NoneTrueFalse"#),
    ),
];

fn probe_messages() -> Vec<serde_json::Value> {
    vec![
        json!({"role": "user", "content": "hé"}),
        json!({"role": "assistant", "content": "yo", "reasoning_content": "r"}),
        json!({"role": "user", "content": "x", "n": null}),
    ]
}

#[test]
fn renders_like_python_jinja2() {
    let messages = probe_messages();
    let mut failures = Vec::new();
    for (name, source, want) in PROBES {
        let template = ChatTemplate::new(source, "", "").expect("probe compiles");
        let got = template.render(&messages, None, false, &serde_json::Map::new());
        match (want, &got) {
            (Ok(want), Ok(got)) if want == got => {}
            (Err("TemplateError"), Err(TemplateError::Raised(_))) => {}
            (Err("UndefinedError"), Err(TemplateError::Render(_))) => {}
            _ => failures.push(format!("{name}: want {want:?}\n    got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// jinja2 raises on `x in undefined`; minijinja's lenient undefined answers
/// false. No fixture depends on it (the Python errors there also come from
/// `undefined + str` or a method call on undefined, which fail here too).
#[test]
fn containment_in_undefined_is_false() {
    let template = ChatTemplate::new("{{ 'a' in nothing }}", "", "").expect("compiles");
    let got = template.render(&[], None, false, &serde_json::Map::new());
    assert_eq!(got, Ok("False".to_owned()));
}

#[test]
fn raise_exception_message_comes_back_verbatim() {
    let source = "{% macro check(m) %}{{ raise_exception('Bad role: ' ~ m.role) }}{% endmacro %}\
                  {% for m in messages %}{{ check(m) }}{% endfor %}";
    let template = ChatTemplate::new(source, "", "").expect("compiles");
    let got = template.render(&probe_messages(), None, false, &serde_json::Map::new());
    assert_eq!(got, Err(TemplateError::Raised("Bad role: user".to_owned())));
}

#[test]
fn syntax_errors_are_reported_at_compile_time() {
    let err = ChatTemplate::new("{% for m in messages %}", "", "").expect_err("unclosed for");
    assert!(matches!(err, TemplateError::Syntax(_)), "{err:?}");
}

#[test]
fn variables_clock_and_extra() {
    let source = "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ documents }}|\
                  {{ add_generation_prompt }}|{{ enable_thinking is defined }}|\
                  {{ strftime_now('%Y-%m-%d %H:%M') }}";
    let template = ChatTemplate::new(source, "<s>", "</s>")
        .expect("compiles")
        .with_clock(|| CivilDateTime::from_unix_seconds(1_741_946_400));
    let none = serde_json::Map::new();
    let got = template.render(&[], None, true, &none);
    assert_eq!(
        got.as_deref(),
        Ok("<s>|</s>|None|None|True|False|2025-03-14 10:00")
    );

    let mut extra = serde_json::Map::new();
    extra.insert("eos_token".into(), json!("<eos>"));
    extra.insert("enable_thinking".into(), json!(false));
    let tools = [json!({"type": "function"})];
    let got = template.render(&[], Some(&tools), false, &extra);
    assert_eq!(
        got.as_deref(),
        Ok("<s>|<eos>|[{'type': 'function'}]|None|False|True|2025-03-14 10:00")
    );

    extra.insert("messages".into(), json!([]));
    let err = template.render(&[], None, false, &extra);
    assert!(matches!(err, Err(TemplateError::Unsupported(_))), "{err:?}");
}

#[test]
fn messages_must_be_objects() {
    let template = ChatTemplate::new("{{ messages }}", "", "").expect("compiles");
    let err = template.render(&[json!("hi")], None, false, &serde_json::Map::new());
    assert!(matches!(err, Err(TemplateError::Render(_))), "{err:?}");
}

#[test]
fn detects_thinking_and_tools() {
    let plain = ChatTemplate::new(FALLBACK_TEMPLATE, "", "").expect("compiles");
    assert!(!plain.supports_thinking());
    assert!(!plain.supports_tools());
    let source = "{% if tools %}T{% endif %}{% if enable_thinking is defined %}<think>{% endif %}";
    let rich = ChatTemplate::new(source, "", "").expect("compiles");
    assert!(rich.supports_thinking());
    assert!(rich.supports_tools());
    let emits = ChatTemplate::new("{{ '<think>\\n' }}", "", "").expect("compiles");
    assert!(emits.supports_thinking());
    assert!(!emits.supports_tools());
}

fn text(s: &str) -> Segment {
    Segment::Text(s.to_owned())
}

fn weather_prompt() -> Prompt {
    Prompt {
        system: vec![Segment::Text("Be brief.".to_owned())],
        turns: vec![
            Turn {
                role: Role::User,
                segments: vec![text("Weather in "), text("Paris?")],
            },
            Turn {
                role: Role::Model,
                segments: vec![
                    text("Checking."),
                    Segment::ToolCall {
                        id: Some("c1".to_owned()),
                        name: "get_weather".to_owned(),
                        args: json!({"city": "Paris"}),
                    },
                ],
            },
            Turn {
                role: Role::User,
                segments: vec![Segment::ToolResult {
                    id: Some("c1".to_owned()),
                    name: "get_weather".to_owned(),
                    response: json!({"temp": 22.5, "sky": "clair"}),
                }],
            },
            Turn {
                role: Role::Model,
                segments: vec![
                    Segment::ToolCall {
                        id: None,
                        name: "a".to_owned(),
                        args: json!({}),
                    },
                    Segment::ToolCall {
                        id: None,
                        name: "b".to_owned(),
                        args: json!({"x": [1]}),
                    },
                ],
            },
            Turn {
                role: Role::User,
                segments: vec![
                    Segment::ToolResult {
                        id: None,
                        name: "a".to_owned(),
                        response: json!("done"),
                    },
                    text("Thanks"),
                ],
            },
        ],
        tools: vec![
            ToolSpec {
                name: "get_weather".to_owned(),
                description: "Weather of a city.".to_owned(),
                parameters: Some(
                    json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                ),
            },
            ToolSpec {
                name: "ping".to_owned(),
                description: "No arguments.".to_owned(),
                parameters: None,
            },
        ],
    }
}

#[test]
fn hf_messages_maps_every_segment() {
    let (messages, tools) = hf_messages(&weather_prompt()).expect("text-only prompt");
    let want = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "{\"temp\": 22.5, \"sky\": \"clair\"}"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "a", "arguments": {}}},
            {"type": "function", "function": {"name": "b", "arguments": {"x": [1]}}}
        ]},
        {"role": "tool", "name": "a", "content": "done"},
        {"role": "user", "content": "Thanks"}
    ]);
    assert_eq!(serde_json::Value::Array(messages), want);
    let want_tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "ping", "description": "No arguments."}}
    ]);
    assert_eq!(tools.map(serde_json::Value::Array), Some(want_tools));
}

#[test]
fn hf_messages_without_tools_gives_none() {
    let prompt = Prompt {
        system: Vec::new(),
        turns: vec![Turn {
            role: Role::User,
            segments: vec![text("Hi")],
        }],
        tools: vec![],
    };
    let (messages, tools) = hf_messages(&prompt).expect("text-only prompt");
    assert_eq!(messages, vec![json!({"role": "user", "content": "Hi"})]);
    assert_eq!(tools, None);
}

#[test]
fn hf_messages_rejects_media() {
    let prompt = Prompt {
        system: Vec::new(),
        turns: vec![Turn {
            role: Role::User,
            segments: vec![
                text("What is this?"),
                Segment::Media {
                    mime_type: "image/png".to_owned(),
                    data: Arc::new(vec![0x89, b'P', b'N', b'G']),
                    tokens: None,
                },
            ],
        }],
        tools: vec![],
    };
    let err = hf_messages(&prompt).expect_err("media is not supported yet");
    assert!(
        matches!(&err, TemplateError::Unsupported(m) if m.contains("image/png")),
        "{err:?}"
    );
}

/// The fallback ChatML template; the expected text is what transformers'
/// `render_jinja_template` gives for the same messages.
#[test]
fn fallback_template_renders_chatml() {
    let (mut messages, tools) = hf_messages(&weather_prompt()).expect("text-only prompt");
    // The Python reference used a single tool message for the last user turn.
    messages.truncate(5);
    messages.push(json!({"role": "user", "content": "Thanks"}));
    let template = ChatTemplate::new(FALLBACK_TEMPLATE, "", "").expect("fallback compiles");
    let got = template
        .render(&messages, tools.as_deref(), true, &serde_json::Map::new())
        .expect("renders");
    let want = "<|im_start|>system\nBe brief.<|im_end|>\n\
        <|im_start|>user\nWeather in Paris?<|im_end|>\n\
        <|im_start|>assistant\nChecking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n\
        <|im_start|>tool\n{\"temp\": 22.5, \"sky\": \"clair\"}<|im_end|>\n\
        <|im_start|>assistant\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n\
        <tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": [1]}}\n</tool_call><|im_end|>\n\
        <|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(got, want);
}

/// A Gemma 2-style template: what it refuses is reshaped, and the probes say so.
#[test]
fn a_template_without_a_system_role_gets_the_system_in_the_first_user_turn() {
    let source = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('alternate!') }}{% endif %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>";
    let template = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
    let shaping = template.shaping();
    assert!(shaping.fold_system && shaping.alternate, "{shaping:?}");
    let prompt = Prompt {
        system: vec![text("You are a cat.")],
        turns: vec![
            Turn {
                role: Role::User,
                segments: vec![text("Hello")],
            },
            Turn {
                role: Role::User,
                segments: vec![text("there")],
            },
        ],
        tools: Vec::new(),
    };
    let out = template
        .render_prompt(&prompt, &serde_json::Map::new())
        .expect("reshaped, it renders");
    assert_eq!(
        out,
        "<s><user>You are a cat.\n\nHello\n\nthere\n<assistant>"
    );
}

/// What no reshaping can express is a 400 on contents that says so, with the
/// template's words as the detail.
#[test]
fn a_conversation_no_reshaping_can_express_is_a_400_on_contents() {
    use crate::prompt_format::{PromptFormat, RenderOptions};
    use crate::{EngineError, Field};
    let source = "{% for m in messages %}{% if 'forbidden' in m['content'] %}{{ raise_exception('no forbidden words') }}{% endif %}{{ m['content'] }}{% endfor %}";
    let template = ChatTemplate::new(source, "", "").expect("compiles");
    let err = PromptFormat::render(
        &template,
        &Prompt::user("a forbidden word"),
        &RenderOptions::default(),
    )
    .expect_err("refused");
    let EngineError::InvalidRequest { field, message } = err else {
        panic!("expected a 400, got {err:?}");
    };
    assert_eq!(field, Some(Field::Contents));
    assert!(
        message.starts_with("this model's chat template cannot express this conversation")
            && message.ends_with("(the template says: no forbidden words)"),
        "{message}"
    );
}

/// A template that drops the system message in some conversations (Mistral
/// Nemo's keeps it only before a last user turn): the rendering is redone
/// with the system text at the head of the first user turn.
#[test]
fn a_system_message_the_template_drops_is_folded_into_the_first_user_turn() {
    let source = "{% for m in messages %}{% if m['role'] != 'system' or messages|length == 2 %}[{{ m['role'] }}]{{ m['content'] }}{% endif %}{% endfor %}";
    let template = ChatTemplate::new(source, "", "").expect("compiles");
    assert!(!template.shaping().fold_system, "[system, user] keeps it");
    let prompt = Prompt {
        system: vec![text("Be a cat.")],
        turns: vec![
            Turn {
                role: Role::User,
                segments: vec![text("Hi")],
            },
            Turn {
                role: Role::Model,
                segments: vec![text("Meow")],
            },
            Turn {
                role: Role::User,
                segments: vec![text("Why?")],
            },
        ],
        tools: Vec::new(),
    };
    let out = template
        .render_prompt(&prompt, &serde_json::Map::new())
        .expect("renders");
    assert_eq!(out, "[user]Be a cat.\n\nHi[assistant]Meow[user]Why?");
}
