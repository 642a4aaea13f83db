//! Conversations reshaped into what a chat template accepts ([`Shaping`]),
//! the way the families' own documentation and llama.cpp do it: a refused
//! system message is prepended to the first user turn, turns of one role are
//! merged where roles must alternate, several calls of one turn are rendered
//! one per turn with their responses, call ids take the form the template
//! demands. Input and output are Hugging Face chat messages as
//! [`super::hf_messages`] writes them (every `content` a string).

use serde_json::{Map, Value};

use super::caps::{CallIds, Shaping};
use crate::contract::{Prompt, Role, Segment, Turn};

/// Moves the system instruction's media, in order, to the head of the
/// first user turn (one is inserted first when the conversation opens with
/// the model); its text stays. For templates that refuse media in a system
/// message ([`Shaping::move_system_media`]).
pub fn system_media_to_first_user(prompt: &mut Prompt) {
    if !prompt.system.iter().any(|s| !matches!(s, Segment::Text(_))) {
        return;
    }
    let (text, media): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut prompt.system)
        .into_iter()
        .partition(|s| matches!(s, Segment::Text(_)));
    prompt.system = text;
    match prompt.turns.first_mut() {
        Some(first) if first.role == Role::User => {
            first.segments.splice(0..0, media);
        }
        _ => prompt.turns.insert(
            0,
            Turn {
                role: Role::User,
                segments: media,
            },
        ),
    }
}

/// `messages` as the template accepts them.
pub(super) fn shape(messages: Vec<Value>, shaping: &Shaping) -> Vec<Value> {
    let mut messages = messages;
    if shaping.split_call_text {
        messages = split_call_text(messages);
    }
    if shaping.split_calls || shaping.call_ids != CallIds::Any {
        messages = pair_calls(messages, shaping);
    }
    if shaping.alternate {
        messages = merge_same_roles(messages);
    }
    if shaping.fold_system {
        messages = fold_system(messages);
    }
    if shaping.alternate {
        let first = usize::from(role(messages.first()) == "system");
        if messages.get(first).is_some_and(|m| role(Some(m)) != "user") {
            messages.insert(first, text_message("user", String::new()));
        }
    }
    messages
}

fn role(message: Option<&Value>) -> &str {
    message
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn content(message: &Value) -> &str {
    message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn calls(message: &Value) -> Option<&Vec<Value>> {
    message.get("tool_calls").and_then(Value::as_array)
}

fn text_message(role: &str, content: String) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), role.into());
    m.insert("content".into(), content.into());
    Value::Object(m)
}

/// Joins two turns' texts as two paragraphs (an empty side adds nothing).
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}\n\n{b}"),
    }
}

/// A model turn with text and calls becomes a turn of text, then one of calls.
fn split_call_text(messages: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    for mut message in messages {
        if calls(&message).is_some() && !content(&message).is_empty() {
            out.push(text_message("assistant", content(&message).to_owned()));
            message["content"] = "".into();
        }
        out.push(message);
    }
    out
}

