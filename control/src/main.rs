//! `rangecache`: the binary. Parses flags, sets up logging, and hands over to [`app::run`];
//! a startup failure is one `rangecache: [phase] detail` line on stderr and exit code 1.

mod admin;
mod app;
mod cli;
mod config;
mod credentials;
mod error;
mod fleet;
mod limits;
mod prom;
mod resolve;
mod service;
mod signals;
mod snapshot_build;
mod sts;
#[cfg(test)]
mod test_support;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The variable holding the log filter (`RUST_LOG` syntax).
const LOG_ENV: &str = "RANGECACHE_LOG";

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    match app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rangecache: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Log to stderr, filtered by `RANGECACHE_LOG` (default `info`).
fn init_logging() {
    let spec = std::env::var(LOG_ENV).unwrap_or_default();
    let (filter, bad) = match EnvFilter::try_new(if spec.is_empty() { "info" } else { &spec }) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(e) = bad {
        tracing::warn!("ignoring {LOG_ENV}={spec:?}: {e}");
    }
}
