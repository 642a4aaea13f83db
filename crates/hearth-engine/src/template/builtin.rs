//! Chat formats for models whose GGUF carries no `tokenizer.chat_template`
//! (base models such as Gemma 3 270M): the family's own turn markup, chosen
//! from the architecture and the vocabulary's marker tokens, as llama.cpp's
//! built-in templates (`llama-chat.cpp`) write it. Each source renders what
//! llama.cpp's `llama_chat_apply_template` renders for the same name
//! (`hearth-llama/tests/builtin_templates.rs` checks it against llama.cpp
//! itself); BOS is left to the tokenizer, as llama.cpp leaves it.

use super::FALLBACK_TEMPLATE;

/// A chat format hearth can use when the model brings none.
#[derive(Debug, PartialEq, Eq)]
pub struct BuiltinFormat {
    /// llama.cpp's name for it (`gemma`, `llama3` …); `gemma4` is hearth's.
    pub name: &'static str,
    /// The Jinja source.
    pub source: &'static str,
    /// The token that ends a turn: generation stops on it.
    pub end_of_turn: &'static str,
}

/// ChatML (`<|im_start|>role\n…<|im_end|>\n`): Qwen, SmolLM, Hermes, and the
/// format used when nothing else fits.
pub const CHATML: BuiltinFormat = BuiltinFormat {
    name: "chatml",
    source: FALLBACK_TEMPLATE,
    end_of_turn: "<|im_end|>",
};

/// Gemma 1–3: no system role (its text opens the first user turn), the
/// assistant is `model`, contents trimmed.
pub const GEMMA: BuiltinFormat = BuiltinFormat {
    name: "gemma",
    source: "\
{%- set ns = namespace(system='') %}
{%- for message in messages %}
    {%- set content = message['content'] if message['content'] is string else '' %}
    {%- if message['role'] == 'system' %}
        {%- set ns.system = ns.system + (content | trim) %}
    {%- else %}
        {%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}
        {{- '<start_of_turn>' + role + '\\n' }}
        {%- if ns.system and role != 'model' %}
            {{- ns.system + '\\n\\n' }}
            {%- set ns.system = '' %}
        {%- endif %}
        {{- (content | trim) + '<end_of_turn>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<start_of_turn>model\\n' }}
{%- endif %}",
    end_of_turn: "<end_of_turn>",
};

/// Gemma 4's turn markup (`<|turn>role\n…<turn|>\n`), without the thought
/// channel of the instruct template.
pub const GEMMA4: BuiltinFormat = BuiltinFormat {
    name: "gemma4",
    source: "\
{%- for message in messages %}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}
    {{- '<|turn>' + role + '\\n' }}
    {{- (message['content'] if message['content'] is string else '') | trim }}
    {{- '<turn|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|turn>model\\n' }}
{%- endif %}",
    end_of_turn: "<turn|>",
};

/// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`.
pub const LLAMA3: BuiltinFormat = BuiltinFormat {
    name: "llama3",
    source: "\
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
    {{- ((message['content'] if message['content'] is string else '') | trim) + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}",
    end_of_turn: "<|eot_id|>",
};

/// Llama 2 with its `<<SYS>>` block (llama.cpp's `llama2-sys`): the
/// generation prompt is the `[/INST]` that closes each user turn.
pub const LLAMA2: BuiltinFormat = BuiltinFormat {
    name: "llama2-sys",
    source: "\
{%- set ns = namespace(inside=true) %}
{{- '[INST] ' }}
{%- for message in messages %}
    {%- set content = message['content'] if message['content'] is string else '' %}
    {%- if not ns.inside %}
        {%- set ns.inside = true %}
        {{- '[INST] ' }}
    {%- endif %}
    {%- if message['role'] == 'system' %}
        {{- '<<SYS>>\\n' + content + '\\n<</SYS>>\\n\\n' }}
    {%- elif message['role'] == 'user' %}
        {{- content + ' [/INST]' }}
    {%- else %}
        {{- content + '</s>' }}
        {%- set ns.inside = false %}
    {%- endif %}
{%- endfor %}",
    end_of_turn: "</s>",
};

/// Mistral v3 (`[INST]` and `[/INST]` are tokens of their own): the system
/// text opens the user turn, answers are trimmed.
pub const MISTRAL_V3: BuiltinFormat = BuiltinFormat {
    name: "mistral-v3",
    source: "\
{%- set ns = namespace(inside=false) %}
{%- for message in messages %}
    {%- set content = message['content'] if message['content'] is string else '' %}
    {%- if not ns.inside %}
        {{- '[INST] ' }}
        {%- set ns.inside = true %}
    {%- endif %}
    {%- if message['role'] == 'system' %}
        {{- content + '\\n\\n' }}
    {%- elif message['role'] == 'user' %}
        {{- content + '[/INST]' }}
    {%- else %}
        {{- ' ' + (content | trim) + '</s>' }}
        {%- set ns.inside = false %}
    {%- endif %}
{%- endfor %}",
    end_of_turn: "</s>",
};

/// Phi 3: `<|role|>\n…<|end|>\n`.
pub const PHI3: BuiltinFormat = BuiltinFormat {
    name: "phi3",
    source: "\
{%- for message in messages %}
    {{- '<|' + message['role'] + '|>\\n' }}
    {{- (message['content'] if message['content'] is string else '') + '<|end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|assistant|>\\n' }}
{%- endif %}",
    end_of_turn: "<|end|>",
};

/// Every built-in format.
pub const BUILTIN_FORMATS: &[&BuiltinFormat] = &[
    &CHATML,
    &GEMMA,
    &GEMMA4,
    &LLAMA3,
    &LLAMA2,
    &MISTRAL_V3,
    &PHI3,
];

/// The format of a model without a chat template: its family's, by
/// architecture and by the marker tokens its vocabulary holds (`has_token`
/// says whether a text is one token). `None`: no known format; the caller
/// says so and uses ChatML.
pub fn format_for(arch: &str, has_token: &dyn Fn(&str) -> bool) -> Option<&'static BuiltinFormat> {
    let family = arch.to_ascii_lowercase();
    let has = |t: &str| has_token(t);
    let picked: &'static BuiltinFormat = match family.as_str() {
        "gemma4" if has("<|turn>") && has("<turn|>") => &GEMMA4,
        "gemma" | "gemma2" | "gemma3" | "gemma3n" | "gemma-embedding"
            if has("<start_of_turn>") && has("<end_of_turn>") =>
        {
            &GEMMA
        }
        "phi3" | "phimoe" if has("<|end|>") => &PHI3,
        _ if has("<|start_header_id|>") && has("<|eot_id|>") => &LLAMA3,
        _ if has("<|im_start|>") && has("<|im_end|>") => &CHATML,
        "llama" | "mistral" if has("[INST]") && has("[/INST]") => &MISTRAL_V3,
        // Llama 2 and the SentencePiece models trained on its format.
        "llama" if has("</s>") => &LLAMA2,
        _ => return None,
    };
    Some(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |t| tokens.contains(&t)
    }

    #[test]
    fn the_family_format_comes_from_the_architecture_and_the_vocabulary() {
        let gemma = vocab(&["<bos>", "<start_of_turn>", "<end_of_turn>"]);
        assert_eq!(format_for("gemma3", &gemma), Some(&GEMMA));
        assert_eq!(format_for("gemma", &gemma), Some(&GEMMA));
        let gemma4 = vocab(&["<|turn>", "<turn|>"]);
        assert_eq!(format_for("gemma4", &gemma4), Some(&GEMMA4));
        let llama3 = vocab(&[
            "<|begin_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ]);
        assert_eq!(format_for("llama", &llama3), Some(&LLAMA3));
        let smol = vocab(&["<|im_start|>", "<|im_end|>"]);
        assert_eq!(format_for("llama", &smol), Some(&CHATML));
        assert_eq!(format_for("qwen3", &smol), Some(&CHATML));
        let llama2 = vocab(&["<s>", "</s>", "<unk>"]);
        assert_eq!(format_for("llama", &llama2), Some(&LLAMA2));
        let mistral = vocab(&["<s>", "</s>", "[INST]", "[/INST]"]);
        assert_eq!(format_for("llama", &mistral), Some(&MISTRAL_V3));
        assert_eq!(
            format_for("phi3", &vocab(&["<|end|>", "<|user|>"])),
            Some(&PHI3)
        );
        // No marker of any known format: nothing is guessed.
        assert_eq!(format_for("rwkv6", &vocab(&["<s>"])), None);
        assert_eq!(format_for("gemma3", &vocab(&["<bos>"])), None);
    }

    /// Gemma's and Gemma 4's formats render what the families' own instruct
    /// templates render (transformers' references in
    /// testdata/chat-templates/expected), BOS and Gemma 4's empty thought
    /// channel aside, on every case those templates accept.
    #[test]
    fn gemma_formats_render_as_the_families_own_templates() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/chat-templates");
        let cases: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("cases.json")).expect("cases.json"),
        )
        .expect("json");
        let mut compared = 0;
        for (format, stem, suffix) in [
            (&GEMMA, "google-gemma-2-2b-it", ""),
            (
                &GEMMA4,
                "google-gemma-4-31B-it",
                "<|channel>thought\n<channel|>",
            ),
        ] {
            let template =
                super::super::ChatTemplate::new(format.source, "<bos>", "<eos>").expect("compiles");
            for case in cases["cases"].as_array().expect("cases") {
                if case.get("tools").is_some() || case.get("kwargs").is_some() {
                    continue;
                }
                let name = case["name"].as_str().expect("name");
                if format.name == "gemma4" && name == "consecutive_assistant" {
                    // Gemma 4's template writes a second model turn into the
                    // first one; the built-in format keeps turns apart.
                    continue;
                }
                let Ok(expected) =
                    std::fs::read_to_string(root.join(format!("expected/{stem}/{name}.txt")))
                else {
                    continue; // the family's template refuses this case
                };
                let messages = case["messages"].as_array().expect("messages");
                if messages.iter().any(|m| {
                    !m["content"].is_string() || m.as_object().is_some_and(|o| o.len() != 2)
                }) {
                    continue;
                }
                let add = case["add_generation_prompt"].as_bool().unwrap_or(true);
                let got = template
                    .render(messages, None, add, &serde_json::Map::new())
                    .expect("renders");
                let expected = expected.strip_prefix("<bos>").unwrap_or(&expected);
                let expected = if add {
                    expected.strip_suffix(suffix).unwrap_or(expected)
                } else {
                    expected
                };
                assert_eq!(got, expected, "{} / {name}", format.name);
                compared += 1;
            }
        }
        assert!(compared >= 8, "{compared}");
    }

    #[test]
    fn every_format_compiles() {
        for f in BUILTIN_FORMATS {
            super::super::ChatTemplate::new(f.source, "<s>", "</s>")
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        }
    }
}
