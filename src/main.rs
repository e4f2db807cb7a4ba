use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = newsflow::cli::Cli::parse();
    match newsflow::commands::dispatch(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
