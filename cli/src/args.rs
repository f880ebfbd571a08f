//! The command line as docker's (cobra and pflag) reads it, on top of clap: docker's
//! words and exit codes for what clap refuses (`unknown flag: --init`, `flag needs an
//! argument: 'e' in -e`, `invalid argument "x" for "-n, --last" flag: ...`: 125;
//! `'berth rm' requires at least 1 argument`, `unknown command`: 1), each with the
//! command's usage line; Go's readings of integers and booleans; the last of a
//! repeated single-valued flag wins (clap's `args_override_self`); values glued to
//! short flags (`-eFOO=bar`, `-uroot`, `-m64m`) are clap's own.
//!
//! New commands add a line to [`USAGE`] (their usage and how many arguments they
//! take); their flags are plain clap derives.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Exit code of a command line docker refuses while parsing flags.
pub const FLAG_ERROR: i32 = 125;

/// How many arguments a command takes, as docker's `cli.RequiresMinArgs` & co.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `cli.NoArgs`.
    None,
    /// At least n.
    Min(usize),
    /// Exactly n.
    Exact(usize),
    /// At most n.
    Max(usize),
    /// Between a and b.
    Range(usize, usize),
    /// Anything.
    Any,
}

/// Each command's usage after its path (`rm` → `[OPTIONS] CONTAINER [CONTAINER...]`)
/// and argument count. Paths are the canonical names (`container ls`, not `ps`).
pub const USAGE: &[(&str, &str, Count)] = &[
    ("", "[OPTIONS] COMMAND [ARG...]", Count::Any),
    ("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", Count::Min(1)),
    ("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", Count::Min(1)),
    ("start", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("stop", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("restart", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("kill", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("rm", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("ps", "[OPTIONS]", Count::None),
    ("logs", "[OPTIONS] CONTAINER", Count::Exact(1)),
    ("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", Count::Min(2)),
    ("attach", "[OPTIONS] CONTAINER", Count::Exact(1)),
    ("inspect", "[OPTIONS] NAME|ID [NAME|ID...]", Count::Min(1)),
    ("top", "CONTAINER [ps OPTIONS]", Count::Min(1)),
    ("stats", "[OPTIONS] [CONTAINER...]", Count::Any),
    ("wait", "CONTAINER [CONTAINER...]", Count::Min(1)),
    ("pause", "CONTAINER [CONTAINER...]", Count::Min(1)),
    ("unpause", "CONTAINER [CONTAINER...]", Count::Min(1)),
    ("rename", "CONTAINER NEW_NAME", Count::Exact(2)),
    ("update", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
    ("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", Count::Exact(2)),
    ("images", "[OPTIONS] [REPOSITORY[:TAG]]", Count::Max(1)),
    ("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", Count::Exact(1)),
    ("push", "[OPTIONS] NAME[:TAG]", Count::Exact(1)),
    ("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", Count::Exact(2)),
    ("rmi", "[OPTIONS] IMAGE [IMAGE...]", Count::Min(1)),
    ("history", "[OPTIONS] IMAGE", Count::Exact(1)),
    ("save", "[OPTIONS] IMAGE [IMAGE...]", Count::Min(1)),
    ("load", "[OPTIONS]", Count::None),
    ("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", Count::Range(1, 2)),
    ("login", "[OPTIONS] [SERVER]", Count::Max(1)),
    ("logout", "[SERVER]", Count::Max(1)),
    ("events", "[OPTIONS]", Count::None),
    ("version", "[OPTIONS]", Count::None),
    ("info", "[OPTIONS]", Count::None),
    ("help", "[COMMAND]", Count::Any),
    ("completion", "bash|zsh|fish", Count::Exact(1)),
    ("volume", "COMMAND", Count::None),
    ("volume create", "[OPTIONS] [VOLUME]", Count::Max(1)),
    ("volume ls", "[OPTIONS]", Count::None),
    ("volume inspect", "[OPTIONS] VOLUME [VOLUME...]", Count::Min(1)),
    ("volume rm", "[OPTIONS] VOLUME [VOLUME...]", Count::Min(1)),
    ("volume prune", "[OPTIONS]", Count::None),
    ("system", "COMMAND", Count::None),
    ("system prune", "[OPTIONS]", Count::None),
    ("system df", "[OPTIONS]", Count::None),
    ("system info", "[OPTIONS]", Count::None),
    ("system events", "[OPTIONS]", Count::None),
    ("context", "COMMAND", Count::None),
    ("context ls", "[OPTIONS]", Count::None),
    ("context use", "CONTEXT", Count::Exact(1)),
    ("context create", "[OPTIONS] CONTEXT", Count::Exact(1)),
    ("context rm", "CONTEXT [CONTEXT...]", Count::Min(1)),
    ("context inspect", "[OPTIONS] [CONTEXT] [CONTEXT...]", Count::Any),
    ("context show", "", Count::None),
    ("container", "COMMAND", Count::None),
    ("container ls", "[OPTIONS]", Count::None),
    ("container prune", "[OPTIONS]", Count::None),
    ("image", "COMMAND", Count::None),
    ("image ls", "[OPTIONS] [REPOSITORY[:TAG]]", Count::Max(1)),
    ("image rm", "[OPTIONS] IMAGE [IMAGE...]", Count::Min(1)),
    ("image prune", "[OPTIONS]", Count::None),
    ("image inspect", "[OPTIONS] IMAGE [IMAGE...]", Count::Min(1)),
    ("image history", "[OPTIONS] IMAGE", Count::Exact(1)),
    ("container inspect", "[OPTIONS] CONTAINER [CONTAINER...]", Count::Min(1)),
];

/// The usage and count of a path; a `container X` or `image X` without its own line
/// borrows the top-level command's.
pub fn usage_of(path: &str) -> (String, Count) {
    let find = |p: &str| {
        USAGE
            .iter()
            .find(|(k, _, _)| *k == p)
            .map(|(_, u, c)| (*u, *c))
    };
    let own = find(path).or_else(|| {
        let leaf = path.rsplit(' ').next().unwrap_or(path);
        path.contains(' ').then(|| find(leaf)).flatten()
    });
    let (u, c) = own.unwrap_or(("[OPTIONS]", Count::Any));
    let full = if path.is_empty() {
        format!("berth {u}")
    } else if u.is_empty() {
        format!("berth {path}")
    } else {
        format!("berth {path} {u}")
    };
    (full, c)
}

/// Go's `strconv.ParseInt` for an integer flag, in Go's words.
pub fn go_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {why}", go_quote(s))
    })
}

/// Go's `strconv.ParseBool` for a boolean flag given a value (`--rm=false`).
pub fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

fn go_quote(s: &str) -> String {
    crate::template::printf::quote(s)
}

/// A flag value refused after parsing (`invalid argument ...`), as docker prints it
/// for the command at `path`: with the usage line.
pub fn flag_error(path: &str, msg: &str) -> String {
    let (usage, _) = usage_of(path);
    format!("{msg}\n\nUsage:  {usage}\n\nRun 'berth {path} --help' for more information")
}

/// A refused command line: what to print where, and the exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// For stdout (help).
    pub stdout: String,
    /// For stderr.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

/// The canonical path of the (sub)command `argv` names, as far as it names one: the
/// words that are subcommands (aliases resolved), skipping flags and the values of
/// the root's flags that take one.
pub fn command_path(cmd: &clap::Command, argv: &[String]) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    let mut cur = cmd;
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            break;
        }
        if let Some(flag) = a.strip_prefix('-') {
            // A flag of the current command that takes a separate value skips it.
            if !a.contains('=') && takes_value(cur, flag) {
                i += 1;
            }
            i += 1;
            continue;
        }
        match cur.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cur = sub;
                i += 1;
            }
            None => break,
        }
    }
    (path, i)
}

