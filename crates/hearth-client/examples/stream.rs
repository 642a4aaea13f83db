//! Streaming responses: print each chunk as it arrives.

use futures_util::StreamExt;
use hearth_client::Client;

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = Client::from_env()?;
    let mut response = client
        .models()
        .generate_content_stream("gemini-2.5-flash", "Explain how AI works", None)
        .await?;
    while let Some(chunk) = response.next().await {
        println!("{}", chunk?.text().unwrap_or_default());
    }
    Ok(())
}
