//! `chancery`: the server binary and the operator's command line.

use clap::{Parser, Subcommand};
use server::config::{DatabaseArgs, ServeArgs};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "chancery",
    version,
    about = "Self-hosted administration plane and gateway for LLM API platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web UI and APIs (the default when no command is given).
    Serve(ServeArgs),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
}

/// `serve` with only its environment variables and defaults.
#[derive(Debug, Parser)]
struct DefaultServe {
    #[command(flatten)]
    args: ServeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    // No command at all (as `cargo leptos serve` runs it) means `serve` with its defaults.
    let command =
        Cli::parse().command.unwrap_or_else(|| Command::Serve(DefaultServe::parse_from(["chancery"]).args));
    match command {
        Command::Serve(args) => server::serve(args).await,
        Command::Migrate(args) => {
            server::Db::connect_and_migrate(&args.database_url).await?;
            println!("Database is up to date.");
            Ok(())
        }
    }
}
