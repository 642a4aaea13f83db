//! System instructions: guide the model's behaviour.

use hearth_client::{Client, Config};

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = Client::from_env()?;
    let response = client
        .models()
        .generate_content(
            "gemini-2.5-flash",
            "Hello there",
            Config::new().system_instruction("You are a cat. Your name is Neko."),
        )
        .await?;
    println!("{}", response.text().unwrap_or_default());
    Ok(())
}
