//! `berth completion bash|zsh|fish`: the shell's completion script, generated from the
//! command line's definition (clap_complete), so it always knows every command and flag.

use clap_complete::Shell;

/// Flags of `berth completion`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[command(subcommand)]
    shell: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Generate the autocompletion script for bash
    Bash,
    /// Generate the autocompletion script for fish
    Fish,
    /// Generate the autocompletion script for zsh
    Zsh,
}

/// Prints the script; its exit code.
pub fn run(root: &clap::Command, args: &Args) -> i32 {
    let shell = match args.shell {
        Sub::Bash => Shell::Bash,
        Sub::Fish => Shell::Fish,
        Sub::Zsh => Shell::Zsh,
    };
    let mut cmd = root.clone();
    clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
    0
}
