//! `client.chats()`: client-side chat sessions, as in the official SDKs.
//! Every message is a plain generateContent whose contents are the curated
//! history plus the new user turn (sdk-wire.md §7):
//! - the reply recorded is `candidates[0].content` as received; a streamed
//!   reply adds one history entry per chunk;
//! - a reply is valid when its content has a role and at least one part and
//!   no empty part; a streamed reply when every chunk is and one chunk
//!   carries a finishReason;
//! - an invalid reply stays in the comprehensive history but drops out of
//!   the curated one with its user turn; a call that fails adds nothing.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use hearth_wire::{Content, GenerateContentResponse};

use crate::config::{Config, IntoContents};
use crate::error::Result;
use crate::models::Models;

#[derive(Debug, Clone)]
pub struct Chats {
    models: Models,
}

impl Chats {
    pub(crate) fn new(models: Models) -> Self {
        Chats { models }
    }

    /// A chat with `model`, sending `config` with every message and starting
    /// from `history` (which may be empty).
    pub fn create(
        &self,
        model: &str,
        config: impl Into<Option<Config>>,
        history: Vec<Content>,
    ) -> Chat {
        Chat {
            models: self.models.clone(),
            model: model.to_string(),
            config: config.into().unwrap_or_default(),
            initial: history,
            exchanges: Vec::new(),
        }
    }
}

/// One user message and what came back for it.
#[derive(Debug, Clone)]
struct Exchange {
    user: Vec<Content>,
    replies: Vec<Content>,
    valid: bool,
}

/// A chat session: the history lives here, on the client.
#[derive(Debug, Clone)]
pub struct Chat {
    models: Models,
    model: String,
    config: Config,
    initial: Vec<Content>,
    exchanges: Vec<Exchange>,
}

/// A streamed reply; the history is updated when the stream ends.
pub type ChatStream<'a> = Pin<Box<dyn Stream<Item = Result<GenerateContentResponse>> + Send + 'a>>;

impl Chat {
    /// Sends a message (text, parts or contents) and records the exchange.
    pub async fn send_message(
        &mut self,
        message: impl IntoContents,
    ) -> Result<GenerateContentResponse> {
        let user = user_turns(message);
        let request = self.config.request(self.contents_with(&user));
        let response = self.models.generate(&self.model, &request).await?;
        let content = first_content(&response);
        let valid = content.as_ref().is_some_and(valid_content);
        self.exchanges.push(Exchange {
            user,
            replies: content.into_iter().collect(),
            valid,
        });
        Ok(response)
    }

    /// Sends a message and streams the reply; the exchange is recorded once
    /// the stream has been read to its end.
    pub async fn send_message_stream(
        &mut self,
        message: impl IntoContents,
    ) -> Result<ChatStream<'_>> {
        let user = user_turns(message);
        let request = self.config.request(self.contents_with(&user));
        let inner = self.models.generate_stream(&self.model, &request).await?;
        let pending = Pending {
            chat: self,
            user,
            replies: Vec::new(),
            valid: true,
            finished: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            (inner, Some(pending)),
            |(mut inner, mut pending)| async move {
                let p = pending.as_mut()?;
                match inner.next().await {
                    Some(Ok(chunk)) => {
                        p.observe(&chunk);
                        Some((Ok(chunk), (inner, pending)))
                    }
                    // A failed stream records nothing, as in both SDKs.
                    Some(Err(e)) => Some((Err(e), (inner, None))),
                    None => {
                        if let Some(p) = pending.take() {
                            p.record();
                        }
                        None
                    }
                }
            },
        )))
    }

    /// The history: `curated` leaves out exchanges whose reply was invalid
    /// (what the next message sends); otherwise every turn, with an empty
    /// model turn where nothing usable came back.
    pub fn history(&self, curated: bool) -> Vec<Content> {
        let mut out = self.initial.clone();
        for ex in &self.exchanges {
            if curated && !ex.valid {
                continue;
            }
            out.extend(ex.user.iter().cloned());
            if ex.replies.is_empty() {
                out.push(Content::model([]));
            } else {
                out.extend(ex.replies.iter().cloned());
            }
        }
        out
    }

    fn contents_with(&self, user: &[Content]) -> Vec<Content> {
        let mut contents = self.history(true);
        contents.extend(user.iter().cloned());
        contents
    }
}

/// The bookkeeping of a streamed reply in flight.
struct Pending<'a> {
    chat: &'a mut Chat,
    user: Vec<Content>,
    replies: Vec<Content>,
    valid: bool,
    finished: bool,
}

impl Pending<'_> {
    fn observe(&mut self, chunk: &GenerateContentResponse) {
        let content = first_content(chunk);
        self.valid &= content.as_ref().is_some_and(valid_content);
        self.finished |= chunk
            .candidates
            .as_ref()
            .and_then(|c| c.first())
            .is_some_and(|c| c.finish_reason.is_some());
        self.replies.extend(content);
    }

    fn record(self) {
        self.chat.exchanges.push(Exchange {
            user: self.user,
            replies: self.replies,
            valid: self.valid && self.finished,
        });
    }
}

/// A message becomes user turns (text and parts make one).
fn user_turns(message: impl IntoContents) -> Vec<Content> {
    message
        .into_contents()
        .into_iter()
        .map(|mut c| {
            c.role.get_or_insert_with(|| "user".to_string());
            c
        })
        .collect()
}

fn first_content(response: &GenerateContentResponse) -> Option<Content> {
    response.candidates.as_ref()?.first()?.content.clone()
}

/// The SDKs' validity rule for one reply content.
fn valid_content(content: &Content) -> bool {
    content.role.is_some()
        && !content.parts.is_empty()
        && content
            .parts
            .iter()
            .all(|p| serde_json::to_value(p).is_ok_and(|v| v != serde_json::json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_wire::Part;

    #[test]
    fn validity_follows_the_sdks() {
        assert!(valid_content(&Content::model([Part::text("hi")])));
        assert!(!valid_content(&Content::model([])));
        assert!(!valid_content(&Content::model([Part::default()])));
        assert!(!valid_content(&Content {
            role: None,
            parts: vec![Part::text("x")]
        }));
    }
}
