//! Other configuration: override the default generation parameters.

use hearth_client::{Client, Config};

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = Client::from_env()?;
    let response = client
        .models()
        .generate_content(
            "gemini-2.5-flash",
            "Explain how AI works",
            Config::new().temperature(0.1),
        )
        .await?;
    println!("{}", response.text().unwrap_or_default());
    Ok(())
}
