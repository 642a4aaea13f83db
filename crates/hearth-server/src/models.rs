//! GET models and GET models/{model}.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use hearth_engine::ModelInfo;
use hearth_wire::{ListModelsResponse, Model};

use crate::request::{check_version, query};
use crate::{ApiError, AppState};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// An f32 as the f64 of its shortest decimal form: 0.2, not 0.20000000298023224.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

pub fn model_resource(info: &ModelInfo) -> Model {
    let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Model {
        name: format!("models/{}", info.id),
        base_model_id: Some(info.id.clone()),
        version: Some(info.id.clone()),
        display_name: Some(info.display_name.clone()),
        description: Some(info.description.clone()),
        input_token_limit: Some(n(info.context_length)),
        output_token_limit: Some(n(info.max_output_tokens)),
        supported_generation_methods: ["generateContent", "streamGenerateContent", "countTokens"]
            .map(String::from)
            .to_vec(),
        temperature: Some(decimal(info.sampling.temperature)),
        max_temperature: Some(2.0),
        top_p: Some(decimal(info.sampling.top_p)),
        top_k: Some(i32::try_from(info.sampling.top_k).unwrap_or(i32::MAX)),
        thinking: Some(info.capabilities.thinking),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(version): Path<String>,
    uri: Uri,
) -> Result<Json<ListModelsResponse>, ApiError> {
    check_version(&version)?;
    let q = query(&uri, &["pageSize", "pageToken"])?;
    let size = match q.get("pageSize") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n <= 0 => DEFAULT_PAGE,
            Ok(n) => (n as usize).min(MAX_PAGE),
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "Invalid value at 'page_size' (TYPE_INT32), \"{s}\""
                )))
            }
        },
    };
    let engines = state.registry.engines();
    let start = match q.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        // Tokens are offsets; one past the end (a list that shrank) is an empty page.
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?
            .min(engines.len()),
    };
    let end = (start + size).min(engines.len());
    Ok(Json(ListModelsResponse {
        models: engines[start..end]
            .iter()
            .map(|e| model_resource(e.info()))
            .collect(),
        next_page_token: (end < engines.len()).then(|| end.to_string()),
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path((version, name)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<Model>, ApiError> {
    check_version(&version)?;
    query(&uri, &[])?;
    let engine = state
        .registry
        .resolve(&name)
        .ok_or_else(|| not_found(&name, &version, None))?;
    Ok(Json(model_resource(engine.info())))
}

/// Google's wording for an unknown model.
pub fn not_found(name: &str, version: &str, method: Option<&str>) -> ApiError {
    let full = if name.starts_with("models/") {
        name.to_string()
    } else {
        format!("models/{name}")
    };
    let method = method.unwrap_or("generateContent");
    ApiError::not_found(format!(
        "{full} is not found for API version {version}, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
    ))
}
