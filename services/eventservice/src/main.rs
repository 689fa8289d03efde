//! eventservice binary: everything lives in the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match eventservice::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "eventservice failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
