//! Constrained decoding through llguidance: the model's vocabulary as a
//! token trie, and grammars (JSON schema, enum, forced function calls)
//! compiled into per-sequence matchers that mask the logits at every step.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};

use crate::contract::{EngineError, Field};
use crate::runner::Tokenizer;

/// The model's vocabulary as llguidance sees it. Special tokens (chat
/// markup) carry llguidance's marker byte, so text grammars never produce them.
struct VocabEnv {
    trie: TokTrie,
    tokenizer: Arc<dyn Tokenizer>,
}

impl TokenizerEnv for VocabEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// Tokens spelling exactly `s`: the model's own tokenizer where its ids
    /// spell `s` back, else the trie's greedy tokenization. A SentencePiece
    /// vocabulary with `add_space_prefix` (Llama 2, Mistral) tokenizes every
    /// text as the start of a prompt, with a leading `▁`, which llguidance
    /// would take for bytes the grammar forced.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        let own = std::str::from_utf8(s)
            .ok()
            .and_then(|text| self.tokenizer.encode(text, false).ok())
            .map(|ids| ids.into_iter().map(|t| t as u32).collect::<Vec<u32>>())
            .filter(|ids| self.trie.decode_raw(ids) == s);
        own.unwrap_or_else(|| self.trie.greedy_tokenize(s))
    }
}

/// Why a model's vocabulary cannot take grammars.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrammarError {
    /// Constrained text must be able to end.
    #[error("the vocabulary has no end-of-generation token")]
    NoEndToken,
    /// llguidance refused the vocabulary.
    #[error("llguidance: {0}")]
    Llguidance(String),
}

/// Compiles grammars for one model. Built once, on first use.
pub struct Grammars {
    factory: ParserFactory,
}

impl Grammars {
    pub fn new(tokenizer: Arc<dyn Tokenizer>) -> Result<Self, GrammarError> {
        let n = tokenizer.meta().vocab_size;
        let mut words = Vec::with_capacity(n);
        let mut ends = Vec::new();
        for t in 0..n as i32 {
            let mut bytes = tokenizer.token_bytes(t);
            if tokenizer.is_end(t) {
                ends.push(t as u32);
            }
            if tokenizer.is_special(t) {
                bytes.insert(0, TokTrie::SPECIAL_TOKEN_MARKER);
            }
            words.push(bytes);
        }
        let eos = *ends.first().ok_or(GrammarError::NoEndToken)?;
        let info = TokRxInfo::new(n as u32, eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&ends);
        let env: TokEnv = Arc::new(VocabEnv { trie, tokenizer });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Llguidance(e.to_string()))?;
        factory.quiet();
        Ok(Grammars { factory })
    }

    /// A matcher for `grammar`; a grammar llguidance cannot compile is a 400 on `field`.
    pub fn matcher(&self, grammar: TopLevelGrammar, field: Field) -> Result<Matcher, EngineError> {
        let parser =
            self.factory
                .create_parser(grammar)
                .map_err(|e| EngineError::InvalidRequest {
                    field: Some(field),
                    message: format!("this schema cannot be enforced: {e}"),
                })?;
        let m = Matcher::new(Ok(parser));
        if let Some(e) = m.get_error() {
            return Err(EngineError::InvalidRequest {
                field: Some(field),
                message: format!("this schema cannot be enforced: {e}"),
            });
        }
        Ok(m)
    }
}

/// Compact JSON (no free whitespace, so even a random model finishes): the
/// separators Gemini's own JSON mode uses.
fn with_json_options(mut schema: Value) -> Value {
    if let Value::Object(map) = &mut schema {
        map.insert(
            "x-guidance".into(),
            json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}),
        );
    }
    schema
}

/// JSON valid against `schema` (`true`: any JSON value).
pub fn json_grammar(schema: Option<&Value>) -> TopLevelGrammar {
    let schema = match schema {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => json!({"anyOf": [{"type": "object"}, {"type": "array"}, {"type": "string"},
            {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}),
    };
    TopLevelGrammar::from_json_schema(with_json_options(schema))
}

/// Exactly one of `values`, as plain text.
pub fn enum_grammar(values: &[String]) -> TopLevelGrammar {
    let alts: Vec<String> = values.iter().map(|v| lark_string(v)).collect();
    TopLevelGrammar::from_lark(format!("start: {}\n", alts.join(" | ")))
}

/// A quoted lark string literal.
pub fn lark_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A lark rule that is one JSON value valid against `schema`.
pub fn lark_json(schema: &Value) -> String {
    format!("%json {}", with_json_options(schema.clone()))
}

/// Objects with declared properties take no others (Gemini's schemas list
/// every field; extra keys would let a model ramble on), recursively.
pub fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, v) in map.iter_mut() {
                if matches!(key.as_str(), "properties" | "$defs" | "definitions") {
                    if let Value::Object(props) = v {
                        props.values_mut().for_each(close_objects);
                    }
                } else if matches!(
                    key.as_str(),
                    "items" | "anyOf" | "oneOf" | "allOf" | "prefixItems"
                ) {
                    close_objects(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// The JSON types a schema allows (`["string"]` when it says nothing).
fn schema_types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => vec!["string".into()],
    }
}

/// `schema` restricted to one of its types (for `%json` of a scalar).
fn with_type(schema: &Value, t: &str) -> Value {
    let mut s = schema.clone();
    if let Value::Object(m) = &mut s {
        m.insert("type".into(), json!(t));
    }
    s
}

/// A lark expression for one argument value as Gemma 4 writes it: JSON-like,
/// object keys bare and sorted, strings between the quote token `q`.
pub fn gemma_value(schema: &Value, q: &str) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let alts: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("{q} {} {q}", lark_string(s)),
                other => lark_string(&other.to_string()),
            })
            .collect();
        return format!("({})", alts.join(" | "));
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let alts: Vec<String> = any.iter().map(|a| gemma_value(a, q)).collect();
        return format!("({})", alts.join(" | "));
    }
    let text = format!("{q} /[^<]*/ {q}");
    let alts: Vec<String> = schema_types(schema)
        .iter()
        .map(|t| match t.as_str() {
            "string" => text.clone(),
            "array" => {
                let item = schema
                    .get("items")
                    .map_or_else(|| text.clone(), |i| gemma_value(i, q));
                format!("(\"[]\" | \"[\" {item} (\",\" {item})* \"]\")")
            }
            "object" => match schema.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() => {
                    let mut keys: Vec<&String> = props.keys().collect();
                    keys.sort();
                    let items: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            format!(
                                "{} {}",
                                lark_string(&format!("{k}:")),
                                gemma_value(&props[k.as_str()], q)
                            )
                        })
                        .collect();
                    format!("\"{{\" {} \"}}\"", items.join(" \",\" "))
                }
                _ => "\"{}\"".into(),
            },
            other => lark_json(&with_type(schema, other)),
        })
        .collect();
    format!("({})", alts.join(" | "))
}

/// A lark expression for one `<parameter=…>` value as Qwen 3.5 writes it:
/// strings raw (one line), everything else as JSON.
pub fn xml_value(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let alts: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => lark_string(s),
                other => lark_string(&other.to_string()),
            })
            .collect();
        return format!("({})", alts.join(" | "));
    }
    if schema_types(schema) == ["string"] && schema.get("anyOf").is_none() {
        return "/[^<\\n]*/".into();
    }
    lark_json(schema)
}
