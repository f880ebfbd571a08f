//! Typed instructions from the parser's nodes, checked as Docker checks them (argument
//! counts, flags, stage names), grouped into stages. Variables are not substituted
//! here: that needs the build's state and happens at dispatch.

use super::error::InstructionError;
use super::parser::Node;
use std::time::Duration;

/// A command line of RUN, CMD or ENTRYPOINT (or SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLine {
    /// The exec form's words, or the shell form's text as one word.
    pub args: Vec<String>,
    /// Shell form: the stage's SHELL goes in front at dispatch.
    pub prepend_shell: bool,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// Sources, as written.
    pub sources: Vec<String>,
    /// Destination, as written.
    pub dest: String,
    /// `--from=STAGE|IMAGE|INDEX` (COPY only).
    pub from: Option<String>,
    /// `--chown=USER[:GROUP]`.
    pub chown: Option<String>,
    /// `--chmod=OCTAL`.
    pub chmod: Option<String>,
}

/// A health check as HEALTHCHECK sets it (Docker's `HealthConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// Between checks (zero: the default).
    pub interval: Duration,
    /// Before a check counts as failed (zero: the default).
    pub timeout: Duration,
    /// Grace period after start (zero: the default).
    pub start_period: Duration,
    /// Failures in a row before unhealthy (zero: the default).
    pub retries: i64,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `ENV k=v ...`.
    Env(Vec<(String, String)>),
    /// `MAINTAINER text`.
    Maintainer(String),
    /// `LABEL k=v ...`; labels given with `--label` are not expanded.
    Label {
        /// The pairs.
        pairs: Vec<(String, String)>,
        /// Whether variables are substituted in them.
        expand: bool,
    },
    /// `ADD src... dest`.
    Add(CopyArgs),
    /// `COPY src... dest`.
    Copy(CopyArgs),
    /// `ONBUILD INSTRUCTION`: the trigger's text.
    Onbuild(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `RUN cmd`; `mounts` are `--mount` flags, which only BuildKit runs.
    Run {
        /// The command.
        cmd: CmdLine,
        /// Flags given (refused at dispatch: the classic builder runs none).
        flags_used: Vec<String>,
    },
    /// `CMD cmd`.
    Cmd(CmdLine),
    /// `ENTRYPOINT cmd`.
    Entrypoint(CmdLine),
    /// `HEALTHCHECK ...`.
    Healthcheck(Health),
    /// `EXPOSE port...` (sorted, as Docker sorts them).
    Expose(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `VOLUME path...`.
    Volume(Vec<String>),
    /// `STOPSIGNAL sig`.
    StopSignal(String),
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Its first line.
    pub line: usize,
    /// Its text (trimmed), as the build prints it in `Step N/M : ...`.
    pub code: String,
    /// What it does.
    pub kind: Kind,
}

/// A stage: FROM and what follows it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// The base image (or stage, or `scratch`) as written.
    pub base: String,
    /// `--platform=...`.
    pub platform: Option<String>,
    /// The FROM line's text.
    pub code: String,
    /// The FROM line.
    pub line: usize,
    /// Its instructions.
    pub commands: Vec<Instruction>,
}

/// Instruction flags as Docker's `BFlags` reads them: `--name=value`; a name not
/// declared by the instruction is refused.
struct Flags<'a> {
    given: &'a [String],
    values: Vec<(&'static str, Option<String>)>,
    multi: &'static [&'static str],
    used: Vec<String>,
}

