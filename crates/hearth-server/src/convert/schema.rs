//! Gemini's OpenAPI-subset Schema -> JSON Schema (for constraints and tools).

use hearth_wire::{Schema, SchemaType};
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// Converts a Schema; `at` is the field path used in errors.
pub fn schema_to_json(at: &str, s: &Schema) -> Result<Value, ApiError> {
    let mut out = Map::new();
    if let Some(t) = &s.title {
        out.insert("title".into(), json!(t));
    }
    if let Some(d) = &s.description {
        out.insert("description".into(), json!(d));
    }
    let ty = s.r#type.and_then(SchemaType::json_schema_name);
    if let Some(ty) = ty {
        let nullable = s.nullable == Some(true) && ty != "null";
        out.insert(
            "type".into(),
            if nullable {
                json!([ty, "null"])
            } else {
                json!(ty)
            },
        );
    }
    if let Some(values) = &s.r#enum {
        if !matches!(s.r#type, None | Some(SchemaType::String)) {
            return Err(ApiError::field(
                &format!("{at}.enum"),
                "enum is supported for STRING schemas only",
            ));
        }
        let mut vals: Vec<Value> = values.iter().map(|v| json!(v)).collect();
        if s.nullable == Some(true) {
            vals.push(Value::Null);
        }
        out.insert("enum".into(), Value::Array(vals));
    }
    if let Some(fmt) = &s.format {
        if fmt != "enum" {
            out.insert("format".into(), json!(fmt));
        }
    }
    object_keywords(at, s, &mut out)?;
    if let Some(items) = &s.items {
        out.insert(
            "items".into(),
            schema_to_json(&format!("{at}.items"), items)?,
        );
    }
    let ints = [
        ("minItems", s.min_items),
        ("maxItems", s.max_items),
        ("minLength", s.min_length),
        ("maxLength", s.max_length),
    ];
    for (k, v) in ints {
        if let Some(v) = v {
            if v < 0 {
                return Err(ApiError::field(
                    &format!("{at}.{}", hearth_wire::to_snake(k)),
                    "must not be negative",
                ));
            }
            out.insert(k.into(), json!(v));
        }
    }
    if let Some(p) = &s.pattern {
        out.insert("pattern".into(), json!(p));
    }
    if let Some(v) = s.minimum {
        out.insert("minimum".into(), json!(v));
    }
    if let Some(v) = s.maximum {
        out.insert("maximum".into(), json!(v));
    }
    if let Some(any) = &s.any_of {
        let mut alts = Vec::with_capacity(any.len());
        for (i, a) in any.iter().enumerate() {
            alts.push(schema_to_json(&format!("{at}.any_of[{i}]"), a)?);
        }
        out.insert("anyOf".into(), Value::Array(alts));
    }
    if let Some(d) = &s.default {
        out.insert("default".into(), d.clone());
    }
    if let Some(e) = &s.example {
        out.insert("examples".into(), json!([e]));
    }
    Ok(Value::Object(out))
}

