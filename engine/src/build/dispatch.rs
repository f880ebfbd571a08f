//! The dispatcher: runs a parsed Dockerfile stage by stage, one function per
//! instruction (as dockerd's `dispatchers.go`), asking the cache before each step.
//! Metadata steps (ENV, LABEL, CMD, ...) make config-only images (an `empty_layer`
//! history entry) without any container; COPY, ADD and WORKDIR write a layer through a
//! detached overlay of the image; RUN runs a container (see [`super::run`]).

use super::args::BuildArgs;
use super::copy::{self, From as CopyFrom, Plan as CopyPlan};
use super::dockerfile::instructions::go_duration;
use super::dockerfile::parser::go_quote;
use super::dockerfile::shell::{env_map, Lex};
use super::dockerfile::{self, CmdLine, CopyArgs, Health, Instruction, Kind, Stage};
use super::download;
use super::error::{BuildError, Result};
use super::layer::{self, Walk};
use super::{BuildService, Plan};
use crate::content::Digest;
use crate::images::config::EnvExt;
use crate::images::config::{Empty, HealthConfig, ImageConfig, RunConfig};
use crate::images::create::{child_config, Child};
use crate::images::reference::Reference;
use crate::images::store::{ImageRecord, LayerRecord};
use crate::images::Platform;
use crate::snapshots::chain_ids;
use berth_fs::Root;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Docker's default PATH for Linux containers.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// What a stage has made so far.
pub(super) struct State {
    /// The run config the next image gets (dockerd's `runConfig`).
    pub config: RunConfig,
    /// The current image (`None`: `scratch` and nothing made yet).
    pub image: Option<ImageRecord>,
    /// Its config.
    pub image_config: Option<ImageConfig>,
    /// MAINTAINER.
    pub maintainer: String,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// The stage's arguments.
    pub args: BuildArgs,
    /// Once a step misses the cache, the rest of the stage does too.
    pub busted: bool,
}

impl State {
    pub fn image_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.id.to_string())
            .unwrap_or_default()
    }

    fn shell(&self) -> Vec<String> {
        if self.config.shell.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            self.config.shell.clone()
        }
    }

    /// The snapshot directories of the current image, top first (overlay lowerdirs).
    pub fn lowers(&self, svc: &BuildService) -> Vec<PathBuf> {
        let Some(img) = &self.image else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = chain_ids(&img.diff_ids())
            .iter()
            .map(|c| svc.images.snapshots.fs_path(c))
            .collect();
        dirs.reverse();
        dirs
    }
}

/// A finished stage: its name and image.
pub(super) struct StageResult {
    name: Option<String>,
    image: Option<ImageRecord>,
}

/// One build in progress.
pub(super) struct Builder<'a> {
    pub svc: &'a Arc<BuildService>,
    pub ctx: Arc<super::context::Context>,
    pub opts: &'a super::options::BuildOptions,
    pub out: &'a super::output::Output,
    pub lex: Lex,
    pub build_id: String,
    stages: Vec<StageResult>,
    cache_from: Vec<ImageRecord>,
}

fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn go_quoted_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| go_quote(s))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Go's `%q` of an integer: a quoted character literal.
fn go_quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if !c.is_control() => format!("'{c}'"),
        Some('\u{7}') => "'\\a'".into(),
        Some('\u{8}') => "'\\b'".into(),
        Some('\u{c}') => "'\\f'".into(),
        Some('\n') => "'\\n'".into(),
        Some('\r') => "'\\r'".into(),
        Some('\t') => "'\\t'".into(),
        Some('\u{b}') => "'\\v'".into(),
        Some(c) if (c as u32) < 0x80 => format!("'\\x{:02x}'", c as u32),
        Some(c) => format!("'\\u{:04x}'", c as u32),
        None => format!("%!q(int={n})"),
    }
}

/// The history text of HEALTHCHECK, as dockerd prints its `%q` of the config.
fn health_text(h: &HealthConfig) -> String {
    let d = |ns: i64| {
        go_quote(&go_duration(std::time::Duration::from_nanos(
            ns.max(0) as u64
        )))
    };
    format!(
        "&{{{} {} {} {} {}}}",
        go_quoted_list(&h.test),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        go_quote_rune(h.retries)
    )
}

fn health_config(h: &Health) -> HealthConfig {
    HealthConfig {
        test: h.test.clone(),
        interval: h.interval.as_nanos() as i64,
        timeout: h.timeout.as_nanos() as i64,
        start_period: h.start_period.as_nanos() as i64,
        retries: h.retries,
        start_interval: 0,
    }
}

