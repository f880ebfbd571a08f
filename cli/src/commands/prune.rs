//! What every prune shares (`system`, `container`, `image` and `volume prune`): the
//! confirmation prompt and the closing line. Its own module, so that the commands that
//! prune depend on it and not on each other.

use crate::error::{Error, Result};
use crate::output;
use std::io::{BufRead, Write};

/// Prints `warning` and asks `Are you sure you want to continue? [y/N]` on stdin; only
/// `y`/`yes` agrees (end of input is no).
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer from stdin", e))?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if answer.is_empty() {
        // No newline came from the user: end the prompt line.
        println!();
    }
    Ok(yes)
}

/// The closing line of every prune.
pub fn print_reclaimed(bytes: u64) {
    println!(
        "Total reclaimed space: {}",
        output::human_size(bytes as f64)
    );
}
