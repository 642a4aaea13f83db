//! Streaming works for multi-turn conversations too.

use futures_util::StreamExt;
use hearth_client::types::{Content, Part};
use hearth_client::Client;

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = Client::from_env()?;
    let mut chat = client.chats().create(
        "gemini-2.5-flash",
        None,
        vec![
            Content::user([Part::text("Hello")]),
            Content::model([Part::text(
                "Great to meet you. What would you like to know?",
            )]),
        ],
    );
    for message in [
        "I have 2 dogs in my house.",
        "How many paws are in my house?",
    ] {
        let mut stream = chat.send_message_stream(message).await?;
        while let Some(chunk) = stream.next().await {
            println!("{}", chunk?.text().unwrap_or_default());
            println!("{}", "_".repeat(80));
        }
    }
    Ok(())
}