/// Signal names dockerd's `signal.ParseSignal` takes.
pub(super) fn valid_signal(s: &str) -> bool {
    crate::containers::parse_signal(s).is_some()
}

/// The ports of an EXPOSE word, as nat.ParsePortSpecs reads them (`80`, `80/udp`,
/// `8000-8002/tcp`).
fn port_specs(word: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (word, "tcp".into()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    // An `ip:host:container` form keeps only the container's port.
    let ports = ports.rsplit(':').next().unwrap_or(ports);
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a, b),
        None => (ports, ports),
    };
    let bad = || format!("Invalid containerPort: {ports}");
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if hi < lo {
        return Err(format!("Invalid range specified for the Port: {ports}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// The key of a build step in the cache: its parent image and what it did (the step's
/// container config, the command included).
pub(super) fn cache_key(parent: &str, container_config: &RunConfig) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(container_config).unwrap_or_default());
    hex::encode(h.finalize())
}

fn step_error(e: impl std::fmt::Display) -> BuildError {
    BuildError::Step(e.to_string())
}

impl<'a> Builder<'a> {
    pub fn new(
        svc: &'a Arc<BuildService>,
        ctx: Arc<super::context::Context>,
        opts: &'a super::options::BuildOptions,
        out: &'a super::output::Output,
        escape: char,
    ) -> Self {
        Self {
            svc,
            ctx,
            opts,
            out,
            lex: Lex::new(escape),
            build_id: crate::containers::random_hex(16),
            stages: Vec::new(),
            cache_from: Vec::new(),
        }
    }

    fn check_cancel(&self) -> Result<()> {
        if self.out.closed() {
            return Err(BuildError::Cancelled);
        }
        Ok(())
    }

    fn step(&self, n: &mut usize, total: usize, code: &str) {
        self.out.stream(format!("Step {n}/{total} : {code}"));
        self.out.stream("\n");
        *n += 1;
    }

    fn arrow(&self, st: &State) {
        let id = st
            .image
            .as_ref()
            .map(|i| i.id.short().to_string())
            .unwrap_or_default();
        self.out.stream(format!(" ---> {id}\n"));
    }

    /// Runs the whole plan. Returns the final image.
    pub async fn run(&mut self, plan: Plan) -> Result<ImageRecord> {
        for name in &self.opts.cache_from {
            if let Ok(rec) = self.svc.images.resolve(name) {
                self.cache_from.push(rec);
            }
        }
        let df = plan.file;
        for w in &df.warnings {
            self.out.stderr(&format!("{w}\n"));
        }
        let total = df.meta_args.len()
            + df.stages.len()
            + df.stages.iter().map(|s| s.commands.len()).sum::<usize>();
        let mut n = 1;
        let mut args = BuildArgs::new(self.opts.build_args.clone());
        for meta in &df.meta_args {
            self.step(&mut n, total, &meta.code);
            let Kind::Arg(pairs) = &meta.kind else {
                continue;
            };
            let env = env_map(
                &args
                    .allowed()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            );
            for (k, v) in pairs {
                let k = self.lex.word(k, &env).map_err(step_error)?;
                let v = match v {
                    Some(v) => Some(self.lex.word(v, &env).map_err(step_error)?),
                    None => None,
                };
                args.add_meta(&k, v);
            }
        }
        let mut last: Option<State> = None;
        for stage in &df.stages {
            self.check_cancel()?;
            if let Some(name) = &stage.name {
                if self.stages.iter().any(|s| s.name.as_deref() == Some(name)) {
                    return Err(BuildError::Step(format!("{name} stage name already used")));
                }
            }
            self.step(&mut n, total, &stage.code);
            let mut st = self.begin_stage(stage, &args).await?;
            st.config.image = st.image_id();
            self.arrow(&st);
            for cmd in &stage.commands {
                self.check_cancel()?;
                self.step(&mut n, total, &cmd.code);
                self.dispatch(&mut st, cmd).await?;
                st.config.image = st.image_id();
                self.arrow(&st);
            }
            if let Some(img) = &st.image {
                self.out.aux_id(img.id.as_str());
            }
            args.merge_referenced(&st.args);
            self.stages.push(StageResult {
                name: stage.name.clone(),
                image: st.image.clone(),
            });
            last = Some(st);
        }
        let unused = args.unused();
        if !unused.is_empty() {
            self.out.stream(format!(
                "[Warning] One or more build-args {} were not consumed\n",
                go_list(&unused)
            ));
        }
        last.and_then(|s| s.image).ok_or_else(|| {
            BuildError::Step("No image was generated. Is your Dockerfile empty?".into())
        })
    }

    /// FROM: the base image (local, pulled, an earlier stage, or scratch), its config,
    /// then its ONBUILD triggers.
    async fn begin_stage(&mut self, stage: &Stage, args: &BuildArgs) -> Result<State> {
        let meta_env: Vec<String> = args
            .meta()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let env = env_map(&meta_env);
        if let Some(p) = &stage.platform {
            let p = self.lex.word(p, &env).map_err(step_error)?;
            let host = format!("linux/{}", crate::images::host_arch());
            if !p.is_empty() && p != "linux" && p != host {
                return Err(BuildError::Step(format!(
                    "failed to parse platform {p}: berthd builds for {host} only"
                )));
            }
        }
        let name = self.lex.word(&stage.base, &env).map_err(step_error)?;
        if name.is_empty() {
            return Err(BuildError::Step(format!(
                "base name ({}) should not be blank",
                stage.base
            )));
        }
        let image = if let Some(s) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&name.to_lowercase()))
        {
            s.image.clone()
        } else if name == "scratch" {
            None
        } else {
            Some(self.image(&name, self.opts.pull).await?)
        };
        let image_config = match &image {
            Some(i) => Some(
                self.svc
                    .images
                    .image_config(i)
                    .map_err(|e| BuildError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let mut config = image_config
            .as_ref()
            .map(|c| c.run_config())
            .unwrap_or_default();
        config.open_stdin = false;
        config.stdin_once = false;
        if !config
            .env()
            .iter()
            .any(|e| e.split('=').next() == Some("PATH"))
        {
            config
                .env
                .get_or_insert_with(Vec::new)
                .push(format!("PATH={DEFAULT_PATH}"));
        }
        let mut st = State {
            config,
            image,
            image_config,
            maintainer: String::new(),
            cmd_set: false,
            args: args.for_stage(),
            busted: false,
        };
        if let Some(triggers) = st.config.on_build.take().filter(|t| !t.is_empty()) {
            self.out.stream(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() > 1 { "s" } else { "" }
            ));
            for trigger in triggers {
                st.config.image = st.image_id();
                let (instrs, _) = dockerfile::parse_changes(&trigger)
                    .map_err(|e| BuildError::Step(e.to_string()))?;
                if instrs.len() != 1 {
                    return Err(BuildError::Step(
                        "onbuild trigger should be a single expression".into(),
                    ));
                }
                self.dispatch(&mut st, &instrs[0]).await?;
            }
        }
        Ok(st)
    }

    /// An image by name: local, or pulled (always with `pull`).
    pub async fn image(&self, name: &str, pull: bool) -> Result<ImageRecord> {
        if !pull {
            match self.svc.images.resolve(name) {
                Ok(rec) => return Ok(rec),
                Err(crate::images::Error::NotFound(_)) => {}
                Err(e) => return Err(BuildError::Image(e.to_string())),
            }
        }
        let r = Reference::parse_with_default_tag(name)
            .map_err(|e| BuildError::Image(e.to_string()))?;
        let creds = self
            .opts
            .auth_configs
            .iter()
            .find(|(k, _)| {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let host = host.split('/').next().unwrap_or(host);
                host == r.domain || (r.domain == "docker.io" && host == "index.docker.io")
            })
            .and_then(|(_, c)| c.clone().normalized());
        let fail =
            |e: crate::images::Error| BuildError::Image(format!("pulling {}: {e}", r.familiar()));
        let resolved = self
            .svc
            .images
            .resolve_remote(&r, &Platform::host(), creds)
            .await
            .map_err(fail)?;
        let id = self
            .svc
            .images
            .pull(resolved, &self.out.progress())
            .await
            .map_err(fail)?;
        self.svc
            .images
            .meta
            .image(&id)
            .map_err(|e| BuildError::Internal(e.to_string()))?
            .ok_or_else(|| BuildError::Image(format!("No such image: {}", r.familiar())))
    }

    async fn dispatch(&mut self, st: &mut State, cmd: &Instruction) -> Result<()> {
        let mut env = st.config.env().to_vec();
        env.extend(st.args.filter_allowed(st.config.env()));
        let env = env_map(&env);
        let lex = self.lex;
        let word = |s: &str| lex.word(s, &env).map_err(step_error);
        match &cmd.kind {
            Kind::Env(pairs) => {
                let mut msg = String::from("ENV");
                for (k, v) in pairs {
                    let (k, v) = (word(k)?, word(v)?);
                    msg.push_str(&format!(" {k}={v}"));
                    st.config.set_env(&k, &v);
                }
                self.commit(st, &msg).await
            }
            Kind::Maintainer(m) => {
                st.maintainer = m.clone();
                self.commit(st, &format!("MAINTAINER {m}")).await
            }
            Kind::Label { pairs, expand } => {
                let mut msg = String::from("LABEL");
                for (k, v) in pairs {
                    let (k, v) = if *expand {
                        (word(k)?, word(v)?)
                    } else {
                        (k.clone(), v.clone())
                    };
                    msg.push_str(&format!(" {k}={v}"));
                    st.config
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(k, v);
                }
                self.commit(st, &msg).await
            }
            Kind::Add(c) | Kind::Copy(c) => {
                let is_add = matches!(cmd.kind, Kind::Add(_));
                let c = CopyArgs {
                    sources: c.sources.iter().map(|s| word(s)).collect::<Result<_>>()?,
                    dest: word(&c.dest)?,
                    from: c.from.clone(),
                    chown: c
                        .chown
                        .as_deref()
                        .map(word)
                        .transpose()?
                        .filter(|s| !s.is_empty()),
                    chmod: c.chmod.clone(),
                };
                self.copy(st, &c, is_add).await
            }
            Kind::Onbuild(expr) => {
                st.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(expr.clone());
                self.commit(st, &format!("ONBUILD {expr}")).await
            }
            Kind::Workdir(p) => {
                let p = word(p)?;
                let dir = if p.starts_with('/') {
                    p
                } else {
                    berth_fs::clean::clean(&format!("/{}/{p}", st.config.working_dir))
                };
                st.config.working_dir = dir.clone();
                self.workdir(st, &dir).await
            }
            Kind::Run {
                cmd: line,
                flags_used,
            } => {
                if let Some(f) = flags_used.first() {
                    return Err(BuildError::Step(format!(
                        "the --{f} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
                    )));
                }
                let argv = self.resolve_cmd(st, line);
                super::run::run_step(self, st, argv).await
            }
            Kind::Cmd(line) => {
                let argv = self.resolve_cmd(st, line);
                st.config.cmd = Some(argv.clone());
                self.commit(st, &format!("CMD {}", go_quoted_list(&argv)))
                    .await?;
                if !line.args.is_empty() {
                    st.cmd_set = true;
                }
                Ok(())
            }
            Kind::Healthcheck(h) => {
                if let Some(old) = &st.config.healthcheck {
                    if old.test.first().is_some_and(|t| t != "NONE") {
                        self.out.stream(format!(
                            "Note: overriding previous HEALTHCHECK: {}\n",
                            go_list(&old.test)
                        ));
                    }
                }
                let hc = health_config(h);
                let text = health_text(&hc);
                st.config.healthcheck = Some(hc);
                self.commit(st, &format!("HEALTHCHECK {text}")).await
            }
            Kind::Entrypoint(line) => {
                let argv = if line.args.is_empty() {
                    None
                } else {
                    Some(self.resolve_cmd(st, line))
                };
                st.config.entrypoint = argv.clone();
                if !st.cmd_set {
                    st.config.cmd = None;
                }
                let shown = match &argv {
                    Some(a) => go_quoted_list(a),
                    None => "[]".into(),
                };
                self.commit(st, &format!("ENTRYPOINT {shown}")).await
            }
            Kind::Expose(ports) => {
                let mut words = Vec::new();
                for p in ports {
                    words.extend(lex.words(p, &env).map_err(step_error)?);
                }
                let set = &mut st.config.exposed_ports;
                for w in &words {
                    for p in port_specs(w).map_err(BuildError::Step)? {
                        set.insert(p, Empty {});
                    }
                }
                self.commit(st, &format!("EXPOSE {}", words.join(" ")))
                    .await
            }
            Kind::User(u) => {
                let u = word(u)?;
                st.config.user = u.clone();
                self.commit(st, &format!("USER {u}")).await
            }
            Kind::Volume(vols) => {
                let vols: Vec<String> = vols.iter().map(|v| word(v)).collect::<Result<_>>()?;
                for v in &vols {
                    if v.is_empty() {
                        return Err(BuildError::Step(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    st.config
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(v.clone(), Empty {});
                }
                self.commit(st, &format!("VOLUME {}", go_list(&vols))).await
            }
            Kind::StopSignal(s) => {
                let s = word(s)?;
                if !valid_signal(&s) {
                    return Err(BuildError::Step(format!("Invalid signal: {s}")));
                }
                st.config.stop_signal = s.clone();
                self.commit(st, &format!("STOPSIGNAL {s}")).await
            }
            Kind::Arg(pairs) => {
                let mut msg = String::from("ARG ");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    let k = word(k)?;
                    let v = v.as_deref().map(word).transpose()?;
                    if i > 0 {
                        msg.push(' ');
                    }
                    msg.push_str(&k);
                    if let Some(v) = &v {
                        msg.push('=');
                        msg.push_str(v);
                    }
                    st.args.add(&k, v);
                }
                self.commit(st, &msg).await
            }
            Kind::Shell(shell) => {
                st.config.shell = shell.clone();
                self.commit(st, &format!("SHELL {}", go_list(shell))).await
            }
        }
    }

    /// RUN/CMD/ENTRYPOINT's argv: the shell form behind the stage's SHELL.
    fn resolve_cmd(&self, st: &State, line: &CmdLine) -> Vec<String> {
        if line.prepend_shell {
            let mut argv = st.shell();
            argv.extend(line.args.iter().cloned());
            argv
        } else {
            line.args.clone()
        }
    }

    /// The step's container config: the run config with a `#(nop)` command.
    fn nop_config(&self, st: &State, comment: &str, two_args: bool) -> RunConfig {
        let mut cc = st.config.clone();
        let mut cmd = st.shell();
        if two_args {
            cmd.push("#(nop) ".into());
            cmd.push(comment.into());
        } else {
            cmd.push(format!("#(nop) {comment}"));
        }
        cc.cmd = Some(cmd);
        cc
    }

    /// Asks the cache for a step; on a hit the stage moves to the cached image.
    pub async fn probe(&self, st: &mut State, cc: &RunConfig) -> Result<bool> {
        if self.opts.no_cache || st.busted {
            return Ok(false);
        }
        let parent = st.image_id();
        let key = cache_key(&parent, cc);
        let images = &self.svc.images;
        let local = images
            .meta
            .cached(&key)
            .map_err(|e| BuildError::Internal(e.to_string()))?;
        let hit = match local {
            Some(rec) if self.cache_from.is_empty() || self.built_on_by_a_source(&rec) => Some(rec),
            _ if !self.cache_from.is_empty() => self.by_history(st, cc, &key).await?,
            _ => None,
        };
        let Some(rec) = hit else {
            st.busted = true;
            return Ok(false);
        };
        self.out.stream(" ---> Using cache\n");
        st.image_config = Some(
            images
                .image_config(&rec)
                .map_err(|e| BuildError::Internal(e.to_string()))?,
        );
        st.image = Some(rec);
        Ok(true)
    }

    /// With `--cache-from`, a local cache entry counts only if one of the named images
    /// was built on it.
    fn built_on_by_a_source(&self, rec: &ImageRecord) -> bool {
        self.cache_from.iter().any(|src| {
            let mut cur = Some(src.clone());
            while let Some(img) = cur {
                if img.id == rec.id {
                    return true;
                }
                cur = img
                    .parent
                    .and_then(|p| self.svc.images.meta.image(&p).ok().flatten());
            }
            false
        })
    }

    /// `--cache-from` by history, as dockerd's `ImageCache`: an image whose history and
    /// layers begin with the current image's and whose next history entry is this
    /// step's command stands for the step's result.
    async fn by_history(
        &self,
        st: &State,
        cc: &RunConfig,
        key: &str,
    ) -> Result<Option<ImageRecord>> {
        let images = &self.svc.images;
        let parent_cfg = st.image_config.clone().unwrap_or_default();
        let n = parent_cfg.history.len();
        let created_by = cc.cmd.as_deref().unwrap_or_default().join(" ");
        for src in &self.cache_from {
            let Ok(scfg) = images.image_config(src) else {
                continue;
            };
            let prefix_ok = scfg.history.len() > n
                && scfg.history[..n] == parent_cfg.history[..]
                && scfg.rootfs.diff_ids.len() >= parent_cfg.rootfs.diff_ids.len()
                && scfg.rootfs.diff_ids[..parent_cfg.rootfs.diff_ids.len()]
                    == parent_cfg.rootfs.diff_ids[..];
            if !prefix_ok || scfg.history[n].created_by != created_by {
                continue;
            }
            if scfg.history.len() == n + 1 {
                images
                    .meta
                    .set_cached(key, &src.id)
                    .map_err(|e| BuildError::Internal(e.to_string()))?;
                return Ok(Some(src.clone()));
            }
            // The step's image, made again from the source's history entry and layer.
            let entry = scfg.history[n].clone();
            let layer_index = scfg.history[..n].iter().filter(|h| !h.empty_layer).count();
            let layer: Option<LayerRecord> = if entry.empty_layer {
                None
            } else {
                src.layers.get(layer_index).cloned()
            };
            let mut cfg = parent_cfg.clone();
            cfg.history.push(entry);
            if let Some(l) = &layer {
                cfg.rootfs.diff_ids.push(l.diff_id.clone());
            }
            cfg.config = Some(st.config.clone());
            cfg.container_config = Some(cc.clone());
            cfg.created = cfg
                .history
                .last()
                .map(|h| h.created.clone())
                .unwrap_or_default();
            let rec = images
                .create_image(st.image.as_ref(), layer, &cfg, &[], Some(key))
                .map_err(|e| BuildError::Internal(e.to_string()))?;
            return Ok(Some(rec));
        }
        Ok(None)
    }

    /// A metadata step: a config-only image (no container, no layer).
    async fn commit(&mut self, st: &mut State, comment: &str) -> Result<()> {
        let cc = self.nop_config(st, comment, true);
        if self.probe(st, &cc).await? {
            return Ok(());
        }
        self.make_image(st, None, cc, String::new()).await
    }

    /// Stores the step's image on the current one and moves the stage to it.
    pub async fn make_image(
        &self,
        st: &mut State,
        layer: Option<LayerRecord>,
        cc: RunConfig,
        container: String,
    ) -> Result<()> {
        let key = cache_key(&st.image_id(), &cc);
        let child = Child {
            config: st.config.clone(),
            container_config: cc,
            container,
            author: st.maintainer.clone(),
            comment: String::new(),
            diff_id: layer.as_ref().map(|l| l.diff_id.clone()),
        };
        let cfg = child_config(st.image_config.as_ref(), &child);
        let images = self.svc.images.clone();
        let parent = st.image.clone();
        let cfg2 = cfg.clone();
        let rec = tokio::task::spawn_blocking(move || {
            images.create_image(parent.as_ref(), layer, &cfg2, &[], Some(&key))
        })
        .await
        .map_err(|e| BuildError::Internal(e.to_string()))?
        .map_err(|e| BuildError::Internal(format!("failed to export image: {e}")))?;
        st.image = Some(rec);
        st.image_config = Some(cfg);
        Ok(())
    }

    /// Writes a layer through an overlay of the current image (`write` gets the merged
    /// root), stores it and makes the step's image. An empty layer makes a config-only
    /// image, as dockerd marks an empty diff.
    async fn layer_step<F>(&self, st: &mut State, cc: RunConfig, write: F) -> Result<()>
    where
        F: FnOnce(&Root) -> std::result::Result<(), BuildError> + Send + 'static,
    {
        let svc = self.svc.clone();
        let lowers = st.lowers(&svc);
        let parent_chain = st
            .image
            .as_ref()
            .and_then(|i| chain_ids(&i.diff_ids()).pop());
        let parent_diffs = st.image.as_ref().map(|i| i.diff_ids()).unwrap_or_default();
        // Garbage collection must not take the new layer before its image exists.
        let guard = self.svc.images.write_guard().await;
        let stored = tokio::task::spawn_blocking(move || -> Result<Option<LayerRecord>> {
            let mut prepared = svc
                .images
                .snapshots
                .prepare_empty()
                .map_err(|e| BuildError::Internal(e.to_string()))?;
            {
                let root = berth_fs::view::open_writable(
                    &prepared.fs_dir(),
                    &prepared.work_dir(),
                    &lowers,
                    &svc.views,
                )
                .map_err(|e| {
                    BuildError::Internal(format!("mounting the image to write a layer: {e}"))
                })?;
                write(&root)?;
            }
            store_prepared(&svc, &mut prepared, Walk::Upper).and_then(|stored| match stored {
                None => Ok(None),
                Some(rec) => {
                    let mut diffs = parent_diffs;
                    diffs.push(rec.diff_id.clone());
                    let chain = chain_ids(&diffs)
                        .pop()
                        .unwrap_or_else(|| rec.diff_id.clone());
                    svc.images
                        .snapshots
                        .commit(prepared, &chain, parent_chain.as_ref())
                        .map_err(|e| BuildError::Internal(e.to_string()))?;
                    Ok(Some(rec))
                }
            })
        })
        .await
        .map_err(|e| BuildError::Internal(e.to_string()))??;
        let r = self.make_image(st, stored, cc, String::new()).await;
        drop(guard);
        r
    }

    async fn workdir(&mut self, st: &mut State, dir: &str) -> Result<()> {
        let cc = self.nop_config(st, &format!("WORKDIR {dir}"), false);
        if self.probe(st, &cc).await? {
            return Ok(());
        }
        let dir = dir.to_string();
        self.layer_step(st, cc, move |root| {
            root.mkdir_all(&dir, 0o755)
                .map(|_| ())
                .map_err(|e| BuildError::Step(format!("creating WORKDIR {dir}: {e}")))
        })
        .await
    }

    /// COPY and ADD.
    async fn copy(&mut self, st: &mut State, c: &CopyArgs, is_add: bool) -> Result<()> {
        let name = if is_add { "ADD" } else { "COPY" };
        let failed = |e: String| BuildError::Copy(format!("{name} failed: {e}"));
        let urls = c.sources.iter().filter(|s| download::is_url(s)).count();
        if urls > 0 && !is_add {
            return Err(failed("source can't be a URL for COPY".into()));
        }
        if urls > 0 && urls < c.sources.len() {
            return Err(failed(
                "berthd takes either URLs or local sources in one ADD, not both: split it into one ADD per kind".into(),
            ));
        }
        let chmod = match &c.chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::Step(format!(
                            "invalid chmod parameter: {m}: must be an octal mode"
                        ))
                    })?,
            ),
        };
        // Where the sources come from: the context, or an image or earlier stage.
        let from_image: Option<ImageRecord> = match &c.from {
            None => None,
            Some(f) => {
                let wrap =
                    |e: String| BuildError::Copy(format!("invalid from flag value {f}: {e}"));
                if let Some(s) = self
                    .stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(&f.to_lowercase()))
                {
                    s.image.clone()
                } else if let Ok(i) = f.parse::<i64>() {
                    if i == self.stages.len() as i64 {
                        return Err(wrap("refers to current build stage".into()));
                    }
                    if i < 0 || i > self.stages.len() as i64 {
                        return Err(wrap("index out of bounds".into()));
                    }
                    self.stages[i as usize].image.clone()
                } else {
                    Some(
                        self.image(f, false)
                            .await
                            .map_err(|e| wrap(e.to_string()))?,
                    )
                }
            }
        };
        let svc = self.svc.clone();
        let ctx = self.ctx.clone();
        // ADD's URLs are fetched on every build, as dockerd does: the cache key is what
        // they hold.
        let downloaded = match urls {
            0 => None,
            _ => Some(Arc::new(download::fetch(&c.sources, &svc.tmp).await?)),
        };
        let sources = match &downloaded {
            Some(d) => d.names.clone(),
            None => c.sources.clone(),
        };
        let from_layers: Option<(Vec<PathBuf>, String)> = match (&c.from, &from_image) {
            (None, _) => None,
            (Some(_), Some(img)) => {
                let mut dirs: Vec<PathBuf> = chain_ids(&img.diff_ids())
                    .iter()
                    .map(|ch| svc.images.snapshots.fs_path(ch))
                    .collect();
                dirs.reverse();
                Some((dirs, img.id.to_string()))
            }
            (Some(f), None) => {
                return Err(BuildError::Copy(format!(
                    "invalid from flag value {f}: the stage has no file system"
                )))
            }
        };
        let svc2 = svc.clone();
        let layers2 = from_layers.clone();
        let downloaded2 = downloaded.clone();
        let infos = tokio::task::spawn_blocking(
            move || -> std::result::Result<Vec<copy::Source>, String> {
                match (&layers2, &downloaded2) {
                    (_, Some(d)) => {
                        let root = Root::open(d.path()).map_err(|e| e.to_string())?;
                        copy::find_sources(
                            &CopyFrom::Image {
                                root: &root,
                                id: "",
                                cache: &Default::default(),
                            },
                            &sources,
                        )
                    }
                    (None, None) => copy::find_sources(&CopyFrom::Context(&ctx), &sources),
                    (Some((dirs, id)), None) => {
                        let root = berth_fs::view::open_layers(dirs, &svc2.views)
                            .map_err(|e| e.to_string())?;
                        copy::find_sources(
                            &CopyFrom::Image {
                                root: &root,
                                id,
                                cache: &svc2.path_cache,
                            },
                            &sources,
                        )
                    }
                }
            },
        )
        .await
        .map_err(|e| BuildError::Internal(e.to_string()))?
        .map_err(failed)?;
        if infos.len() > 1 && !c.dest.ends_with('/') {
            return Err(BuildError::Copy(format!(
                "When using {name} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let chown_comment = c
            .chown
            .as_ref()
            .map(|o| format!("--chown={o}"))
            .unwrap_or_default();
        let chmod_comment = c
            .chmod
            .as_ref()
            .map(|m| format!("--chmod={m} "))
            .unwrap_or_default();
        let comment = format!(
            "{name} {chown_comment}{chmod_comment}{} in {} ",
            copy::sources_hash(&infos),
            c.dest
        );
        let cc = self.nop_config(st, &comment, false);
        if self.probe(st, &cc).await? {
            return Ok(());
        }
        let dest = copy::normalize_dest(&st.config.working_dir, &c.dest);
        let chown = c.chown.clone();
        let preserve = c.from.is_some() && chown.is_none();
        let ctx = self.ctx.clone();
        let views = svc.views.clone();
        self.layer_step(st, cc, move |dst| {
            let owner = match &chown {
                Some(spec) => Some(copy::lookup_chown(dst, spec).map_err(BuildError::Step)?),
                None if preserve => None,
                None => Some((0, 0)),
            };
            let plan = CopyPlan {
                dest,
                owner,
                chmod,
                // A downloaded archive is copied as it is, as dockerd does.
                decompress: is_add && downloaded.is_none(),
            };
            let copied = match (&from_layers, &downloaded) {
                (_, Some(d)) => {
                    let root =
                        Root::open(d.path()).map_err(|e| BuildError::Internal(e.to_string()))?;
                    copy::copy(&root, &infos, dst, &plan)
                }
                (None, None) => copy::copy(ctx.as_ref(), &infos, dst, &plan),
                (Some((dirs, _)), None) => {
                    let root = berth_fs::view::open_layers(dirs, &views)
                        .map_err(|e| BuildError::Internal(e.to_string()))?;
                    copy::copy(&root, &infos, dst, &plan)
                }
            };
            copied.map_err(|e| BuildError::Copy(format!("failed to copy files: {e}")))
        })
        .await
    }
}

/// Writes a prepared layer directory into the content store (`None`: it is empty) and
/// records its size on the prepared snapshot.
pub(super) fn store_prepared(
    svc: &BuildService,
    prepared: &mut crate::snapshots::Prepared,
    walk: Walk,
) -> Result<Option<LayerRecord>> {
    let root = Root::open(&prepared.fs_dir()).map_err(|e| BuildError::Internal(e.to_string()))?;
    let fd = root
        .resolve(
            ".",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        )
        .map_err(|e| BuildError::Internal(e.to_string()))?;
    let stored = layer::store(&svc.images.content, std::os::fd::AsFd::as_fd(&fd), walk)
        .map_err(|e| BuildError::Internal(format!("failed to export layer: {e}")))?;
    Ok(stored.map(|s| {
        prepared.set_size(s.record.unpacked_size);
        s.record
    }))
}

/// The IDs of images a digest can be shown as in output.
pub(super) fn short(d: &Digest) -> String {
    d.short().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_texts_as_dockerd_prints_them() {
        let hc = HealthConfig {
            test: vec!["CMD-SHELL".into(), "curl -f http://localhost/".into()],
            interval: 300_000_000_000,
            timeout: 3_000_000_000,
            start_period: 0,
            retries: 3,
            start_interval: 0,
        };
        assert_eq!(
            health_text(&hc),
            "&{[\"CMD-SHELL\" \"curl -f http://localhost/\"] \"5m0s\" \"3s\" \"0s\" '\\x03'}"
        );
        assert_eq!(go_quoted_list(&["sh".into()]), "[\"sh\"]");
        assert_eq!(go_list(&["/a".into(), "/b".into()]), "[/a /b]");
    }

    #[test]
    fn ports() {
        assert_eq!(port_specs("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(port_specs("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(port_specs("8000-8002").unwrap().len(), 3);
        assert_eq!(port_specs("80/xyz").unwrap_err(), "Invalid proto: xyz");
        assert!(port_specs("x").is_err());
    }

    #[test]
    fn cache_keys_differ_by_parent_and_config() {
        let a = RunConfig {
            cmd: Some(vec!["a".into()]),
            ..Default::default()
        };
        let b = RunConfig {
            cmd: Some(vec!["b".into()]),
            ..Default::default()
        };
        assert_ne!(cache_key("p", &a), cache_key("p", &b));
        assert_ne!(cache_key("p", &a), cache_key("q", &a));
        assert_eq!(cache_key("p", &a), cache_key("p", &a.clone()));
    }
}
