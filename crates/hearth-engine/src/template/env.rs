//! The minijinja environment configured like transformers' jinja2 sandbox.

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value};

use super::python::{py_str, tojson_filter};

/// The message of a template's `raise_exception(msg)`, carried as the
/// source of the minijinja error so rendering can return it verbatim.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Raised(pub String);

/// An environment with jinja2's `trim_blocks`/`lstrip_blocks`, no
/// autoescape, Python-style printing and transformers' globals and filters.
/// `strftime_now` is not here: it is a per-render variable (its clock is
/// per template).
pub fn hf_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(|out, _state, value| {
        let written = match value.as_str() {
            Some(s) => out.write_str(s),
            None => out.write_str(&py_str(value)),
        };
        written.map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write template output"))
    });
    env.add_filter("tojson", tojson_filter);
    env.add_filter("string", string_filter);
    env.add_filter("length", length_filter);
    env.add_filter("count", length_filter);
    env.add_test("sequence", is_sequence);
    env.add_function("raise_exception", raise_exception);
    env
}

/// `raise_exception(msg)`: jinja2's `TemplateError(msg)`.
fn raise_exception(message: Value) -> Result<Value, Error> {
    let message = py_str(&message);
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(Raised(message)))
}

/// `|string`: Python `str()` (`True`, `None`, `[1, 'a']`); strings pass unchanged.
fn string_filter(value: &Value) -> Value {
    if value.kind() == ValueKind::String {
        value.clone()
    } else {
        Value::from(py_str(value))
    }
}

/// `|length`: Python `len()`, where jinja2's undefined has length 0.
fn length_filter(value: &Value) -> Result<Value, Error> {
    if value.is_undefined() {
        return Ok(Value::from(0));
    }
    value.len().map(Value::from).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("object of type {} has no len()", value.kind()),
        )
    })
}

/// jinja2's `is sequence`: anything with a length and item access, so
/// strings and mappings too (and jinja2's undefined).
fn is_sequence(value: &Value) -> bool {
    matches!(
        value.kind(),
        ValueKind::String
            | ValueKind::Seq
            | ValueKind::Map
            | ValueKind::Bytes
            | ValueKind::Undefined
    )
}
