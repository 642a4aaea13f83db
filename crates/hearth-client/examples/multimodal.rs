//! Multimodal input: upload a file, then refer to it by URI.
//! `cargo run -p hearth-client --example multimodal -- /path/to/organ.png [model]`
//! (the model defaults to the guide's; name one that reads images).

use hearth_client::types::Part;
use hearth_client::{Client, UploadConfig};

#[tokio::main]
async fn main() -> hearth_client::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/path/to/organ.png".to_string());
    let model = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "gemini-2.5-flash".to_string());
    let client = Client::from_env()?;
    let image = client
        .files()
        .upload_path(&path, UploadConfig::default())
        .await?;
    let response = client
        .models()
        .generate_content(
            &model,
            vec![
                Part::text("Tell me about this instrument"),
                Part::from_uri(
                    image.uri.unwrap_or_default(),
                    image.mime_type.unwrap_or_default(),
                ),
            ],
            None,
        )
        .await?;
    println!("{}", response.text().unwrap_or_default());
    Ok(())
}
