//! The `deskhand` binary: parse arguments, set up logging and the runtime, dispatch, report errors.

// Everything printed goes through deskhand_agent::cli::safe_text (issue 14).
#![deny(clippy::print_stdout, clippy::print_stderr)]

use deskhand_agent::errln;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deskhand_agent::cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(deskhand_agent::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`deskhand … | head`) is not a failure: the reader has what it wanted.
            if deskhand_agent::cli::safe_text::is_broken_pipe(&e) {
                return std::process::ExitCode::SUCCESS;
            }
            // Error messages can quote a page, a job or a file: printed terminal-safe.
            errln!("error: {e}");
            for cause in e.chain().skip(1) {
                errln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,deskhand=debug",
        _ => "debug",
    };
    // chromiumoxide logs one harmless "WS Invalid message" per navigation with Chromium 156 (a
    // renamed CDP field); keep its connection module quiet unless asked.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},chromiumoxide::conn=off,chromiumoxide::handler=error"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Log lines go to stderr through tracing-subscriber, which escapes ESC, BEL, BS, FF, DEL
        // and C1 in messages and fields itself (0.3.20+); CR and bidi controls it leaves.
        .with_writer(
            #[allow(clippy::disallowed_methods)]
            std::io::stderr,
        )
        .with_target(false)
        .init();
}
