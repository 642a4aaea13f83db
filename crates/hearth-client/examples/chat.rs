//! Multi-turn conversations: the chat keeps the history.

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
    let response1 = chat.send_message("I have 2 dogs in my house.").await?;
    println!("Chat response 1: {}", response1.text().unwrap_or_default());
    let response2 = chat.send_message("How many paws are in my house?").await?;
    println!("Chat response 2: {}", response2.text().unwrap_or_default());
    Ok(())
}
