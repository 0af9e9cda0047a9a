//! The `mandate` binary: the server and the operator's commands (see `server::cli`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mandate::server::cli::main().await
}