/// Each call-making turn with the tool messages that follow it: ids given
/// in the template's form (results take their call's id: by the id the
/// client sent, else the first unanswered call of the same name, else the
/// first unanswered call), and with `split_calls`, one call per turn, each
/// followed by its result.
fn pair_calls(messages: Vec<Value>, shaping: &Shaping) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut iter = messages.into_iter().peekable();
    let mut count = 0usize;
    while let Some(mut message) = iter.next() {
        let Some(list) = calls(&message).cloned() else {
            out.push(message);
            continue;
        };
        let mut results = Vec::new();
        while role(iter.peek()) == "tool" {
            results.extend(iter.next());
        }
        let sent: Vec<Option<String>> = list
            .iter()
            .map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let ids: Vec<Option<String>> = sent
            .iter()
            .map(|id| {
                count += 1;
                match (shaping.call_ids, id) {
                    (CallIds::Any, id) => id.clone(),
                    (CallIds::Required, Some(id)) => Some(id.clone()),
                    (CallIds::Required, None) => Some(format!("call_{count}")),
                    (CallIds::Alnum9, _) => Some(format!("call{count:05}")),
                }
            })
            .collect();
        let owners = owners(&list, &sent, &results);
        let list: Vec<Value> = list
            .into_iter()
            .zip(&ids)
            .map(|(mut call, id)| {
                if let (Some(id), Some(fields)) = (id, call.as_object_mut()) {
                    fields.insert("id".into(), id.as_str().into());
                }
                call
            })
            .collect();
        for (result, owner) in results.iter_mut().zip(&owners) {
            let id = owner.and_then(|k| ids[k].as_deref());
            if let (Some(id), Some(fields)) = (id, result.as_object_mut()) {
                fields.insert("tool_call_id".into(), id.into());
            }
        }
        if !shaping.split_calls || list.len() < 2 {
            message["tool_calls"] = Value::Array(list);
            out.push(message);
            out.extend(results);
            continue;
        }
        // One turn per call, in order, each followed by its results;
        // results answering no call come last.
        let text = content(&message).to_owned();
        for (k, call) in list.into_iter().enumerate() {
            let mut turn = message.clone();
            turn["content"] = if k == 0 { text.as_str() } else { "" }.into();
            turn["tool_calls"] = Value::Array(vec![call]);
            out.push(turn);
            for (result, owner) in results.iter().zip(&owners) {
                if *owner == Some(k) {
                    out.push(result.clone());
                }
            }
        }
        for (result, owner) in results.into_iter().zip(&owners) {
            if owner.is_none() {
                out.push(result);
            }
        }
    }
    out
}

