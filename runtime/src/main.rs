//! The berth-runtime binary: parse the command line, run the command, report errors as one
//! line on stderr (and in the `--log` file, where engines look for it).

use clap::Parser;

use berth_runtime::cli::{dispatch, Cli};
use berth_runtime::logging;

fn main() {
    // Commands that put processes into containers first re-execute from a sealed copy of
    // the binary (CVE-2019-5736); done before parsing anything so the first process costs
    // as little as possible. A container named "run" makes `state run` re-exec too:
    // harmless, only slower.
    if std::env::args()
        .skip(1)
        .any(|a| matches!(a.as_str(), "create" | "run" | "exec"))
    {
        if let Err(e) = berth_runtime::process::sealed_exe::ensure() {
            eprintln!("berth-runtime: {e}");
            std::process::exit(1);
        }
    }
    let cli = Cli::parse();
    if let Err(e) = logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format,
        cli.global.debug,
    ) {
        eprintln!("berth-runtime: cannot open log file: {e}");
        std::process::exit(1);
    }
    let logging_to_file = cli.global.log.is_some();
    match dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            if logging_to_file {
                tracing::error!("{error}");
            }
            eprintln!("berth-runtime: {error}");
            std::process::exit(1);
        }
    }
}