fn takes_value(cmd: &clap::Command, flag: &str) -> bool {
    let arg = if let Some(long) = flag.strip_prefix('-') {
        cmd.get_arguments().find(|a| a.get_long() == Some(long))
    } else if flag.chars().count() == 1 {
        let c = flag.chars().next();
        cmd.get_arguments().find(|a| a.get_short() == c)
    } else {
        None
    };
    arg.is_some_and(|a| {
        a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0)
    })
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

/// `-n, --last` for the argument clap names `--last <LAST>` (or `-n <N>`).
fn flag_name(cmd: &clap::Command, shown: &str) -> String {
    let word = shown.split([' ', '=', '[']).next().unwrap_or(shown);
    let arg = if let Some(l) = word.strip_prefix("--") {
        cmd.get_arguments().find(|a| a.get_long() == Some(l))
    } else {
        let c = word.trim_start_matches('-').chars().next();
        cmd.get_arguments().find(|a| a.get_short() == c)
    };
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => word.to_string(),
        },
        None => word.to_string(),
    }
}

/// Commands whose options end at the first argument (the rest is the container's
/// command), as docker's `SetInterspersed(false)`.
const OPTIONS_FIRST: &[&str] = &["run", "create", "exec"];

/// Go's flags take `--flag=BOOL` (and `-f=BOOL`) for a boolean flag; clap takes only
/// `--flag`. Rewrites those words before clap sees them: a true value is the bare flag,
/// a false one drops the flag and its earlier mentions (the last one wins, as in Go);
/// a value that is no Go boolean is refused in docker's words (exit 125).
pub fn go_bool_flags(root: &clap::Command, argv: &[String]) -> Result<Vec<String>, Refusal> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    let mut path: Vec<String> = Vec::new();
    let mut cur = root;
    let mut in_path = true;
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if i == 0 {
            out.push(a.clone());
            i += 1;
            continue;
        }
        if a == "--" {
            out.extend(argv[i..].iter().cloned());
            break;
        }
        let Some(flag) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            match in_path.then(|| cur.find_subcommand(a)).flatten() {
                Some(sub) => {
                    path.push(sub.get_name().to_string());
                    cur = sub;
                }
                None => {
                    in_path = false;
                    if OPTIONS_FIRST.contains(&cur.get_name()) {
                        out.extend(argv[i..].iter().cloned());
                        break;
                    }
                }
            }
            out.push(a.clone());
            i += 1;
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        let arg = match name.strip_prefix('-') {
            Some(long) => cur.get_arguments().find(|x| x.get_long() == Some(long)),
            None if name.chars().count() == 1 => {
                let c = name.chars().next();
                cur.get_arguments().find(|x| x.get_short() == c)
            }
            None => None,
        };
        let is_bool = arg.is_some_and(|x| matches!(x.get_action(), clap::ArgAction::SetTrue));
        match (is_bool, value) {
            (true, Some(v)) => {
                let arg = arg.expect("is_bool implies an argument");
                let bare = match arg.get_long() {
                    Some(l) => format!("--{l}"),
                    None => format!("-{name}"),
                };
                match go_bool(v) {
                    Ok(true) => out.push(bare),
                    Ok(false) => {
                        // Earlier mentions of the same flag, by either name, are undone.
                        let short = arg.get_short().map(|c| format!("-{c}"));
                        out.retain(|w| *w != bare && Some(w) != short.as_ref());
                    }
                    Err(why) => {
                        let usage = usage_of(&path.join(" ")).0;
                        let full = if path.is_empty() {
                            "berth".to_string()
                        } else {
                            format!("berth {}", path.join(" "))
                        };
                        let shown = flag_name(cur, &format!("-{name}"));
                        return Err(Refusal {
                            stdout: String::new(),
                            stderr: format!("invalid argument \"{v}\" for \"{shown}\" flag: {why}\n\nUsage:  {usage}\n\nRun '{full} --help' for more information\n"),
                            code: FLAG_ERROR,
                        });
                    }
                }
                i += 1;
            }
            _ => {
                out.push(a.clone());
                // A flag that takes its value from the next word carries it along.
                if value.is_none() && takes_value(cur, flag) {
                    if let Some(next) = argv.get(i + 1) {
                        out.push(next.clone());
                        i += 1;
                    }
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

/// docker's answer to a command line clap refused.
pub fn refusal(root: &clap::Command, argv: &[String], e: &clap::Error) -> Refusal {
    let (path, _) = command_path(root, argv);
    let path_s = path.join(" ");
    let mut cmd = root.clone();
    cmd.build();
    let mut leaf = &cmd;
    for p in &path {
        if let Some(s) = leaf.find_subcommand(p) {
            leaf = s;
        }
    }
    let (usage, count) = usage_of(&path_s);
    let full = if path_s.is_empty() {
        "berth".to_string()
    } else {
        format!("berth {path_s}")
    };
    let flag_err = |msg: String| Refusal {
        stdout: String::new(),
        stderr: format!("{msg}\n\nUsage:  {usage}\n\nRun '{full} --help' for more information\n"),
        code: FLAG_ERROR,
    };
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::MissingSubcommand => Refusal {
            stdout: help_text(root, &path),
            stderr: String::new(),
            code: 0,
        },
        ErrorKind::DisplayVersion => Refusal {
            stdout: version_line(),
            stderr: String::new(),
            code: 0,
        },
        ErrorKind::InvalidSubcommand => {
            let word = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let stderr = if path.is_empty() {
                format!("berth: unknown command: berth {word}\n\nRun 'berth --help' for more information\n")
            } else {
                format!("berth: unknown command: {full} {word}\n\nUsage:  {full}\n\nRun '{full} --help' for more information\n")
            };
            Refusal {
                stdout: String::new(),
                stderr,
                code: 1,
            }
        }
        ErrorKind::UnknownArgument => {
            let arg = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            if let Some(long) = arg.strip_prefix("--") {
                let name = long.split('=').next().unwrap_or(long);
                flag_err(format!("unknown flag: --{name}"))
            } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                let c = short.chars().next().unwrap_or('-');
                let token = argv
                    .iter()
                    .skip(1)
                    .find(|t| t.starts_with('-') && !t.starts_with("--") && t.contains(c))
                    .cloned()
                    .unwrap_or_else(|| arg.clone());
                // pflag names what was left of the group when it met the letter
                // (`-iZx` → `in -Zx`).
                let rest = token[1..]
                    .find(c)
                    .map_or(token.as_str(), |i| &token[1 + i..]);
                flag_err(format!("unknown shorthand flag: '{c}' in -{rest}"))
            } else if path.is_empty() {
                // A word where a command was expected.
                Refusal {
                    stdout: String::new(),
                    stderr: format!("berth: unknown command: berth {arg}\n\nRun 'berth --help' for more information\n"),
                    code: 1,
                }
            } else {
                count_error(&full, &usage, count, leaf.has_subcommands(), &arg)
            }
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues
        | ErrorKind::TooManyValues => {
            let extra = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            count_error(&full, &usage, count, leaf.has_subcommands(), &extra)
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::NoEquals => {
            let shown = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
            let value = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            let name = flag_name(leaf, &shown);
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                // No value where one is needed: as typed, long or short.
                let long = name.rsplit(", ").next().unwrap_or(&name).to_string();
                if argv.contains(&long) || !name.contains(", ") && name.starts_with("--") {
                    return flag_err(format!("flag needs an argument: {long}"));
                }
                let short = name
                    .split(", ")
                    .next()
                    .unwrap_or(&name)
                    .trim_start_matches('-')
                    .to_string();
                return flag_err(format!("flag needs an argument: '{short}' in -{short}"));
            }
            let why = std::error::Error::source(e)
                .map(|s| s.to_string())
                .or_else(|| {
                    context_str(e, ContextKind::ValidValue).map(|v| format!("must be one of {v}"))
                })
                .unwrap_or_else(|| "invalid value".into());
            flag_err(format!(
                "invalid argument \"{value}\" for \"{name}\" flag: {why}"
            ))
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            flag_err(first)
        }
    }
}

/// docker's refusal of a wrong number of arguments for the command at `path`, for a
/// command that checks its own count (exit 1; the text without its last newline).
pub fn count_message(path: &str) -> String {
    let (usage, count) = usage_of(path);
    let r = count_error(&format!("berth {path}"), &usage, count, false, "");
    r.stderr.trim_end_matches('\n').to_string()
}

/// docker's messages for a wrong number of arguments (exit 1).
fn count_error(full: &str, usage: &str, count: Count, group: bool, extra: &str) -> Refusal {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let (msg, see) = match count {
        Count::None if group => {
            return Refusal {
                stdout: String::new(),
                stderr: format!("berth: unknown command: {full} {extra}\n\nUsage:  {usage}\n\nRun '{full} --help' for more information\n"),
                code: 1,
            }
        }
        Count::None => (format!("'{full}' accepts no arguments"), "Run"),
        Count::Min(n) => (format!("'{full}' requires at least {n} {}", plural(n)), "See"),
        Count::Max(n) => (format!("'{full}' requires at most {n} {}", plural(n)), "See"),
        Count::Exact(n) => (format!("'{full}' requires {n} {}", plural(n)), "Run"),
        Count::Range(a, b) => (
            format!("'{full}' requires at least {a} and at most {b} {}", plural(b)),
            "See",
        ),
        Count::Any => (format!("'{full}': wrong number of arguments"), "See"),
    };
    Refusal {
        stdout: String::new(),
        stderr: format!(
            "berth: {msg}\n\nUsage:  {usage}\n\n{see} '{full} --help' for more information\n"
        ),
        code: 1,
    }
}

/// The help of the command at `path`.
pub fn help_text(root: &clap::Command, path: &[String]) -> String {
    let mut cmd = root.clone().bin_name("berth");
    cmd.build();
    let mut leaf = cmd;
    for p in path {
        match leaf.find_subcommand(p) {
            Some(s) => leaf = s.clone(),
            None => break,
        }
    }
    leaf.render_help().to_string()
}

/// `berth -v`, as `docker -v`.
pub fn version_line() -> String {
    format!("Berth version {}\n", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_numbers_and_bools_fail_in_go_s_words() {
        assert_eq!(go_int("12"), Ok(12));
        assert_eq!(
            go_int("x").unwrap_err(),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            go_int("99999999999999999999").unwrap_err(),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(go_bool("True"), Ok(true));
        assert_eq!(go_bool("0"), Ok(false));
        assert!(go_bool("yes").is_err());
    }

    #[test]
    fn usage_lines_follow_the_path() {
        assert_eq!(
            usage_of("rm"),
            (
                "berth rm [OPTIONS] CONTAINER [CONTAINER...]".into(),
                Count::Min(1)
            )
        );
        assert_eq!(
            usage_of("container rm").0,
            "berth container rm [OPTIONS] CONTAINER [CONTAINER...]"
        );
        assert_eq!(
            usage_of("image rm").0,
            "berth image rm [OPTIONS] IMAGE [IMAGE...]"
        );
        assert_eq!(usage_of("context show").0, "berth context show");
    }
}