/// properties (in propertyOrdering order), required, min/maxProperties.
fn object_keywords(at: &str, s: &Schema, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(props) = &s.properties {
        let mut names: Vec<&String> = Vec::with_capacity(props.len());
        if let Some(order) = &s.property_ordering {
            for name in order {
                if !props.contains_key(name) {
                    return Err(ApiError::field(
                        &format!("{at}.property_ordering"),
                        format!("{name} is not a property"),
                    ));
                }
                names.push(name);
            }
            if names.len() != props.len() {
                return Err(ApiError::field(
                    &format!("{at}.property_ordering"),
                    "propertyOrdering must list every property exactly once",
                ));
            }
        } else {
            names.extend(props.keys());
        }
        let mut map = Map::new();
        for name in names {
            let schema = &props[name.as_str()];
            map.insert(
                name.clone(),
                schema_to_json(&format!("{at}.properties[{name}]"), schema)?,
            );
        }
        out.insert("properties".into(), Value::Object(map));
    }
    if let Some(req) = &s.required {
        for name in req {
            if !s.properties.as_ref().is_some_and(|p| p.contains_key(name)) {
                return Err(ApiError::field(
                    &format!("{at}.required"),
                    format!("required property {name} is not defined in properties"),
                ));
            }
        }
        out.insert("required".into(), json!(req));
    }
    if let Some(v) = s.min_properties {
        out.insert("minProperties".into(), json!(v));
    }
    if let Some(v) = s.max_properties {
        out.insert("maxProperties".into(), json!(v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_guide_recipe_schema() {
        let s: Schema = hearth_wire::from_slice(br#"{"type":"ARRAY","items":{"type":"OBJECT",
            "properties":{"recipeName":{"type":"STRING"},"ingredients":{"type":"ARRAY","items":{"type":"STRING"}},"rating":{"type":"INTEGER","nullable":true}},
            "propertyOrdering":["rating","recipeName","ingredients"],"required":["recipeName"]}}"#).expect("schema");
        let v = schema_to_json("generation_config.response_schema", &s).expect("converts");
        assert_eq!(
            v,
            json!({"type":"array","items":{"type":"object","properties":{
            "rating":{"type":["integer","null"]},"recipeName":{"type":"string"},
            "ingredients":{"type":"array","items":{"type":"string"}}},"required":["recipeName"]}})
        );
        let keys: Vec<_> = v["items"]["properties"]
            .as_object()
            .expect("obj")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["rating", "recipeName", "ingredients"]);
    }

    #[test]
    fn bad_required_and_enum_are_named() {
        let s: Schema = hearth_wire::from_slice(
            br#"{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"required":["b"]}"#,
        )
        .expect("schema");
        let e = schema_to_json("x", &s).expect_err("required b");
        assert!(e.message.contains("x.required"), "{}", e.message);
        let s: Schema =
            hearth_wire::from_slice(br#"{"type":"INTEGER","enum":["1"]}"#).expect("schema");
        assert!(schema_to_json("y", &s)
            .expect_err("enum")
            .message
            .contains("y.enum"));
    }
}

/// A JSON Schema with Gemini's upper-case type names (`"type": "OBJECT"`, as
/// Gemini CLI writes its `responseJsonSchema`) in JSON Schema's lower case;
/// every other keyword, and property names, are left as they are.
pub fn lowercase_gemini_types(schema: &Value) -> Value {
    const GEMINI: [&str; 7] = [
        "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL",
    ];
    let lower = |v: &Value| match v {
        Value::String(t) if GEMINI.contains(&t.as_str()) => Value::String(t.to_ascii_lowercase()),
        other => other.clone(),
    };
    let Value::Object(map) = schema else {
        return match schema {
            Value::Array(items) => Value::Array(items.iter().map(lowercase_gemini_types).collect()),
            other => other.clone(),
        };
    };
    let mut out = Map::new();
    for (key, v) in map {
        let v = match key.as_str() {
            "type" => match v {
                Value::Array(ts) => Value::Array(ts.iter().map(lower).collect()),
                t => lower(t),
            },
            // Maps of name -> schema.
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                match v {
                    Value::Object(m) => Value::Object(
                        m.iter()
                            .map(|(k, s)| (k.clone(), lowercase_gemini_types(s)))
                            .collect(),
                    ),
                    other => other.clone(),
                }
            }
            // A schema, or a list of schemas.
            "items"
            | "prefixItems"
            | "additionalProperties"
            | "anyOf"
            | "oneOf"
            | "allOf"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => lowercase_gemini_types(v),
            _ => v.clone(),
        };
        out.insert(key.clone(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod type_name_tests {
    use super::*;

    #[test]
    fn gemini_type_names_become_json_schema_ones_and_nothing_else_changes() {
        let cli = json!({"type": "OBJECT", "properties": {
            "type": {"type": "STRING", "enum": ["OBJECT"]},
            "score": {"type": ["INTEGER", "NULL"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}}},
            "required": ["type"], "anyOf": [{"type": "OBJECT"}]});
        assert_eq!(
            lowercase_gemini_types(&cli),
            json!({"type": "object", "properties": {
                "type": {"type": "string", "enum": ["OBJECT"]},
                "score": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["type"], "anyOf": [{"type": "object"}]})
        );
    }
}
