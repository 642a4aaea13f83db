//! `client.models()`: generateContent, streamGenerateContent, countTokens,
//! and the model list.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use hearth_wire::{
    CountTokensRequest, CountTokensResponse, GenerateContentRequest, GenerateContentResponse,
    ListModelsResponse, Model,
};
use reqwest::Method;

use crate::config::{Config, IntoContents};
use crate::error::{Error, Result};
use crate::http::Http;
use crate::sse::{parse_event, SseDecoder};

/// A stream of responses (one per server-sent event); a mid-stream error
/// event ends it with `Err(Error::Api)`.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<GenerateContentResponse>> + Send>>;

/// A stream of models, fetched page by page as it is read.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<Model>> + Send>>;

#[derive(Debug, Clone)]
pub struct Models {
    http: Http,
}

/// `gemini-2.5-flash` → `models/gemini-2.5-flash`; names with a collection
/// (`models/…`, `tunedModels/…`) are kept.
pub(crate) fn resource(model: &str) -> String {
    if model.contains('/') {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

impl Models {
    pub(crate) fn new(http: Http) -> Self {
        Models { http }
    }

    /// One answer for `contents` (a `&str`, parts or contents) with an
    /// optional [`Config`].
    pub async fn generate_content(
        &self,
        model: &str,
        contents: impl IntoContents,
        config: impl Into<Option<Config>>,
    ) -> Result<GenerateContentResponse> {
        let request = config
            .into()
            .unwrap_or_default()
            .request(contents.into_contents());
        self.generate(model, &request).await
    }

    /// generateContent with a request built by hand.
    pub async fn generate(
        &self,
        model: &str,
        request: &GenerateContentRequest,
    ) -> Result<GenerateContentResponse> {
        let url = self
            .http
            .url(&format!("{}:generateContent", resource(model)));
        let call = Http::json_call(Method::POST, url, Some(request), &[])?;
        self.http.json(&call).await
    }

    /// The answer as it is generated: one response per event.
    pub async fn generate_content_stream(
        &self,
        model: &str,
        contents: impl IntoContents,
        config: impl Into<Option<Config>>,
    ) -> Result<ResponseStream> {
        let request = config
            .into()
            .unwrap_or_default()
            .request(contents.into_contents());
        self.generate_stream(model, &request).await
    }

    /// streamGenerateContent (`alt=sse`) with a request built by hand.
    pub async fn generate_stream(
        &self,
        model: &str,
        request: &GenerateContentRequest,
    ) -> Result<ResponseStream> {
        let url = self
            .http
            .url(&format!("{}:streamGenerateContent", resource(model)));
        let query = [("alt", "sse".to_string())];
        let call = Http::json_call(Method::POST, url, Some(request), &query)?;
        let resp = self.http.send(&call).await?;
        Ok(sse_stream(resp))
    }

    /// countTokens for `contents`; with a config, the whole request (system
    /// instruction, tools …) is counted, as the SDKs do.
    pub async fn count_tokens(
        &self,
        model: &str,
        contents: impl IntoContents,
        config: impl Into<Option<Config>>,
    ) -> Result<CountTokensResponse> {
        let contents = contents.into_contents();
        let body = match config.into() {
            None => CountTokensRequest {
                contents: Some(contents),
                generate_content_request: None,
            },
            Some(config) => {
                let mut request = config.request(contents);
                request.model = Some(resource(model));
                CountTokensRequest {
                    contents: None,
                    generate_content_request: Some(request),
                }
            }
        };
        let url = self.http.url(&format!("{}:countTokens", resource(model)));
        let call = Http::json_call(Method::POST, url, Some(&body), &[])?;
        self.http.json(&call).await
    }

    /// One model.
    pub async fn get(&self, model: &str) -> Result<Model> {
        let url = self.http.url(&resource(model));
        let call = Http::json_call(Method::GET, url, None::<&()>, &[])?;
        self.http.json(&call).await
    }

    /// One page of the model list.
    pub async fn list_page(
        &self,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<ListModelsResponse> {
        let query = crate::http::page_query(page_size, page_token);
        let url = self.http.url("models");
        let call = Http::json_call(Method::GET, url, None::<&()>, &query)?;
        self.http.json(&call).await
    }

    /// Every model, following `nextPageToken` as the stream is read.
    /// `page_size` is sent with every page request (server default when None).
    pub fn list(&self, page_size: impl Into<Option<u32>>) -> ModelStream {
        let models = self.clone();
        let page_size = page_size.into();
        paginate(move |token| {
            let models = models.clone();
            async move {
                let page = models.list_page(page_size, token.as_deref()).await?;
                Ok((page.models, page.next_page_token))
            }
        })
    }
}

/// Turns a paged listing into a flat stream of items.
pub(crate) fn paginate<T, F, Fut>(fetch: F) -> Pin<Box<dyn Stream<Item = Result<T>> + Send>>
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    enum Next {
        Page(Option<String>),
        Done,
    }
    let pages = futures_util::stream::unfold(Next::Page(None), move |next| {
        let fut = match next {
            Next::Page(token) => Some(fetch(token)),
            Next::Done => None,
        };
        async move {
            match fut?.await {
                Ok((items, token)) => {
                    let next = match token.filter(|t| !t.is_empty()) {
                        Some(t) => Next::Page(Some(t)),
                        None => Next::Done,
                    };
                    Some((Ok(items), next))
                }
                Err(e) => Some((Err(e), Next::Done)),
            }
        }
    });
    Box::pin(pages.flat_map(|page| {
        let items: Vec<Result<T>> = match page {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(items)
    }))
}

/// Parses the body of a 200 streaming answer as server-sent events.
fn sse_stream(resp: reqwest::Response) -> ResponseStream {
    struct State {
        body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
        decoder: SseDecoder,
        ready: std::collections::VecDeque<String>,
        done: bool,
    }
    let state = State {
        body: Box::pin(resp.bytes_stream()),
        decoder: SseDecoder::new(),
        ready: Default::default(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(data) = st.ready.pop_front() {
                let item = parse_event::<GenerateContentResponse>(&data);
                if item.is_err() {
                    st.done = true;
                    st.ready.clear();
                }
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => st.ready.extend(st.decoder.push(&bytes)),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(Error::Transport(e)), st));
                }
                None => {
                    st.done = true;
                    match st.decoder.finish() {
                        Ok(Some(data)) => st.ready.push_back(data),
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), st)),
                    }
                }
            }
        }
    }))
}
