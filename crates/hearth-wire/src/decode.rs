//! Request decoding with Google-shaped error messages that name the field.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// A body that could not be decoded; `message` is what Google would say.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The field path in Google's snake_case spelling ("generation_config.top_k").
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a JSON request body. Unknown fields, wrong types and bad enum
/// values come back as `Invalid JSON payload received. …` naming the field.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = snake_path(err.path());
        let raw = strip_position(&err.inner().to_string());
        DecodeError {
            message: google_message(&path, &raw, err.inner()),
            path,
        }
    })?;
    de.end().map_err(|err| DecodeError {
        path: String::new(),
        message: google_message("", &strip_position(&err.to_string()), &err),
    })?;
    Ok(value)
}

fn google_message(path: &str, raw: &str, inner: &serde_json::Error) -> String {
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at '{path}'")
    };
    if let Some(name) = between(raw, "unknown field `", "`") {
        // The path ends with the unknown key itself; Google names its parent.
        let parent = path
            .strip_suffix(&to_snake(name))
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or(path);
        let at = if parent.is_empty() {
            String::new()
        } else {
            format!(" at '{parent}'")
        };
        return format!(
            "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
        );
    }
    if let Some(value) = between(raw, "unknown variant `", "`") {
        return format!("Invalid JSON payload received. Invalid value{at} (enum), \"{value}\"");
    }
    if inner.is_syntax() || inner.is_eof() {
        let pos = format!("line {} column {}", inner.line(), inner.column());
        return format!("Invalid JSON payload received. {raw} at {pos}.");
    }
    format!("Invalid JSON payload received. {raw}{at}.")
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// "generationConfig.thinkingConfig" -> "generation_config.thinking_config",
/// sequence indexes as `[i]`.
fn snake_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&to_snake(key));
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// lowerCamelCase to snake_case (already-snake names are unchanged).
pub fn to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
