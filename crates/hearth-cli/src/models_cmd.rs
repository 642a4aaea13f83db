//! `hearth models`: what a running server serves, and the GGUF files in the
//! local Hugging Face cache.

use clap::Args;
use futures_util::TryStreamExt;

use crate::remote::RemoteArgs;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(flatten)]
    remote: RemoteArgs,
}

pub async fn models(args: ModelsArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    println!("Loaded (server at {}):", client.base_url());
    match client.models().list(None).try_collect::<Vec<_>>().await {
        Ok(models) if models.is_empty() => println!("  (none)"),
        Ok(models) => {
            for m in models {
                let limit = m
                    .input_token_limit
                    .map(|n| format!("  context {n} tokens"))
                    .unwrap_or_default();
                let desc = m.description.unwrap_or_default();
                println!("  {}{limit}  {desc}", m.name);
            }
        }
        Err(e) => println!("  (no server answered: {e})"),
    }
    let cached = hearth_llama::hub::cached_gguf();
    println!("Cached (Hugging Face cache):");
    if cached.is_empty() {
        println!("  (none)");
    }
    for f in cached {
        let mib = f.bytes as f64 / (1024.0 * 1024.0);
        println!(
            "  {}/{}  {mib:.1} MiB  {}",
            f.repo,
            f.file,
            f.path.display()
        );
    }
    Ok(())
}
