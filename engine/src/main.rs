//! berthd: the Berth engine daemon.

use clap::Parser;

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
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
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
