//! generationConfig -> sampling, limits, thinking and output constraints.

use hearth_engine::{MediaDetail, ModelInfo, OutputConstraint, SamplingParams, ThinkingBudget};
use hearth_wire::{GenerationConfig, MediaResolution, Modality, Schema, SchemaType, ThinkingLevel};

use super::schema::lowercase_gemini_types;
use super::schema_to_json;
use crate::error::ApiError;

pub const MAX_CANDIDATES: i32 = 8;
pub const MAX_STOP_SEQUENCES: usize = 5;
pub const MAX_LOGPROBS: i32 = 20;

pub struct ValidConfig {
    pub sampling: SamplingParams,
    pub max_output_tokens: Option<u32>,
    pub stop_sequences: Vec<String>,
    pub candidate_count: u32,
    pub logprobs: Option<u32>,
    pub thinking: ThinkingBudget,
    pub include_thoughts: bool,
    pub constraint: Option<OutputConstraint>,
    pub media_resolution: Option<MediaDetail>,
}

const GC: &str = "generation_config";

fn f(field: &str) -> String {
    format!("{GC}.{field}")
}

pub fn validate_config(c: GenerationConfig, info: &ModelInfo) -> Result<ValidConfig, ApiError> {
    reject_unsupported_outputs(&c)?;
    let sampling = sampling(&c, info)?;
    let max_output_tokens = match c.max_output_tokens {
        None => None,
        Some(n) if n >= 1 && n as u32 <= info.max_output_tokens => Some(n as u32),
        Some(n) => {
            return Err(ApiError::field(&f("max_output_tokens"), format!(
                "Unable to submit request because it has a maxOutputTokens value of {n} but the supported range is from 1 (inclusive) to {} (exclusive). Update the value and try again.",
                u64::from(info.max_output_tokens) + 1
            )))
        }
    };
    let stop_sequences = c.stop_sequences.clone().unwrap_or_default();
    if stop_sequences.len() > MAX_STOP_SEQUENCES {
        return Err(ApiError::field(
            &f("stop_sequences"),
            format!("the number of stop_sequences must not exceed {MAX_STOP_SEQUENCES}"),
        ));
    }
    if stop_sequences.iter().any(String::is_empty) {
        return Err(ApiError::field(
            &f("stop_sequences"),
            "stop sequences must not be empty strings",
        ));
    }
    let candidate_count = match c.candidate_count.unwrap_or(1) {
        n @ 1..=MAX_CANDIDATES => n as u32,
        n => {
            return Err(ApiError::field(
                &f("candidate_count"),
                format!("candidateCount must be between 1 and {MAX_CANDIDATES}, got {n}"),
            ))
        }
    };
    let logprobs = logprobs(&c)?;
    let (thinking, include_thoughts) = thinking(&c, info)?;
    let constraint = constraint(&c, info)?;
    let media_resolution = media_detail(c.media_resolution);
    Ok(ValidConfig {
        sampling,
        max_output_tokens,
        stop_sequences,
        candidate_count,
        logprobs,
        thinking,
        include_thoughts,
        constraint,
        media_resolution,
    })
}

