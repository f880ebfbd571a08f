//! `berth login`: check credentials against a registry (through berthd's `POST /auth`)
//! and save them as docker does (`~/.docker/config.json` or its credential helper), so
//! docker and berth share logins.

use crate::client::Client;
use crate::config;
use crate::error::{Error, Result};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Read, Write};

/// Flags of `berth login`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username.
    #[arg(short, long)]
    username: Option<String>,
    /// Password or token (insecure: it shows in the process list; prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password or token from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// The registry (`host[:port]`); Docker Hub if none.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// Runs `berth login`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.password.is_some() && args.password_stdin {
        return Err(Error::Usage(
            "--password and --password-stdin are mutually exclusive".into(),
        ));
    }
    if args.password_stdin && args.username.is_none() {
        return Err(Error::Usage(
            "Must provide --username with --password-stdin".into(),
        ));
    }
    let key = config::registry_key(args.server.as_deref().unwrap_or(""));
    // Without any credentials on the command line, saved ones are tried first.
    if args.username.is_none() && args.password.is_none() {
        if let Some((user, password)) = config::credentials(&key)? {
            if authenticate(client, &user, &password, &key).await.is_ok() {
                println!("Authenticating with existing credentials...");
                println!("Login Succeeded");
                return Ok(0);
            }
        }
    }
    let user = match args.username {
        Some(u) => u,
        None => prompt("Username: ", true)?,
    };
    let user = user.trim().to_string();
    if user.is_empty() {
        return Err(Error::Usage("Error: Non-null Username Required".into()));
    }
    let password = if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("reading the password from stdin", e))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        prompt("Password: ", false)?
    };
    if password.is_empty() {
        return Err(Error::Usage("Error: Password Required".into()));
    }
    authenticate(client, &user, &password, &key).await?;
    // As docker: in the credential helper if one is configured, else in config.json
    // (and then a warning says where the password now is).
    if let config::Stored::File(path) = config::save_credentials(&key, &user, &password)? {
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            path.display()
        );
    }
    println!("Login Succeeded");
    Ok(0)
}

/// `POST /auth`: berthd checks the credentials against the registry.
async fn authenticate(client: &Client, user: &str, password: &str, server: &str) -> Result<()> {
    let body = json!({"username": user, "password": password, "serveraddress": server});
    client.post("/auth", Some(&body)).await
}

/// Asks for one line on stdin; a password is read with echo off on a terminal.
fn prompt(question: &str, echo: bool) -> Result<String> {
    print!("{question}");
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    let hide = !echo && stdin.is_terminal();
    let saved = if hide {
        // Echo off while the password is typed; restored below whatever happens.
        let t = nix::sys::termios::tcgetattr(&stdin)
            .map_err(|e| Error::io("reading terminal settings", e.into()))?;
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet)
            .map_err(|e| Error::io("turning echo off", e.into()))?;
        Some(t)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        println!();
    }
    read.map_err(|e| Error::io("reading stdin", e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
