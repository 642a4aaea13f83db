//! `hearth chat`: an interactive conversation with line editing; the
//! history lives in a hearth-client chat session.

use std::io::Write;

use clap::Args;
use futures_util::StreamExt;
use rustyline::error::ReadlineError;

use crate::generate::{print_chunk, SamplingArgs};
use crate::remote::{pick_model, RemoteArgs};

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    remote: RemoteArgs,
}

const HELP: &str = "/reset starts over, /history shows the turns, /exit (or Ctrl-D) leaves";

pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let model = pick_model(&client, args.sampling.model.as_deref()).await?;
    let config = args.sampling.config();
    let new_chat = || client.chats().create(&model, config.clone(), Vec::new());
    let mut chat = new_chat();
    let mut editor = rustyline::DefaultEditor::new()?;
    eprintln!("chatting with {model} at {} ({HELP})", client.base_url());
    loop {
        let line = match editor.readline("> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let message = line.trim();
        if message.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(message);
        match message {
            "/exit" | "/quit" => break,
            "/reset" => {
                chat = new_chat();
                eprintln!("(history cleared)");
                continue;
            }
            "/history" => {
                print_history(&chat.history(true));
                continue;
            }
            "/help" => {
                eprintln!("{HELP}");
                continue;
            }
            _ => {}
        }
        let mut out = std::io::stdout().lock();
        match chat.send_message_stream(message).await {
            Ok(mut stream) => {
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(c) => print_chunk(&mut out, &c)?,
                        Err(e) => {
                            writeln!(out)?;
                            eprintln!("error: {e}");
                            break;
                        }
                    }
                }
                writeln!(out)?;
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}

/// One line per turn; a streamed reply (one history entry per chunk) is
/// shown as the single turn it is.
fn print_history(history: &[hearth_client::types::Content]) {
    let mut lines: Vec<(String, String)> = Vec::new();
    for turn in history {
        let role = turn.role.clone().unwrap_or_default();
        let text: String = turn.parts.iter().filter_map(|p| p.text.clone()).collect();
        match lines.last_mut() {
            Some((r, t)) if *r == role && role == "model" => t.push_str(&text),
            _ => lines.push((role, text)),
        }
    }
    for (role, text) in lines {
        println!("{role}: {text}");
    }
}