fn reject_unsupported_outputs(c: &GenerationConfig) -> Result<(), ApiError> {
    for m in c.response_modalities.iter().flatten() {
        if !matches!(m, Modality::Text | Modality::ModalityUnspecified) {
            return Err(ApiError::field(
                &f("response_modalities"),
                format!(
                    "hearth generates text only; {} output is not supported",
                    serde_json::to_string(m)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            ));
        }
    }
    if c.speech_config.is_some() {
        return Err(ApiError::field(
            &f("speech_config"),
            "speech output is not supported: hearth generates text only",
        ));
    }
    if c.image_config.is_some() {
        return Err(ApiError::field(
            &f("image_config"),
            "image output is not supported: hearth generates text only",
        ));
    }
    if c.enable_enhanced_civic_answers == Some(true) {
        return Err(ApiError::field(
            &f("enable_enhanced_civic_answers"),
            "enhanced civic answers need Google's services; hearth runs offline",
        ));
    }
    Ok(())
}

/// The request's sampling; what it leaves unset comes from the model's own
/// defaults (reported on its Model resource).
fn sampling(c: &GenerationConfig, info: &ModelInfo) -> Result<SamplingParams, ApiError> {
    let defaults = info.sampling;
    let temperature = match c.temperature {
        None => defaults.temperature,
        Some(t) if (0.0..=2.0).contains(&t) => t as f32,
        Some(t) => {
            return Err(ApiError::field(
                &f("temperature"),
                format!("temperature must be in the range [0.0, 2.0], got {t}"),
            ))
        }
    };
    let top_p = match c.top_p {
        None => defaults.top_p,
        Some(p) if (0.0..=1.0).contains(&p) => p as f32,
        Some(p) => {
            return Err(ApiError::field(
                &f("top_p"),
                format!("top_p must be in the range [0.0, 1.0], got {p}"),
            ))
        }
    };
    let top_k = match c.top_k {
        None => defaults.top_k,
        Some(k) if k >= 1 => k as u32,
        Some(k) => {
            return Err(ApiError::field(
                &f("top_k"),
                format!("top_k must be at least 1, got {k}"),
            ))
        }
    };
    let penalty = |name: &str, v: Option<f64>| match v {
        None => Ok(0.0),
        Some(p) if (-2.0..=2.0).contains(&p) => Ok(p as f32),
        Some(p) => Err(ApiError::field(
            &f(name),
            format!("{name} must be in the range [-2.0, 2.0], got {p}"),
        )),
    };
    Ok(SamplingParams {
        temperature,
        top_k: Some(top_k),
        top_p: Some(top_p),
        presence_penalty: penalty("presence_penalty", c.presence_penalty)?,
        frequency_penalty: penalty("frequency_penalty", c.frequency_penalty)?,
        seed: c.seed.map(|s| s as u64),
    })
}

fn logprobs(c: &GenerationConfig) -> Result<Option<u32>, ApiError> {
    match (c.response_logprobs.unwrap_or(false), c.logprobs) {
        (false, Some(_)) => Err(ApiError::field(
            &f("logprobs"),
            "logprobs is only valid when responseLogprobs is true",
        )),
        (false, None) => Ok(None),
        (true, None) => Ok(Some(0)),
        (true, Some(n @ 0..=MAX_LOGPROBS)) => Ok(Some(n as u32)),
        (true, Some(n)) => Err(ApiError::field(
            &f("logprobs"),
            format!("logprobs must be in the range [0, {MAX_LOGPROBS}], got {n}"),
        )),
    }
}

fn thinking(c: &GenerationConfig, info: &ModelInfo) -> Result<(ThinkingBudget, bool), ApiError> {
    let Some(t) = &c.thinking_config else {
        return Ok((ThinkingBudget::Dynamic, false));
    };
    let include = t.include_thoughts.unwrap_or(false);
    let thinks = info.capabilities.thinking;
    let level = t
        .thinking_level
        .filter(|l| *l != ThinkingLevel::ThinkingLevelUnspecified);
    if t.thinking_budget.is_some() && level.is_some() {
        return Err(ApiError::field(
            &f("thinking_config"),
            "You can only set only one of thinking budget and thinking level.",
        ));
    }
    let budget = match (t.thinking_budget, level) {
        (Some(-1), _) | (None, None) => ThinkingBudget::Dynamic,
        (Some(0), _) => ThinkingBudget::Off,
        (Some(n), _) if n > 0 => ThinkingBudget::Tokens(n as u32),
        (Some(n), _) => {
            return Err(ApiError::field(
                &f("thinking_config.thinking_budget"),
                format!("thinking budget must be -1 (dynamic), 0 (off) or positive, got {n}"),
            ))
        }
        (None, Some(ThinkingLevel::Minimal)) => ThinkingBudget::Tokens(128),
        (None, Some(ThinkingLevel::Low)) => ThinkingBudget::Tokens(1024),
        (None, Some(ThinkingLevel::Medium)) => ThinkingBudget::Tokens(8192),
        (None, Some(_)) => ThinkingBudget::Dynamic,
    };
    // A budget is an upper bound and includeThoughts asks for the thoughts
    // there are: a model that cannot think satisfies both with none (an app
    // written for a thinking Gemini runs unchanged on it, its gemini-* name
    // aliased to such a model).
    let budget = if thinks { budget } else { ThinkingBudget::Off };
    Ok((budget, include && thinks))
}

fn constraint(
    c: &GenerationConfig,
    info: &ModelInfo,
) -> Result<Option<OutputConstraint>, ApiError> {
    let mime = c.response_mime_type.as_deref().map(str::trim).unwrap_or("");
    let has_schema = c.response_schema.is_some() || c.response_json_schema.is_some();
    if c.response_schema.is_some() && c.response_json_schema.is_some() {
        return Err(ApiError::field(
            &f("response_schema"),
            "responseSchema and responseJsonSchema cannot both be set",
        ));
    }
    let constraint = match mime {
        "" | "text/plain" => {
            if has_schema {
                return Err(ApiError::field(
                    &f("response_mime_type"),
                    "a response schema needs responseMimeType application/json or text/x.enum",
                ));
            }
            return Ok(None);
        }
        // An empty responseSchema (the legacy Python SDK sends `{}` when given
        // a protos.GenerationConfig without one) is no schema.
        "application/json" => match (
            c.response_schema
                .as_ref()
                .filter(|s| **s != Schema::default()),
            &c.response_json_schema,
        ) {
            (Some(s), _) => OutputConstraint::JsonSchema(schema_to_json(&f("response_schema"), s)?),
            (None, Some(v)) => OutputConstraint::JsonSchema(lowercase_gemini_types(v)),
            (None, None) => OutputConstraint::Json,
        },
        "text/x.enum" => OutputConstraint::Enum(enum_values(c)?),
        other => {
            return Err(ApiError::field(&f("response_mime_type"), format!("allowed mimetypes are `text/plain`, `application/json` and `text/x.enum`, got `{other}`")));
        }
    };
    if !info.capabilities.constrained_output {
        return Err(ApiError::field(
            &f("response_mime_type"),
            format!(
                "model '{}' cannot constrain its output to {mime} in hearth yet",
                info.id
            ),
        ));
    }
    Ok(Some(constraint))
}

fn enum_values(c: &GenerationConfig) -> Result<Vec<String>, ApiError> {
    let from_schema = c.response_schema.as_ref().and_then(|s| {
        (s.r#type == Some(SchemaType::String))
            .then(|| s.r#enum.clone())
            .flatten()
    });
    let from_json = c.response_json_schema.as_ref().and_then(|v| {
        v.get("enum")?
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
    });
    match from_schema.or(from_json) {
        Some(values) if !values.is_empty() => Ok(values),
        _ => Err(ApiError::field(
            &f("response_schema"),
            "text/x.enum needs a responseSchema of type STRING with a non-empty enum",
        )),
    }
}

/// `generationConfig.mediaResolution` as a level (None: unset or unspecified).
pub fn media_detail(m: Option<MediaResolution>) -> Option<MediaDetail> {
    m.and_then(|m| match m {
        MediaResolution::MediaResolutionUnspecified => None,
        MediaResolution::MediaResolutionLow => Some(MediaDetail::Low),
        MediaResolution::MediaResolutionMedium => Some(MediaDetail::Medium),
        MediaResolution::MediaResolutionHigh | MediaResolution::MediaResolutionUltraHigh => {
            Some(MediaDetail::High)
        }
    })
}