/// For each result, the index of the call it answers (None: none left):
/// first the results naming a call's id, then the others, each taking the
/// first unanswered call of its name, else the first unanswered call.
fn owners(calls: &[Value], sent: &[Option<String>], results: &[Value]) -> Vec<Option<usize>> {
    let name_of = |v: &Value| -> Option<String> {
        v.get("function")
            .unwrap_or(v)
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut taken = vec![false; calls.len()];
    let mut owners: Vec<Option<usize>> = results
        .iter()
        .map(|result| {
            let id = result.get("tool_call_id").and_then(Value::as_str)?;
            let k = (0..calls.len()).find(|&k| !taken[k] && sent[k].as_deref() == Some(id))?;
            taken[k] = true;
            Some(k)
        })
        .collect();
    for (result, owner) in results.iter().zip(&mut owners) {
        if owner.is_some() {
            continue;
        }
        let name = name_of(result);
        let by_name = (0..calls.len()).find(|&k| !taken[k] && name_of(&calls[k]) == name);
        *owner = by_name.or_else(|| (0..calls.len()).find(|&k| !taken[k]));
        if let Some(k) = *owner {
            taken[k] = true;
        }
    }
    owners
}

/// Consecutive user turns, or model turns without calls, become one turn.
fn merge_same_roles(messages: Vec<Value>) -> Vec<Value> {
    let plain = |m: &Value| matches!(role(Some(m)), "user" | "assistant") && calls(m).is_none();
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    for message in messages {
        match out.last_mut() {
            Some(last)
                if plain(last) && plain(&message) && role(Some(last)) == role(Some(&message)) =>
            {
                let joined = join(content(last), content(&message));
                last["content"] = joined.into();
            }
            _ => out.push(message),
        }
    }
    out
}

/// The system message's text goes at the head of the first user turn, or
/// becomes the first user turn when the conversation opens with the model.
fn fold_system(mut messages: Vec<Value>) -> Vec<Value> {
    if role(messages.first()) != "system" {
        return messages;
    }
    let system = messages.remove(0);
    let text = content(&system).to_owned();
    match messages.first_mut() {
        Some(first) if role(Some(first)) == "user" => {
            let joined = join(&text, content(first));
            first["content"] = joined.into();
        }
        _ => messages.insert(0, text_message("user", text)),
    }
    messages
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn all() -> Shaping {
        Shaping {
            fold_system: true,
            alternate: true,
            split_calls: true,
            split_call_text: true,
            call_ids: CallIds::Alnum9,
            move_system_media: true,
        }
    }

    #[test]
    fn nothing_to_do_leaves_the_conversation_as_sent() {
        let messages = vec![
            json!({"role": "system", "content": "s"}),
            json!({"role": "user", "content": "a"}),
            json!({"role": "user", "content": "b"}),
        ];
        assert_eq!(shape(messages.clone(), &Shaping::default()), messages);
    }

    #[test]
    fn system_folds_into_the_first_user_turn_and_roles_alternate() {
        let messages = vec![
            json!({"role": "system", "content": "You are a cat."}),
            json!({"role": "user", "content": "Hello"}),
            json!({"role": "user", "content": "there"}),
            json!({"role": "assistant", "content": "Meow."}),
            json!({"role": "assistant", "content": "Purr."}),
            json!({"role": "user", "content": "Why?"}),
        ];
        assert_eq!(
            shape(messages, &all()),
            vec![
                json!({"role": "user", "content": "You are a cat.\n\nHello\n\nthere"}),
                json!({"role": "assistant", "content": "Meow.\n\nPurr."}),
                json!({"role": "user", "content": "Why?"}),
            ]
        );
    }

    #[test]
    fn a_conversation_opening_with_the_model_gets_a_user_turn_first() {
        let opening = vec![
            json!({"role": "assistant", "content": "Hi, I am Neko."}),
            json!({"role": "user", "content": "Hello"}),
        ];
        let shaped = shape(opening.clone(), &all());
        assert_eq!(shaped[0], json!({"role": "user", "content": ""}));
        assert_eq!(&shaped[1..], &opening[..]);
        let mut with_system = vec![json!({"role": "system", "content": "Be a cat."})];
        with_system.extend(opening.clone());
        let shaped = shape(with_system, &all());
        assert_eq!(shaped[0], json!({"role": "user", "content": "Be a cat."}));
        assert_eq!(&shaped[1..], &opening[..]);
    }

    #[test]
    fn parallel_calls_become_one_per_turn_with_their_results_and_ids() {
        let call = |id: Option<&str>, name: &str| {
            let mut c = json!({"type": "function", "function": {"name": name, "arguments": {}}});
            if let Some(id) = id {
                c["id"] = id.into();
            }
            c
        };
        let messages = vec![
            json!({"role": "user", "content": "Weather in Paris and Rome?"}),
            json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                call(Some("free form id"), "weather"), call(None, "weather")]}),
            // Answered out of order: the second result names the first call's id.
            json!({"role": "tool", "name": "weather", "content": "rome"}),
            json!({"role": "tool", "tool_call_id": "free form id", "name": "weather", "content": "paris"}),
            json!({"role": "user", "content": "Thanks"}),
        ];
        let shaped = shape(messages, &all());
        assert_eq!(
            shaped,
            vec![
                json!({"role": "user", "content": "Weather in Paris and Rome?"}),
                json!({"role": "assistant", "content": "Checking."}),
                json!({"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                    "function": {"name": "weather", "arguments": {}}, "id": "call00001"}]}),
                json!({"role": "tool", "tool_call_id": "call00001", "name": "weather", "content": "paris"}),
                json!({"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                    "function": {"name": "weather", "arguments": {}}, "id": "call00002"}]}),
                json!({"role": "tool", "name": "weather", "content": "rome", "tool_call_id": "call00002"}),
                json!({"role": "user", "content": "Thanks"}),
            ]
        );
    }

    #[test]
    fn required_ids_keep_the_clients_and_fill_the_missing() {
        let shaping = Shaping {
            call_ids: CallIds::Required,
            ..Shaping::default()
        };
        let messages = vec![
            json!({"role": "user", "content": "q"}),
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"id": "mine", "type": "function", "function": {"name": "f", "arguments": {}}},
                {"type": "function", "function": {"name": "g", "arguments": {}}}]}),
            json!({"role": "tool", "name": "g", "content": "2"}),
            json!({"role": "tool", "name": "f", "content": "1"}),
        ];
        let shaped = shape(messages, &shaping);
        assert_eq!(shaped[1]["tool_calls"][0]["id"], "mine");
        assert_eq!(shaped[1]["tool_calls"][1]["id"], "call_2");
        assert_eq!(shaped[2]["tool_call_id"], "call_2");
        assert_eq!(shaped[3]["tool_call_id"], "mine");
    }
}
