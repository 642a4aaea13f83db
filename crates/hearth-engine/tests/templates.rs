//! Every real chat template in ../shared/fixtures/chat-templates, rendered
//! for every case in testdata/chat-templates/cases.json, must match the
//! Python reference (transformers' apply_chat_template) byte for byte, or
//! fail where Python raised. See testdata/chat-templates/README.md.

use std::fs;
use std::path::{Path, PathBuf};

use common::{fixed_now, real_templates_dir};
use hearth_engine::template::{ChatTemplate, TemplateError};
use serde_json::Value;

mod common;

/// 12 templates x 19 cases.
const EXPECTED_FIXTURES: usize = 228;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first differing byte, with some context from both sides.
fn describe_mismatch(got: &str, want: &str) -> String {
    let (g, w) = (got.as_bytes(), want.as_bytes());
    let at = g
        .iter()
        .zip(w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let context = |b: &[u8]| {
        let start = at.saturating_sub(60);
        let end = (at + 60).min(b.len());
        String::from_utf8_lossy(&b[start..end]).into_owned()
    };
    format!(
        "first difference at byte {at} (got {} bytes, want {})\n    got:  {:?}\n    want: {:?}",
        g.len(),
        w.len(),
        context(g),
        context(w)
    )
}

struct Fixtures {
    templates: Vec<PathBuf>,
    cases: Vec<Value>,
    tokens: Value,
    manifest: Value,
    expected: PathBuf,
}

/// The fixtures (None, said in one line: ../shared is not beside the checkout).
fn load(test: &str) -> Option<Fixtures> {
    let root = manifest_dir().join("../../testdata/chat-templates");
    let dir = real_templates_dir();
    let Ok(entries) = fs::read_dir(&dir) else {
        println!(
            "skipped: {test}: {} is not beside this checkout (the real chat templates live in ../shared)",
            dir.display()
        );
        return None;
    };
    let mut templates: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jinja"))
        .collect();
    templates.sort();
    let cases = read_json(&root.join("cases.json"))["cases"]
        .as_array()
        .expect("cases.json: cases")
        .clone();
    Some(Fixtures {
        templates,
        cases,
        tokens: read_json(&root.join("tokens.json")),
        manifest: read_json(&root.join("expected/manifest.json")),
        expected: root.join("expected"),
    })
}

/// Renders one case; Err(description) when it does not match the reference.
fn check_case(
    template: &ChatTemplate,
    case: &Value,
    expected_dir: &Path,
    status: &Value,
) -> Result<(), String> {
    let name = case["name"].as_str().expect("case name");
    let messages = case["messages"].as_array().expect("case messages");
    let tools = case.get("tools").and_then(Value::as_array);
    let add_generation_prompt = case["add_generation_prompt"].as_bool().unwrap_or(false);
    let kwargs = case
        .get("kwargs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let rendered = template.render(
        messages,
        tools.map(Vec::as_slice),
        add_generation_prompt,
        &kwargs,
    );
    let txt = expected_dir.join(format!("{name}.txt"));
    let err = expected_dir.join(format!("{name}.error"));
    match (txt.exists(), err.exists(), rendered) {
        (true, false, Ok(got)) => {
            let want = fs::read_to_string(&txt).map_err(|e| e.to_string())?;
            if status["status"] != "ok" {
                return Err("manifest does not say ok".into());
            }
            (got == want)
                .then_some(())
                .ok_or_else(|| describe_mismatch(&got, &want))
        }
        (true, false, Err(e)) => Err(format!("expected output, got error: {e}")),
        (false, true, Ok(got)) => Err(format!("expected an error, rendered {got:?}")),
        (false, true, Err(e)) => {
            let want = fs::read_to_string(&err).map_err(|e| e.to_string())?;
            match (status["error_type"].as_str(), &e) {
                (Some("raise_exception"), TemplateError::Raised(msg)) if *msg == want => Ok(()),
                (Some("raise_exception"), _) => {
                    Err(format!("expected raise_exception({want:?}), got {e:?}"))
                }
                (Some(_), TemplateError::Render(_)) => Ok(()),
                (kind, _) => Err(format!("expected a {kind:?} error, got {e:?}")),
            }
        }
        (true, true, _) => Err("both .txt and .error exist".into()),
        (false, false, _) => Err("reference fixture missing".into()),
    }
}

#[test]
fn templates_match_python_reference() {
    let Some(fixtures) = load("1 test of 228 renderings") else {
        return;
    };
    assert_eq!(fixtures.templates.len(), 12, "templates found");
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in &fixtures.templates {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("stem");
        let source = fs::read_to_string(path).expect("template source");
        let tokens = &fixtures.tokens[stem];
        let (bos, eos) = (tokens["bos_token"].as_str(), tokens["eos_token"].as_str());
        let (Some(bos), Some(eos)) = (bos, eos) else {
            failures.push(format!("{stem}: no tokens.json entry"));
            continue;
        };
        let template = match ChatTemplate::new(&source, bos, eos) {
            Ok(t) => t.with_clock(fixed_now),
            Err(e) => {
                failures.push(format!("{stem}: {e}"));
                continue;
            }
        };
        for case in &fixtures.cases {
            let name = case["name"].as_str().expect("case name");
            let status = &fixtures.manifest["results"][stem][name];
            let dir = fixtures.expected.join(stem);
            match check_case(&template, case, &dir, status) {
                Ok(()) => compared += 1,
                Err(why) => failures.push(format!("{stem}/{name}: {why}")),
            }
        }
    }
    for failure in &failures {
        eprintln!("MISMATCH {failure}\n");
    }
    eprintln!("{compared}/{EXPECTED_FIXTURES} fixtures match");
    assert!(failures.is_empty(), "{} fixture(s) failed", failures.len());
    assert_eq!(compared, EXPECTED_FIXTURES);
}

/// What `supports_thinking` / `supports_tools` say about the real templates.
#[test]
fn capabilities_of_fixture_templates() {
    let Some(fixtures) = load("1 test of 12 templates' capabilities") else {
        return;
    };
    use hearth_engine::output::Dialect::{self, *};
    let none: Option<Dialect> = None;
    let expected = [
        ("HuggingFaceTB-SmolLM3-3B", true, false, none),
        ("Qwen-Qwen2.5-7B-Instruct", false, true, Some(Hermes)),
        ("Qwen-Qwen3-0.6B", true, true, Some(Hermes)),
        ("Qwen3.5-4B", true, true, Some(QwenXml)),
        (
            "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
            true,
            false,
            none,
        ),
        ("google-gemma-2-2b-it", false, false, none),
        (
            "google-gemma-4-31B-it-interleaved",
            true,
            true,
            Some(Gemma4),
        ),
        ("google-gemma-4-31B-it", true, true, Some(Gemma4)),
        ("meta-llama-Llama-3.1-8B-Instruct", false, true, Some(Json)),
        ("meta-llama-Llama-3.2-3B-Instruct", false, true, Some(Json)),
        ("microsoft-Phi-3.5-mini-instruct", false, false, none),
        // Mistral's [TOOL_CALLS] syntax is not parsed: declarations go into
        // the system instruction with hearth's Hermes syntax instead.
        ("mistralai-Mistral-Nemo-Instruct-2407", false, true, none),
    ];
    let mut got = Vec::new();
    for path in &fixtures.templates {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("stem");
        let source = fs::read_to_string(path).expect("template source");
        let template = ChatTemplate::new(&source, "", "").expect("compiles");
        got.push((
            stem,
            template.supports_thinking(),
            template.supports_tools(),
            template.tool_dialect(),
        ));
    }
    assert_eq!(got, expected);
}
