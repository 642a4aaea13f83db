//! What a chat template accepts, found by rendering probe conversations
//! once when it is compiled (as llama.cpp's minja probes a template's
//! capabilities): whether it takes a system message, turns of one role in
//! a row, several calls in one turn, text beside calls, free-form call ids,
//! and media in the system message. [`super::shape`] then reshapes every
//! conversation into what the template accepts.

use serde_json::{json, Value};

/// The form of function-call ids a template accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallIds {
    /// Any id, or none: the client's ids are rendered as sent.
    #[default]
    Any,
    /// Every call and result needs an id: missing ones are generated.
    Required,
    /// Exactly 9 ASCII letters and digits (Mistral): every id is rewritten.
    Alnum9,
}

/// How conversations are reshaped before this template renders them
/// (all false: rendered as the client sent them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shaping {
    /// The template refuses or drops a system message: the system text goes
    /// at the head of the first user turn.
    pub fold_system: bool,
    /// The template demands alternating user / model turns: consecutive
    /// turns of one role are merged, and a conversation that opens with the
    /// model gets an empty user turn first.
    pub alternate: bool,
    /// The template takes one function call per model turn: several calls
    /// become one turn each, each followed by its response.
    pub split_calls: bool,
    /// The template drops a model turn's text when the turn calls functions:
    /// the text becomes a model turn of its own before the calls.
    pub split_call_text: bool,
    /// The call ids the template accepts.
    pub call_ids: CallIds,
    /// The template refuses media in a system message: they move to the
    /// head of the first user turn.
    pub move_system_media: bool,
}

impl Shaping {
    /// Probes a template through `render` (messages, tools -> the text
    /// with the generation prompt, None when the template raises).
    /// `native_tools`: the template renders declarations, calls and results
    /// itself (otherwise hearth writes them as text and the call probes are
    /// moot).
    pub(super) fn probe(
        render: impl Fn(&[Value], Option<&[Value]>) -> Option<String>,
        native_tools: bool,
    ) -> Shaping {
        let shows = |messages: Value, tools: Option<&[Value]>, texts: &[&str]| -> bool {
            let Value::Array(messages) = messages else {
                return false;
            };
            render(&messages, tools).is_some_and(|out| texts.iter().all(|t| out.contains(t)))
        };
        let fold_system = !shows(json!([system(SYS), user(USER)]), None, &[SYS, USER]);
        let alternate = !shows(json!([user(USER), user(USER2)]), None, &[USER, USER2])
            || !shows(
                json!([user(USER), assistant(SAID), assistant(SAID2), user(USER2)]),
                None,
                &[SAID, SAID2, USER2],
            )
            || !shows(json!([assistant(SAID), user(USER)]), None, &[SAID, USER]);
        let move_system_media = !shows(
            json!([
                {"role": "system", "content": [{"type": "image"}, {"type": "text", "text": SYS}]},
                user(USER)
            ]),
            None,
            &[SYS, USER],
        );
        let mut shaping = Shaping {
            fold_system,
            alternate,
            move_system_media,
            ..Shaping::default()
        };
        if native_tools {
            shaping.probe_calls(&shows);
        }
        shaping
    }

    /// The call probes: ids first (with one call a turn), then several
    /// calls in one turn and text beside a call with the ids that work.
    fn probe_calls(&mut self, shows: &impl Fn(Value, Option<&[Value]>, &[&str]) -> bool) {
        let tools = [tool(ALPHA), tool(BETA)];
        let one_call = |ids: [Option<&str>; 2]| {
            json!([
                user(USER),
                {"role": "assistant", "content": "", "tool_calls": [call(ids[0], ALPHA)]},
                result(ids[0], ALPHA),
            ])
        };
        let works = |ids: [Option<&str>; 2]| shows(one_call(ids), Some(&tools), &[ALPHA, RESULT]);
        let free = [Some("call-probe_1"), Some("call-probe_2")];
        let alnum9 = [Some("a1b2c3d4e"), Some("f5g6h7i8j")];
        let (call_ids, ids) = if works(free) {
            let kind = if works([None, None]) {
                CallIds::Any
            } else {
                CallIds::Required
            };
            (kind, free)
        } else if works(alnum9) {
            (CallIds::Alnum9, alnum9)
        } else {
            (CallIds::Any, free)
        };
        self.call_ids = call_ids;
        self.split_calls = !shows(
            json!([
                user(USER),
                {"role": "assistant", "content": "", "tool_calls": [call(ids[0], ALPHA), call(ids[1], BETA)]},
                result(ids[0], ALPHA),
                result(ids[1], BETA),
            ]),
            Some(&tools),
            &[ALPHA, BETA, RESULT, &format!("{RESULT}{BETA}")],
        );
        self.split_call_text = !shows(
            json!([
                user(USER),
                {"role": "assistant", "content": SAID, "tool_calls": [call(ids[0], ALPHA)]},
                result(ids[0], ALPHA),
            ]),
            Some(&tools),
            &[SAID, ALPHA, RESULT],
        );
    }

    /// What hearth does to conversations for this template, one clause each
    /// (empty: nothing). `reads_media`: the model reads media (else what
    /// happens to them is moot).
    pub fn describe(&self, reads_media: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.fold_system {
            out.push("the system instruction is prepended to the first user turn");
        }
        if self.move_system_media && reads_media {
            out.push("media of the system instruction move to the head of the first user turn");
        }
        if self.alternate {
            out.push("consecutive turns of one role are merged, and a conversation opening with the model gets an empty user turn first");
        }
        if self.split_calls {
            out.push("several function calls of one turn are rendered one per turn, each followed by its response");
        }
        if self.split_call_text {
            out.push("a model turn's text and its function calls are rendered as two turns");
        }
        match self.call_ids {
            CallIds::Any => {}
            CallIds::Required => out.push("missing function-call ids are generated"),
            CallIds::Alnum9 => {
                out.push("function-call ids are rendered as 9 letters and digits (call00001, ...)")
            }
        }
        out
    }
}

const SYS: &str = "hearthprobesystem";
const USER: &str = "hearthprobeuser";
const USER2: &str = "hearthprobeagain";
const SAID: &str = "hearthprobesaid";
const SAID2: &str = "hearthprobemore";
const ALPHA: &str = "hearth_probe_alpha";
const BETA: &str = "hearth_probe_beta";
const RESULT: &str = "hearthproberesult";

fn system(text: &str) -> Value {
    json!({"role": "system", "content": text})
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

fn tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "description": "probe",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}})
}

fn call(id: Option<&str>, name: &str) -> Value {
    let mut call = json!({"type": "function", "function": {"name": name, "arguments": {"q": "x"}}});
    if let Some(id) = id {
        call["id"] = id.into();
    }
    call
}

/// The response of `name` holds `RESULT` + `name`.
fn result(id: Option<&str>, name: &str) -> Value {
    let mut message = json!({"role": "tool", "name": name, "content": format!("{RESULT}{name}")});
    if let Some(id) = id {
        message["tool_call_id"] = id.into();
    }
    message
}