impl<'a> Flags<'a> {
    fn new(given: &'a [String], names: &[&'static str], multi: &'static [&'static str]) -> Self {
        Self {
            given,
            values: names.iter().map(|n| (*n, None)).collect(),
            multi,
            used: Vec::new(),
        }
    }

    fn parse(&mut self) -> Result<(), String> {
        for arg in self.given {
            let Some(rest) = arg.strip_prefix("--") else {
                return Err(format!("Arg should start with -- : {arg}"));
            };
            if rest.is_empty() {
                return Ok(());
            }
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            let multi = self.multi.contains(&name);
            let Some(slot) = self.values.iter_mut().find(|(n, _)| *n == name) else {
                return Err(format!("Unknown flag: {name}"));
            };
            if self.used.iter().any(|u| u == name) && !multi {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            self.used.push(name.to_string());
            match value {
                Some(v) => slot.1 = Some(v),
                None => return Err(format!("Missing a value on flag: {name}")),
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    }
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn no_dest(cmd: &str) -> String {
    format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    )
}

fn kvps(args: &[String], cmd: &str) -> Result<Vec<(String, String)>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if args.len() % 2 != 0 {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for pair in args.chunks(2) {
        if pair[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push((pair[0].clone(), pair[1].clone()));
    }
    Ok(out)
}

fn cmd_line(node: &Node) -> CmdLine {
    let args = if node.args.is_empty() {
        Vec::new()
    } else if node.json {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    };
    CmdLine {
        args,
        prepend_shell: !node.json,
    }
}

/// Go's `time.ParseDuration`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {}", super::parser::go_quote(s));
    let mut rest = s;
    let negative = rest.starts_with('-');
    rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    super::parser::go_quote(s)
                ))
            }
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    super::parser::go_quote(other),
                    super::parser::go_quote(s)
                ))
            }
        };
        total += value * scale;
    }
    if negative && total > 0.0 {
        // A negative interval is below the minimum; report it as Docker would.
        return Ok(Duration::ZERO);
    }
    // Go's durations are int64 nanoseconds (about 292 years): beyond, Go's parser says
    // the duration is invalid, and so does this one (never a panic on hostile input).
    if !total.is_finite() || total > i64::MAX as f64 / 1e9 {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// Go's `Duration.String()` (`1m30s`, `500ms`, `0s`), as history entries print it.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1u128)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", trim_fraction(ns, div));
    }
    let secs_total = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let h = secs_total / 3600;
    let m = (secs_total % 3600) / 60;
    let s = secs_total % 60;
    let sec = trim_fraction(s * 1_000_000_000 + frac, 1_000_000_000);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

fn trim_fraction(n: u128, div: u128) -> String {
    let whole = n / div;
    let frac = n % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

fn interval(value: Option<String>, name: &str) -> Result<Duration, String> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let d = parse_go_duration(&v)?;
    if d < Duration::from_millis(1) {
        return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
    }
    Ok(d)
}

fn health(node: &Node) -> Result<Health, String> {
    if node.args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = node.args[0].to_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Health {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    }
    let mut flags = Flags::new(
        &node.flags,
        &["interval", "timeout", "start-period", "retries"],
        &[],
    );
    flags.parse()?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            super::parser::go_quote(&typ)
        ));
    }
    let cmd = if node.json {
        args.to_vec()
    } else if args.is_empty() {
        Vec::new()
    } else {
        vec![args.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = vec![if node.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    test.extend(cmd);
    let retries = match flags.get("retries").filter(|r| !r.is_empty()) {
        None => 0,
        Some(r) => {
            let n: i64 = r.parse().map_err(|_| {
                format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    super::parser::go_quote(&r)
                )
            })?;
            if n < 1 {
                return Err(format!("--retries must be at least 1 (not {n})"));
            }
            n
        }
    };
    Ok(Health {
        test,
        interval: interval(flags.get("interval"), "interval")?,
        timeout: interval(flags.get("timeout"), "timeout")?,
        start_period: interval(flags.get("start-period"), "start-period")?,
        retries,
    })
}

fn copy_args(node: &Node, name: &str, with_from: bool) -> Result<CopyArgs, String> {
    if node.args.len() < 2 {
        return Err(no_dest(name));
    }
    let names: &[&'static str] = if with_from {
        &["chown", "from", "chmod"]
    } else {
        &["chown", "chmod"]
    };
    let mut flags = Flags::new(&node.flags, names, &[]);
    flags.parse()?;
    let mut sources = node.args.clone();
    let dest = sources.pop().unwrap_or_default();
    Ok(CopyArgs {
        sources,
        dest,
        from: flags.get("from").filter(|f| !f.is_empty()),
        chown: flags.get("chown").filter(|f| !f.is_empty()),
        chmod: flags.get("chmod").filter(|f| !f.is_empty()),
    })
}

fn no_flags(node: &Node) -> Result<(), String> {
    Flags::new(&node.flags, &[], &[]).parse()
}

/// The stage name of `FROM base AS name` (lower case), checked as Docker checks it.
fn stage_name(args: &[String]) -> Result<Option<String>, String> {
    match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_lowercase();
            let mut chars = name.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !ok {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or contain symbols",
                    super::parser::go_quote(&args[2])
                ));
            }
            Ok(Some(name))
        }
        1 => Ok(None),
        _ => Err("FROM requires either one or three arguments".into()),
    }
}

