//! `docker commit --change` and `docker import --change`: Dockerfile instructions
//! applied to a run config without building anything, as dockerd's
//! `BuildFromConfig` applies them (only CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
//! LABEL, ONBUILD, USER, VOLUME and WORKDIR are valid).

use super::dockerfile::{self, shell::env_map, shell::Lex, Kind};
use crate::images::config::EnvExt;
use crate::images::config::{Empty, HealthConfig, RunConfig};
use std::collections::BTreeMap;

/// Applies `changes` (one instruction each) to `config`.
pub fn apply(config: &mut RunConfig, changes: &[String]) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    let text = changes.join("\n");
    let parsed = dockerfile::parser::parse(&text).map_err(|e| e.to_string())?;
    const VALID: &[&str] = &[
        "cmd",
        "entrypoint",
        "healthcheck",
        "env",
        "expose",
        "label",
        "onbuild",
        "user",
        "volume",
        "workdir",
    ];
    for n in &parsed.nodes {
        if !VALID.contains(&n.cmd.as_str()) {
            return Err(format!("{} is not a valid change command", n.cmd));
        }
    }
    let (instrs, escape) = dockerfile::parse_changes(&text).map_err(|e| e.to_string())?;
    let lex = Lex::new(escape);
    let shell = |c: &RunConfig| -> Vec<String> {
        if c.shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            c.shell.clone()
        }
    };
    let mut cmd_set = false;
    for i in instrs {
        let env = env_map(config.env());
        let word = |s: &str| lex.word(s, &env).map_err(|e| e.to_string());
        let line = |c: &RunConfig, l: &dockerfile::CmdLine| {
            if l.prepend_shell {
                let mut v = shell(c);
                v.extend(l.args.iter().cloned());
                v
            } else {
                l.args.clone()
            }
        };
        match &i.kind {
            Kind::Env(pairs) => {
                for (k, v) in pairs {
                    config.set_env(&word(k)?, &word(v)?);
                }
            }
            Kind::Cmd(l) => {
                config.cmd = Some(line(config, l));
                if !l.args.is_empty() {
                    cmd_set = true;
                }
            }
            Kind::Entrypoint(l) => {
                config.entrypoint = if l.args.is_empty() {
                    None
                } else {
                    Some(line(config, l))
                };
                if !cmd_set {
                    config.cmd = None;
                }
            }
            Kind::Healthcheck(h) => {
                config.healthcheck = Some(HealthConfig {
                    test: h.test.clone(),
                    interval: h.interval.as_nanos() as i64,
                    timeout: h.timeout.as_nanos() as i64,
                    start_period: h.start_period.as_nanos() as i64,
                    retries: h.retries,
                    start_interval: 0,
                });
            }
            Kind::Expose(ports) => {
                let set = &mut config.exposed_ports;
                for p in ports {
                    for w in lex.words(p, &env).map_err(|e| e.to_string())? {
                        let spec = if w.contains('/') {
                            w
                        } else {
                            format!("{w}/tcp")
                        };
                        set.insert(spec, Empty {});
                    }
                }
            }
            Kind::Label { pairs, .. } => {
                for (k, v) in pairs {
                    config
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(word(k)?, word(v)?);
                }
            }
            Kind::Onbuild(e) => config.on_build.get_or_insert_with(Vec::new).push(e.clone()),
            Kind::User(u) => config.user = word(u)?,
            Kind::Volume(v) => {
                for p in v {
                    config
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(word(p)?, Empty {});
                }
            }
            Kind::Workdir(p) => {
                let p = word(p)?;
                config.working_dir = if p.starts_with('/') {
                    p
                } else {
                    berth_fs::clean::clean(&format!("/{}/{p}", config.working_dir))
                };
            }
            other => return Err(format!("{other:?} is not a valid change command")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes_as_dockerd() {
        let mut c = RunConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        apply(
            &mut c,
            &[
                "ENV A=1".into(),
                "CMD [\"true\"]".into(),
                "WORKDIR app".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL a=$A".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.env(), ["PATH=/bin", "A=1"]);
        assert_eq!(c.cmd, Some(vec!["true".to_string()]));
        assert_eq!(c.working_dir, "/app");
        assert!(c.exposed_ports.contains_key("80/tcp"));
        assert_eq!(c.labels.as_ref().unwrap()["a"], "1");
        let mut c = RunConfig::default();
        assert_eq!(
            apply(&mut c, &["RUN x".into()]).unwrap_err(),
            "run is not a valid change command"
        );
        apply(&mut c, &["ENTRYPOINT /bin/app".into()]).unwrap();
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/bin/app".into()])
        );
    }
}
