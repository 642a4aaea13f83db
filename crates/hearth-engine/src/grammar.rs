//! Constrained decoding through llguidance: the model's vocabulary as a
//! token trie, and grammars (JSON schema, enum, forced function calls)
//! compiled into per-sequence matchers that mask the logits at every step.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};

use crate::contract::EngineError;
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

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        match std::str::from_utf8(s) {
            Ok(text) => match self.tokenizer.encode(text, false) {
                Ok(ids) => ids.into_iter().map(|t| t as u32).collect(),
                Err(_) => self.trie.greedy_tokenize(s),
            },
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }
}

/// Compiles grammars for one model. Built once, on first use.
pub struct Grammars {
    factory: ParserFactory,
}

impl Grammars {
    pub fn new(tokenizer: Arc<dyn Tokenizer>) -> Result<Self, String> {
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
        let eos = *ends
            .first()
            .ok_or("the vocabulary has no end-of-generation token")?;
        let info = TokRxInfo::new(n as u32, eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&ends);
        let env: TokEnv = Arc::new(VocabEnv { trie, tokenizer });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| format!("llguidance: {e}"))?;
        factory.quiet();
        Ok(Grammars { factory })
    }

    /// A matcher for `grammar`; a grammar llguidance cannot compile is a 400 on `field`.
    pub fn matcher(&self, grammar: TopLevelGrammar, field: &str) -> Result<Matcher, EngineError> {
        let parser =
            self.factory
                .create_parser(grammar)
                .map_err(|e| EngineError::InvalidRequest {
                    field: Some(field.into()),
                    message: format!("this schema cannot be enforced: {e}"),
                })?;
        let m = Matcher::new(Ok(parser));
        if let Some(e) = m.get_error() {
            return Err(EngineError::InvalidRequest {
                field: Some(field.into()),
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