/// What a node is: a new stage or an instruction of the current one.
pub enum Parsed {
    /// `FROM`.
    Stage(Stage),
    /// Anything else.
    Instruction(Instruction),
}

/// Turns one node into a typed stage start or instruction.
pub fn parse_node(node: &Node) -> Result<Parsed, InstructionError> {
    let err = |message: String| InstructionError {
        line: node.start_line,
        message,
    };
    let code = node.original.trim().to_string();
    let kind = match node.cmd.as_str() {
        "from" => {
            let name = stage_name(&node.args).map_err(err)?;
            let mut flags = Flags::new(&node.flags, &["platform"], &[]);
            flags.parse().map_err(err)?;
            return Ok(Parsed::Stage(Stage {
                name,
                base: node.args.first().cloned().unwrap_or_default(),
                platform: flags.get("platform").filter(|p| !p.is_empty()),
                code,
                line: node.start_line,
                commands: Vec::new(),
            }));
        }
        "env" => {
            no_flags(node).map_err(err)?;
            Kind::Env(kvps(&node.args, "ENV").map_err(err)?)
        }
        "maintainer" => {
            if node.args.len() != 1 {
                return Err(err(exactly_one("MAINTAINER")));
            }
            no_flags(node).map_err(err)?;
            Kind::Maintainer(node.args[0].clone())
        }
        "label" => {
            no_flags(node).map_err(err)?;
            Kind::Label {
                pairs: kvps(&node.args, "LABEL").map_err(err)?,
                expand: true,
            }
        }
        "add" => Kind::Add(copy_args(node, "ADD", false).map_err(err)?),
        "copy" => Kind::Copy(copy_args(node, "COPY", true).map_err(err)?),
        "onbuild" => {
            if node.args.is_empty() {
                return Err(err(at_least_one("ONBUILD")));
            }
            no_flags(node).map_err(err)?;
            let trigger = node.args[0].trim().to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ))
                }
                "MAINTAINER" | "FROM" => {
                    return Err(err(format!(
                        "{trigger} isn't allowed as an ONBUILD trigger"
                    )))
                }
                _ => {}
            }
            // The text after ONBUILD, as written.
            let original = node.original.trim_start();
            let expr = if original.len() >= 7 && original[..7].eq_ignore_ascii_case("onbuild") {
                original[7..].trim_start()
            } else {
                original
            };
            Kind::Onbuild(expr.to_string())
        }
        "workdir" => {
            if node.args.len() != 1 {
                return Err(err(exactly_one("WORKDIR")));
            }
            no_flags(node).map_err(err)?;
            Kind::Workdir(node.args[0].clone())
        }
        "run" => {
            // `--mount` parses (BuildKit's flag); running it is refused at dispatch.
            let mut flags = Flags::new(&node.flags, &["mount"], &["mount"]);
            flags.parse().map_err(err)?;
            Kind::Run {
                cmd: cmd_line(node),
                flags_used: flags.used,
            }
        }
        "cmd" => {
            no_flags(node).map_err(err)?;
            Kind::Cmd(cmd_line(node))
        }
        "entrypoint" => {
            no_flags(node).map_err(err)?;
            Kind::Entrypoint(cmd_line(node))
        }
        "healthcheck" => Kind::Healthcheck(health(node).map_err(err)?),
        "expose" => {
            if node.args.is_empty() {
                return Err(err(at_least_one("EXPOSE")));
            }
            no_flags(node).map_err(err)?;
            let mut ports = node.args.clone();
            ports.sort();
            Kind::Expose(ports)
        }
        "user" => {
            if node.args.len() != 1 {
                return Err(err(exactly_one("USER")));
            }
            no_flags(node).map_err(err)?;
            Kind::User(node.args[0].clone())
        }
        "volume" => {
            if node.args.is_empty() {
                return Err(err(at_least_one("VOLUME")));
            }
            no_flags(node).map_err(err)?;
            let mut vols = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(err("VOLUME specified can not be an empty string".into()));
                }
                vols.push(v.to_string());
            }
            Kind::Volume(vols)
        }
        "stopsignal" => {
            if node.args.len() != 1 {
                return Err(err(exactly_one("STOPSIGNAL")));
            }
            Kind::StopSignal(node.args[0].clone())
        }
        "arg" => {
            if node.args.is_empty() {
                return Err(err(at_least_one("ARG")));
            }
            let mut pairs = Vec::new();
            for a in &node.args {
                match a.split_once('=') {
                    Some(("", _)) => return Err(err("ARG names can not be blank".into())),
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((a.clone(), None)),
                }
            }
            Kind::Arg(pairs)
        }
        "shell" => {
            no_flags(node).map_err(err)?;
            if node.args.is_empty() {
                return Err(err(at_least_one("SHELL")));
            }
            if !node.json {
                return Err(err("SHELL requires the arguments to be in JSON form".into()));
            }
            Kind::Shell(node.args.clone())
        }
        other => {
            return Err(err(format!(
                "unknown instruction: {}",
                other.to_uppercase()
            )));
        }
    };
    Ok(Parsed::Instruction(Instruction {
        line: node.start_line,
        code,
        kind,
    }))
}

