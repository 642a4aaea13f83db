//! Thinking with Gemini 2.5: a thinking budget of 0 turns thinking off.

use hearth_client::{Client, Config};

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = Client::from_env()?;
    let response = client
        .models()
        .generate_content(
            "gemini-2.5-flash",
            "How does AI work?",
            Config::new().thinking_budget(0), // Disables thinking
        )
        .await?;
    println!("{}", response.text().unwrap_or_default());
    Ok(())
}
