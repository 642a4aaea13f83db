//! streamGenerateContent bodies: SSE (`alt=sse`) or one JSON array.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use hearth_engine::EventStream;
use hearth_wire::GenerateContentResponse;
use tracing::Instrument;

use crate::convert::ChunkBuilder;
use crate::metrics::Meter;
use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `data: <json>\r\n\r\n` per chunk: no `event:` lines, comments or [DONE].
    Sse,
    /// `[<json>,\r\n<json>]` as Google streams without `alt=sse`.
    JsonArray,
}

struct State {
    events: EventStream,
    builder: ChunkBuilder,
    meter: Meter,
    framing: Framing,
    sent: usize,
    done: bool,
    /// The request's deadline ([`crate::budget`]).
    deadline: Option<tokio::time::Instant>,
    /// The request's id and log span: the body is written after its
    /// handler returned, outside the request's task.
    request_id: Option<String>,
    span: tracing::Span,
}

impl State {
    fn frame(&mut self, json: String) -> Bytes {
        let out = match self.framing {
            Framing::Sse => format!("data: {json}\r\n\r\n"),
            Framing::JsonArray if self.sent == 0 => format!("[{json}"),
            Framing::JsonArray => format!(",\r\n{json}"),
        };
        self.sent += 1;
        Bytes::from(out)
    }

    fn chunks(&mut self, chunks: Vec<GenerateContentResponse>) -> Bytes {
        let mut out = Vec::new();
        for c in chunks {
            let json = serde_json::to_string(&c).unwrap_or_default();
            out.extend_from_slice(&self.frame(json));
        }
        Bytes::from(out)
    }

    /// The error as the stream's last event, after whatever was held.
    fn error(&mut self, err: ApiError) -> Bytes {
        let held = self.builder.flush();
        let mut out = self.chunks(held).to_vec();
        tracing::warn!("the stream ends with an error: {err}");
        let json = crate::trace::in_request(self.request_id.as_deref(), || err.json());
        out.extend_from_slice(&self.frame(json));
        out.extend_from_slice(&self.close());
        Bytes::from(out)
    }

    fn close(&mut self) -> Bytes {
        self.done = true;
        match (self.framing, self.sent) {
            (Framing::Sse, _) => Bytes::new(),
            (Framing::JsonArray, 0) => Bytes::from_static(b"[]"),
            (Framing::JsonArray, _) => Bytes::from_static(b"]"),
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            let next = match self.deadline {
                Some(d) => match tokio::time::timeout_at(d, self.events.recv()).await {
                    Ok(ev) => ev,
                    // The generation is cancelled as the stream is dropped.
                    Err(_) => return Some(self.error(crate::budget::deadline_exceeded())),
                },
                None => self.events.recv().await,
            };
            let Some(ev) = next else {
                if self.builder.complete() {
                    return Some(self.close());
                }
                return Some(self.error(ApiError::internal(
                    "the engine stopped before the end of the answer",
                )));
            };
            // Everything the engine has sent by now (one step's events, as a
            // rule) goes out together; nothing waits for the next step.
            let mut chunks = Vec::new();
            let mut ev = Some(ev);
            while let Some(e) = ev.take() {
                self.meter.observe(&e);
                match self.builder.push(e) {
                    Ok(c) => chunks.extend(c),
                    Err(e) => {
                        let mut out = self.chunks(chunks).to_vec();
                        out.extend_from_slice(&self.error(e));
                        return Some(Bytes::from(out));
                    }
                }
                ev = self.events.try_recv().ok();
            }
            // Pieces before a candidate's end went out in its last chunk;
            // the rest now.
            let mut ready = self.builder.flush();
            ready.append(&mut chunks);
            if ready.is_empty() {
                continue;
            }
            return Some(self.chunks(ready));
        }
    }
}

/// The 200 response whose body streams the generation. Dropping the body
/// (client disconnected) drops the event stream, which cancels the engine.
pub fn response(
    events: EventStream,
    builder: ChunkBuilder,
    framing: Framing,
    meter: Meter,
    deadline: Option<tokio::time::Instant>,
) -> Response {
    let state = State {
        events,
        builder,
        meter,
        framing,
        sent: 0,
        done: false,
        deadline,
        request_id: crate::trace::current_id(),
        span: tracing::Span::current(),
    };
    let body = stream::unfold(state, |mut st| {
        let span = st.span.clone();
        async move {
            let bytes = st.next().await?;
            Some((Ok::<Bytes, Infallible>(bytes), st))
        }
        .instrument(span)
    });
    let content_type = match framing {
        Framing::Sse => "text/event-stream",
        Framing::JsonArray => "application/json; charset=UTF-8",
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