/// An instruction made for a `--label` build option (added to the last stage).
pub fn label_option(key: &str, value: &str) -> Instruction {
    Instruction {
        line: 0,
        code: format!("LABEL {key}={value}"),
        kind: Kind::Label {
            pairs: vec![(key.to_string(), value.to_string())],
            expand: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn first(text: &str) -> Result<Parsed, InstructionError> {
        let p = parse(text).unwrap();
        parse_node(&p.nodes[0])
    }

    fn kind(text: &str) -> Kind {
        match first(text).unwrap() {
            Parsed::Instruction(i) => i.kind,
            Parsed::Stage(_) => panic!("a stage"),
        }
    }

    fn error(text: &str) -> String {
        match first(text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{text} parsed"),
        }
    }

    #[test]
    fn from_and_stage_names() {
        let Parsed::Stage(s) = first("FROM --platform=linux/amd64 busybox:1 AS Build").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.name.as_deref(), Some("build"));
        assert_eq!(s.base, "busybox:1");
        assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(
            error("FROM a AS 1x"),
            "dockerfile parse error line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
        );
        assert_eq!(
            error("FROM a b"),
            "dockerfile parse error line 1: FROM requires either one or three arguments"
        );
    }

    #[test]
    fn unknown_instruction_in_dockers_words() {
        let p = parse("FROM a\nRUN x\nFORM y\n").unwrap();
        let e = match parse_node(&p.nodes[2]) {
            Err(e) => e,
            Ok(_) => panic!(),
        };
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 3: unknown instruction: FORM"
        );
    }

    #[test]
    fn copy_flags() {
        match kind("COPY --from=b --chown=1:2 --chmod=755 a b /c/") {
            Kind::Copy(c) => {
                assert_eq!(c.sources, vec!["a", "b"]);
                assert_eq!(c.dest, "/c/");
                assert_eq!(c.from.as_deref(), Some("b"));
                assert_eq!(c.chown.as_deref(), Some("1:2"));
                assert_eq!(c.chmod.as_deref(), Some("755"));
            }
            k => panic!("{k:?}"),
        }
        assert!(error("ADD --from=x a b").ends_with("Unknown flag: from"));
        assert!(error("COPY --from a b").ends_with("Missing a value on flag: from"));
        assert!(error("COPY --from=a --from=b a b").ends_with("Duplicate flag specified: from"));
        assert!(error("COPY x").ends_with(
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }

    #[test]
    fn run_cmd_entrypoint_forms() {
        match kind("RUN echo a b") {
            Kind::Run { cmd, flags_used } => {
                assert_eq!(cmd.args, vec!["echo a b"]);
                assert!(cmd.prepend_shell);
                assert!(flags_used.is_empty());
            }
            k => panic!("{k:?}"),
        }
        match kind("CMD [\"a\", \"b\"]") {
            Kind::Cmd(c) => assert_eq!(
                (c.args, c.prepend_shell),
                (vec!["a".into(), "b".into()], false)
            ),
            k => panic!("{k:?}"),
        }
        match kind("RUN --mount=type=cache,target=/x make") {
            Kind::Run { flags_used, .. } => assert_eq!(flags_used, vec!["mount"]),
            k => panic!("{k:?}"),
        }
        assert!(error("RUN --network=none x").ends_with("Unknown flag: network"));
        assert!(error("SHELL sh -c").ends_with("SHELL requires the arguments to be in JSON form"));
    }

    #[test]
    fn healthcheck() {
        match kind("HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f x") {
            Kind::Healthcheck(h) => {
                assert_eq!(h.test, vec!["CMD-SHELL", "curl -f x"]);
                assert_eq!(h.interval, Duration::from_secs(300));
                assert_eq!(h.timeout, Duration::from_secs(3));
                assert_eq!(h.retries, 3);
            }
            k => panic!("{k:?}"),
        }
        match kind("HEALTHCHECK NONE") {
            Kind::Healthcheck(h) => assert_eq!(h.test, vec!["NONE"]),
            k => panic!("{k:?}"),
        }
        assert!(error("HEALTHCHECK --interval=0s CMD x")
            .ends_with("Interval \"interval\" cannot be less than 1ms"));
        assert!(
            error("HEALTHCHECK FOO x").ends_with("Unknown type \"FOO\" in HEALTHCHECK (try CMD)")
        );
        assert!(error("HEALTHCHECK --retries=0 CMD x")
            .ends_with("--retries must be at least 1 (not 0)"));
    }

    #[test]
    fn args_env_labels() {
        assert_eq!(
            kind("ARG A B=2 C="),
            Kind::Arg(vec![
                ("A".into(), None),
                ("B".into(), Some("2".into())),
                ("C".into(), Some(String::new()))
            ])
        );
        assert!(error("ARG =x").ends_with("ARG names can not be blank"));
        assert!(error("ENV =x").ends_with("ENV names can not be blank"));
        assert!(error("LABEL").ends_with("LABEL requires at least one argument"));
        assert_eq!(
            kind("EXPOSE 8080 80/udp 443"),
            Kind::Expose(vec!["443".into(), "80/udp".into(), "8080".into()])
        );
    }

    #[test]
    fn onbuild() {
        assert_eq!(
            kind("ONBUILD RUN echo x"),
            Kind::Onbuild("RUN echo x".into())
        );
        assert!(error("ONBUILD ONBUILD RUN x").contains("Chaining ONBUILD"));
        assert!(error("ONBUILD FROM x").ends_with("FROM isn't allowed as an ONBUILD trigger"));
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        // Beyond Go's int64 nanoseconds: invalid, as Go says (the fuzzer's find).
        for huge in [
            "1e300s",
            "99999999999999999999h",
            "9999999999999999999999999s",
        ] {
            assert!(parse_go_duration(huge).is_err(), "{huge}");
        }
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_go_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_go_duration("5x")
            .unwrap_err()
            .contains("unknown unit"));
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(3)), "3s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
