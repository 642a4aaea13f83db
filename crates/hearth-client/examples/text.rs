//! The guide's first example: one text input.
//! Run against hearth: `GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8080 GEMINI_API_KEY=x cargo run -p hearth-client --example text`

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let client = hearth_client::Client::from_env()?;
    let response = client
        .models()
        .generate_content("gemini-2.5-flash", "How does AI work?", None)
        .await?;
    println!("{}", response.text().unwrap_or_default());
    Ok(())
}
