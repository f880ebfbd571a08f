//! berthd: the Berth engine daemon.

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> std::process::ExitCode {
    let cfg = berth_engine::config::Config::parse();
    let level = match cfg.log_level.parse::<tracing::Level>() {
        Ok(l) => l,
        Err(_) => {
            eprintln!(
                "berthd: invalid --log-level {:?}: expected error, warn, info, debug or trace",
                cfg.log_level
            );
            return std::process::ExitCode::from(2);
        }
    };
    // Libraries (hyper, reqwest) log every connection at debug: keep them at info at most.
    let others = level.min(tracing::Level::INFO);
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("berth_engine", level)
        .with_target("berthd", level)
        .with_default(others);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
    berth_heap::limit_arenas();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(berth_engine::daemon::run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
