//! Health checks, as dockerd runs them: while a container runs, its `Healthcheck.Test`
//! (`["CMD", ...]` or `["CMD-SHELL", "..."]`; `["NONE"]` turns checks off) is exec'd in
//! it through the supervisor's exec path (`docker exec`'s) every `Interval` (default
//! 30 s), killed after `Timeout` (default 30 s); `Retries` (default 3) failures in a
//! row make it `unhealthy`, one success `healthy`, and failures within `StartPeriod`
//! of the start do not count while it is still `starting`. `State.Health` keeps the
//! last five results (output cut at 4096 bytes), survives berthd restarts (the loop
//! starts again for running containers, keeping the status) and turns `unhealthy` when
//! the container stops or pauses; a change of status found by a probe is a
//! `health_status: STATUS` event.

use super::{ContainerService, Entry, Error, Result, NAMESPACE};
use berth_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `starting`: no success yet.
pub const STARTING: &str = "starting";
/// `healthy`: the last probe passed.
pub const HEALTHY: &str = "healthy";
/// `unhealthy`: `Retries` probes in a row failed, or the container stopped.
pub const UNHEALTHY: &str = "unhealthy";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept (then `...`).
const MAX_OUTPUT: usize = 4096;
/// dockerd's smallest non-zero duration for Interval, Timeout and StartPeriod.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// One probe's result, as inspect shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// 0 healthy, anything else a failure; -1 when it could not run or timed out.
    pub exit_code: i64,
    /// stdout and stderr together, cut at 4096 bytes.
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    /// Failures in a row.
    pub failing_streak: u64,
    /// The last five results, oldest first.
    pub log: Vec<ProbeResult>,
}

/// What to run and when, from `Config.Healthcheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The argv run in the container.
    pub argv: Vec<String>,
    /// Time between the end of one probe and the start of the next.
    pub interval: Duration,
    /// Longest a probe may run.
    pub timeout: Duration,
    /// Failures before `unhealthy`.
    pub retries: u64,
    /// Failures in this long after the start do not count while starting.
    pub start_period: Duration,
}

