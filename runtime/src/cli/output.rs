//! Writing command output to stdout. SIGPIPE stays ignored (hooks that never read their
//! stdin must not kill the runtime), so a reader that went away shows up as EPIPE: the
//! command then ends quietly, as `runc state | head` would.

use std::io::Write;

/// Write `text` to stdout; exit quietly if nobody reads it any more.
pub fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("berth-runtime: write output: {e}");
        std::process::exit(1);
    }
}

/// `emit` with a newline (println!'s replacement).
pub fn emit_line(mut text: String) {
    text.push('\n');
    emit(&text);
}

/// `emit` of an owned string (print!'s replacement).
pub fn emit_str(text: String) {
    emit(&text);
}
