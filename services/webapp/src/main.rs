//! webapp binary: everything lives in the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match webapp::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