fn nanos(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn duration_or(v: &Value, default: Duration) -> Duration {
    match nanos(v) {
        n if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe of a container's Config (its shell for CMD-SHELL is `Config.Shell` or
/// `/bin/sh -c`); `None` without a check, with `NONE`, or with a test of another kind.
pub fn probe(config: &Value) -> Option<Probe> {
    let hc = &config["Healthcheck"];
    let test = super::strs(&hc["Test"]);
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut shell = super::strs(&config["Shell"]);
            if shell.is_empty() {
                shell = vec!["/bin/sh".into(), "-c".into()];
            }
            shell.extend(test[1..].iter().cloned());
            shell
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        argv,
        interval: duration_or(&hc["Interval"], DEFAULT_INTERVAL),
        timeout: duration_or(&hc["Timeout"], DEFAULT_TIMEOUT),
        retries: match hc["Retries"].as_i64() {
            Some(n) if n > 0 => n as u64,
            _ => DEFAULT_RETRIES,
        },
        start_period: duration_or(&hc["StartPeriod"], Duration::ZERO),
    })
}

/// The container's Healthcheck over the image's, field by field, as dockerd merges
/// them at create: the image's whole when the container sets none.
pub fn merge(user: &Value, image: &Value) -> Value {
    if !user.is_object() {
        return if image.is_object() {
            image.clone()
        } else {
            Value::Null
        };
    }
    let mut out = user.clone();
    if let Some(img) = image.as_object() {
        if super::strs(&out["Test"]).is_empty() {
            if let Some(t) = img.get("Test") {
                out["Test"] = t.clone();
            }
        }
        for k in [
            "Interval",
            "Timeout",
            "StartPeriod",
            "StartInterval",
            "Retries",
        ] {
            if nanos(&out[k]) == 0 {
                if let Some(v) = img.get(k) {
                    out[k] = v.clone();
                }
            }
        }
    }
    out
}

/// Refuses what dockerd refuses at create: durations under 1 ms, negative retries.
pub fn validate(hc: &Value) -> Result<()> {
    if !hc.is_object() {
        return Ok(());
    }
    for k in ["Interval", "Timeout", "StartPeriod"] {
        let n = nanos(&hc[k]);
        if n != 0 && n < MIN_DURATION.as_nanos() as i64 {
            return Err(Error::Invalid(format!(
                "{k} in Healthcheck cannot be less than {}",
                berth_api::duration::format(MIN_DURATION)
            )));
        }
    }
    if hc["Retries"].as_i64().is_some_and(|r| r < 0) {
        return Err(Error::Invalid(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// Which monitor loop is current for each container: a loop whose number is no longer
/// the container's stops, so that a restart never leaves two loops probing.
#[derive(Default)]
pub struct Monitors {
    current: Mutex<HashMap<String, u64>>,
}

impl Monitors {
    fn next(&self, id: &str) -> u64 {
        let mut m = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(id.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn is_current(&self, id: &str, n: u64) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            == Some(&n)
    }

    /// Stops the loop of a removed container.
    pub fn forget(&self, id: &str) {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Output of a probe, kept to 4096 bytes.
#[derive(Default)]
struct Limited {
    buf: Vec<u8>,
    truncated: bool,
}

impl Limited {
    fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }
    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Sets a checked container's status to `unhealthy` (it stopped or paused: dockerd
/// marks it so when its monitor closes); whether it changed. The caller saves.
pub(crate) fn mark_unhealthy(entry: &Entry) -> bool {
    entry.update(|r| match r.state.health.as_mut() {
        Some(h) if h.status != UNHEALTHY => {
            h.status = UNHEALTHY.into();
            true
        }
        _ => false,
    })
}

impl ContainerService {
    /// The health state of a container that has just started (`fresh`: the status goes
    /// back to `starting`, the streak to 0, the log stays) or that berthd found running
    /// again after a restart (the status stays); its probe, or None without a check.
    /// The caller saves the record (once, with the rest of its state), then calls
    /// `watch_health`.
    pub(crate) fn reset_health(entry: &Entry, fresh: bool) -> Option<Probe> {
        let probe = probe(&entry.record().config)?;
        entry.update(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            if fresh || h.status.is_empty() {
                h.status = STARTING.into();
                h.failing_streak = 0;
            }
        });
        Some(probe)
    }

    /// Runs the probe loop of a running container.
    pub(crate) fn watch_health(self: &Arc<Self>, entry: &Arc<Entry>, probe: Probe) {
        let run = self.health.next(&entry.id);
        let this = self.clone();
        let entry = entry.clone();
        tokio::spawn(async move { this.monitor(entry, probe, run).await });
    }

    /// The loop: wait an interval (or for the container to stop), probe, record.
    async fn monitor(self: Arc<Self>, entry: Arc<Entry>, probe: Probe, run: u64) {
        let mut gen = entry.gen.subscribe();
        let exits = gen.borrow().exits;
        loop {
            let stopped = tokio::select! {
                _ = tokio::time::sleep(probe.interval) => false,
                _ = gen.wait_for(|g| !g.running || g.exits != exits || g.removed) => true,
            };
            if !self.health.is_current(&entry.id, run) {
                return;
            }
            // Stopped: the exit has marked it unhealthy already.
            if stopped || !entry.running() {
                return;
            }
            if entry.record().state.status == "paused" {
                continue;
            }
            let started = chrono::Utc::now();
            let mut result = match self.run_probe(&entry, &probe).await {
                Ok(r) => r,
                Err(e) => ProbeResult {
                    exit_code: -1,
                    output: e.to_string(),
                    end: super::now(),
                    ..Default::default()
                },
            };
            result.start = started.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            // A result that raced with a stop or a restart is dropped, as dockerd does.
            if !self.health.is_current(&entry.id, run)
                || !entry.running()
                || entry.gen.borrow().exits != exits
            {
                continue;
            }
            self.record_result(&entry, &probe, started, result);
        }
    }

    /// A paused container's checks stop (the loop skips it) and it is `unhealthy`
    /// until a probe after the unpause says otherwise, as with dockerd. The caller
    /// saves the record.
    pub(crate) fn health_paused(&self, entry: &Entry) {
        mark_unhealthy(entry);
    }

    /// Applies one result: log, streak, status; an event when the status changes.
    fn record_result(
        &self,
        entry: &Entry,
        probe: &Probe,
        started: chrono::DateTime<chrono::Utc>,
        result: ProbeResult,
    ) {
        let changed = entry.update(|r| {
            // Checked under the record's lock: a probe that raced with an exit (which
            // marked it unhealthy) or a pause is dropped.
            if r.state.status != "running" {
                return None;
            }
            let started_at = chrono::DateTime::parse_from_rfc3339(&r.state.started_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(started);
            let h = r.state.health.get_or_insert_with(Health::default);
            let old = h.status.clone();
            if h.log.len() >= MAX_LOG_ENTRIES {
                h.log.drain(..=h.log.len() - MAX_LOG_ENTRIES);
            }
            let healthy = result.exit_code == 0;
            h.log.push(result);
            if healthy {
                h.failing_streak = 0;
                h.status = HEALTHY.into();
            } else {
                let grace = h.status == STARTING
                    && (started - started_at)
                        .to_std()
                        .is_ok_and(|since| since < probe.start_period);
                if !grace {
                    h.failing_streak += 1;
                    if h.failing_streak >= probe.retries {
                        h.status = UNHEALTHY.into();
                    }
                }
            }
            Some((old, h.status.clone()))
        });
        let Some((old, new)) = changed else {
            return;
        };
        let rec = entry.record();
        let _ = self.save(&rec);
        if old != new {
            self.emit(&format!("health_status: {new}"), &rec, &[]);
        }
    }

    /// Runs the probe once as an exec (registered while it runs, as dockerd's are),
    /// collecting its output, killing it at the timeout.
    async fn run_probe(self: &Arc<Self>, entry: &Entry, probe: &Probe) -> Result<ProbeResult> {
        let body = json!({"Cmd": probe.argv, "AttachStdout": true, "AttachStderr": true});
        let id = self.exec_create(&entry.id, &body)?;
        let r = self.run_exec(&id, probe).await;
        // Probes are not kept: one a second would pile up.
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        r
    }

    async fn run_exec(self: &Arc<Self>, id: &str, probe: &Probe) -> Result<ProbeResult> {
        let exec = self.exec(id)?;
        let mut rx = exec.out.subscribe();
        let mut done = exec.done.subscribe();
        self.exec_start(&exec, false).await?;
        let mut out = Limited::default();
        let finished = tokio::time::timeout(probe.timeout, async {
            loop {
                match rx.recv().await {
                    Ok(super::io::Chunk::Data(_, b)) => out.push(&b),
                    Ok(super::io::Chunk::End)
                    | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                }
            }
            let _ = done.wait_for(|d| *d).await;
        })
        .await
        .is_ok();
        if !finished {
            let _ = self
                .sv
                .tasks()
                .kill(pb::KillRequest {
                    namespace: NAMESPACE.into(),
                    container_id: exec.container.clone(),
                    exec_id: exec.id.clone(),
                    signal: 9,
                    all: false,
                })
                .await;
            // Bounded: a dying probe must not hold the loop forever.
            let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
            let t = berth_api::duration::format(probe.timeout);
            let output = match out.text() {
                s if s.is_empty() => format!("Health check exceeded timeout ({t})"),
                s => format!("Health check exceeded timeout ({t}): {s}"),
            };
            return Ok(ProbeResult {
                end: super::now(),
                exit_code: -1,
                output,
                ..Default::default()
            });
        }
        let code = exec.state.lock().unwrap_or_else(|p| p.into_inner()).1;
        let code = code.ok_or_else(|| {
            Error::Internal(format!(
                "healthcheck for container {} has no exit code!",
                exec.container
            ))
        })?;
        Ok(ProbeResult {
            end: super::now(),
            exit_code: code,
            output: out.text(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_from_config() {
        let c = json!({"Healthcheck": {"Test": ["CMD-SHELL", "test -f /x"], "Interval": 1_000_000_000i64, "Retries": 2}});
        let p = probe(&c).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "test -f /x"]);
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 2);
        let c = json!({"Shell": ["/bin/ash", "-e", "-c"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]}});
        assert_eq!(probe(&c).unwrap().argv, ["/bin/ash", "-e", "-c", "true"]);
        let c = json!({"Healthcheck": {"Test": ["CMD", "true", "x"]}});
        assert_eq!(probe(&c).unwrap().argv, ["true", "x"]);
        assert!(probe(&json!({"Healthcheck": {"Test": ["NONE"]}})).is_none());
        assert!(probe(&json!({"Healthcheck": {"Test": ["CMD"]}})).is_none());
        assert!(probe(&json!({})).is_none());
    }

    #[test]
    fn merged_as_dockerd_merges() {
        let img = json!({"Test": ["CMD", "true"], "Interval": 5, "Retries": 4});
        assert_eq!(merge(&Value::Null, &img), img);
        let user = json!({"Interval": 7});
        assert_eq!(
            merge(&user, &img),
            json!({"Test": ["CMD", "true"], "Interval": 7, "Retries": 4})
        );
        let none = json!({"Test": ["NONE"]});
        assert_eq!(merge(&none, &img)["Test"], json!(["NONE"]));
        assert_eq!(merge(&Value::Null, &Value::Null), Value::Null);
    }

    #[test]
    fn validation() {
        assert!(validate(&json!({"Interval": 1000})).is_err());
        assert!(validate(&json!({"Retries": -1})).is_err());
        assert!(validate(&json!({"Interval": 1_000_000, "Retries": 0})).is_ok());
    }

    #[test]
    fn output_is_cut() {
        let mut l = Limited::default();
        l.push(&[b'a'; 4000]);
        l.push(&[b'b'; 200]);
        let t = l.text();
        assert_eq!(t.len(), 4096 + 3);
        assert!(t.ends_with("bb..."));
    }
}
