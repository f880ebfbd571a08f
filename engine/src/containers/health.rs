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

use super::state::Status;
use super::{Container, ContainerService, Error, Result};
use berth_api::container::{Config, Health, HealthConfig, HealthcheckResult};
use berth_api::state::HealthStatus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept (then `...`).
const MAX_OUTPUT: usize = 4096;

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
    pub retries: i64,
    /// Failures in this long after the start do not count while starting.
    pub start_period: Duration,
}

fn duration_or(nanos: i64, default: Duration) -> Duration {
    match nanos {
        n if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe of a container's Config (its shell for CMD-SHELL is `Config.Shell` or
/// `/bin/sh -c`); `None` without a check, with `NONE`, or with a test of another kind.
pub fn probe(config: &Config) -> Option<Probe> {
    let hc = config.healthcheck.as_ref()?;
    let test = &hc.test;
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut shell = config.shell.clone();
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
        interval: duration_or(hc.interval, DEFAULT_INTERVAL),
        timeout: duration_or(hc.timeout, DEFAULT_TIMEOUT),
        retries: if hc.retries > 0 {
            hc.retries
        } else {
            DEFAULT_RETRIES
        },
        start_period: duration_or(hc.start_period, Duration::ZERO),
    })
}

/// The container's Healthcheck over the image's, field by field, as dockerd merges
/// them at create: the image's whole when the container sets none.
pub fn merge(user: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    let Some(user) = user else {
        return image.cloned();
    };
    let mut out = user.clone();
    if let Some(img) = image {
        if out.test.is_empty() {
            out.test = img.test.clone();
        }
        for (mine, theirs) in [
            (&mut out.interval, img.interval),
            (&mut out.timeout, img.timeout),
            (&mut out.start_period, img.start_period),
            (&mut out.start_interval, img.start_interval),
            (&mut out.retries, img.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
    }
    Some(out)
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
pub(crate) fn mark_unhealthy(entry: &Container) -> bool {
    entry.update(|r| match r.state.health.as_mut() {
        Some(h) if h.status != HealthStatus::Unhealthy => {
            h.status = HealthStatus::Unhealthy;
            true
        }
        _ => false,
    })
}

fn new_health() -> Health {
    Health {
        status: HealthStatus::Starting,
        failing_streak: 0,
        log: Some(Vec::new()),
    }
}

fn now() -> String {
    super::now()
}

impl ContainerService {
    /// The health state of a container that has just started (`fresh`: the status goes
    /// back to `starting`, the streak to 0, the log stays) or that berthd found running
    /// again after a restart (the status stays); its probe, or None without a check.
    /// The caller saves the record (once, with the rest of its state), then calls
    /// `watch_health`.
    pub(crate) fn reset_health(entry: &Container, fresh: bool) -> Option<Probe> {
        let probe = probe(&entry.record().config)?;
        entry.update(|r| match r.state.health.as_mut() {
            // Found running again: the checks go on from where they were.
            Some(_) if !fresh => {}
            Some(h) => {
                h.status = HealthStatus::Starting;
                h.failing_streak = 0;
            }
            None => r.state.health = Some(new_health()),
        });
        Some(probe)
    }

    /// Runs the probe loop of a running container.
    pub(crate) fn watch_health(self: &Arc<Self>, entry: &Arc<Container>, probe: Probe) {
        let run = self.health.next(&entry.id);
        let this = self.clone();
        let entry = entry.clone();
        tokio::spawn(async move { this.monitor(entry, probe, run).await });
    }

    /// The loop: wait an interval (or for the container to stop), probe, record.
    async fn monitor(self: Arc<Self>, entry: Arc<Container>, probe: Probe, run: u64) {
        let mut gen = entry.gen.subscribe();
        let exits = gen.borrow().exits;
        loop {
            let stopped = tokio::select! {
                _ = tokio::time::sleep(probe.interval) => false,
                _ = gen.wait_for(|g| !super::state::has_task(g.status) || g.exits != exits || g.removed) => true,
            };
            if !self.health.is_current(&entry.id, run) {
                return;
            }
            // Stopped: the exit has marked it unhealthy already.
            if stopped || !entry.running() {
                return;
            }
            if entry.status() == Status::Paused {
                continue;
            }
            let started = chrono::Utc::now();
            let mut result = match self.run_probe(&entry, &probe).await {
                Ok(r) => r,
                Err(e) => HealthcheckResult {
                    exit_code: -1,
                    output: e.to_string(),
                    end: now(),
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
            self.record_result(&entry, &probe, started, result).await;
        }
    }

    /// A paused container's checks stop (the loop skips it) and it is `unhealthy`
    /// until a probe after the unpause says otherwise, as with dockerd. The caller
    /// saves the record.
    pub(crate) fn health_paused(&self, entry: &Container) {
        mark_unhealthy(entry);
    }

    /// Applies one result: log, streak, status; an event when the status changes.
    async fn record_result(
        &self,
        entry: &Container,
        probe: &Probe,
        started: chrono::DateTime<chrono::Utc>,
        result: HealthcheckResult,
    ) {
        let changed = entry.update(|r| {
            // Checked under the record's lock: a probe that raced with an exit (which
            // marked it unhealthy) or a pause is dropped.
            if r.state.status() != Status::Running {
                return None;
            }
            let started_at = chrono::DateTime::parse_from_rfc3339(&r.state.started_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(started);
            let h = r.state.health.get_or_insert_with(new_health);
            let old = h.status;
            let log = h.log.get_or_insert_with(Vec::new);
            if log.len() >= MAX_LOG_ENTRIES {
                log.drain(..=log.len() - MAX_LOG_ENTRIES);
            }
            let healthy = result.exit_code == 0;
            log.push(result);
            if healthy {
                h.failing_streak = 0;
                h.status = HealthStatus::Healthy;
            } else {
                let grace = h.status == HealthStatus::Starting
                    && (started - started_at)
                        .to_std()
                        .is_ok_and(|since| since < probe.start_period);
                if !grace {
                    h.failing_streak += 1;
                    if h.failing_streak >= probe.retries {
                        h.status = HealthStatus::Unhealthy;
                    }
                }
            }
            Some((old, h.status))
        });
        let Some((old, new)) = changed else {
            return;
        };
        let _ = self.store.save(entry).await;
        let rec = entry.record();
        if old != new {
            self.emit(&format!("health_status: {}", new.as_str()), &rec, &[]);
        }
    }

    /// Runs the probe once as an exec (registered while it runs, as dockerd's are),
    /// collecting its output, killing it at the timeout.
    async fn run_probe(
        self: &Arc<Self>,
        entry: &Container,
        probe: &Probe,
    ) -> Result<HealthcheckResult> {
        let config = berth_api::exec::ExecConfig {
            cmd: Some(probe.argv.clone()),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let id = self.exec_create(&entry.id, &config)?;
        let r = self.run_exec(&id, probe).await;
        // Probes are not kept: one a second would pile up.
        self.execs.remove(&id);
        r
    }

    async fn run_exec(self: &Arc<Self>, id: &str, probe: &Probe) -> Result<HealthcheckResult> {
        let exec = self.exec(id)?;
        let mut rx = exec.out.subscribe();
        let mut done = exec.done.subscribe();
        self.exec_start(&exec).await?;
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
            let _ = self.sv.kill(&exec.container, &exec.id, 9, false).await;
            // Bounded: a dying probe must not hold the loop forever.
            let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
            let t = berth_api::duration::format(probe.timeout);
            let output = match out.text() {
                s if s.is_empty() => format!("Health check exceeded timeout ({t})"),
                s => format!("Health check exceeded timeout ({t}): {s}"),
            };
            return Ok(HealthcheckResult {
                end: now(),
                exit_code: -1,
                output,
                ..Default::default()
            });
        }
        let code = exec.state().1;
        let code = code.ok_or_else(|| {
            Error::Internal(format!(
                "healthcheck for container {} has no exit code!",
                exec.container
            ))
        })?;
        Ok(HealthcheckResult {
            end: now(),
            exit_code: code,
            output: out.text(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn probes_from_config() {
        let c = config(
            serde_json::json!({"Healthcheck": {"Test": ["CMD-SHELL", "test -f /x"], "Interval": 1_000_000_000i64, "Retries": 2}}),
        );
        let p = probe(&c).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "test -f /x"]);
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 2);
        let c = config(
            serde_json::json!({"Shell": ["/bin/ash", "-e", "-c"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]}}),
        );
        assert_eq!(probe(&c).unwrap().argv, ["/bin/ash", "-e", "-c", "true"]);
        let c = config(serde_json::json!({"Healthcheck": {"Test": ["CMD", "true", "x"]}}));
        assert_eq!(probe(&c).unwrap().argv, ["true", "x"]);
        assert!(probe(&config(
            serde_json::json!({"Healthcheck": {"Test": ["NONE"]}})
        ))
        .is_none());
        assert!(probe(&config(
            serde_json::json!({"Healthcheck": {"Test": ["CMD"]}})
        ))
        .is_none());
        assert!(probe(&Config::default()).is_none());
    }

    #[test]
    fn merged_as_dockerd_merges() {
        let hc = |v: serde_json::Value| -> HealthConfig { serde_json::from_value(v).unwrap() };
        let img = hc(serde_json::json!({"Test": ["CMD", "true"], "Interval": 5, "Retries": 4}));
        assert_eq!(merge(None, Some(&img)), Some(img.clone()));
        let user = hc(serde_json::json!({"Interval": 7}));
        assert_eq!(
            merge(Some(&user), Some(&img)),
            Some(hc(
                serde_json::json!({"Test": ["CMD", "true"], "Interval": 7, "Retries": 4})
            ))
        );
        let none = hc(serde_json::json!({"Test": ["NONE"]}));
        assert_eq!(merge(Some(&none), Some(&img)).unwrap().test, ["NONE"]);
        assert_eq!(merge(None, None), None);
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

#[cfg(test)]
mod flows {
    use super::super::supervisor::fake::Outcome;
    use super::super::testing::Harness;
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn health_of(c: &Container) -> Option<Health> {
        c.read(|r| r.state.health.clone())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probes_decide_the_health_and_a_stop_ends_it() {
        let h = Harness::new().await;
        let code = Arc::new(AtomicU32::new(1));
        let probe_code = code.clone();
        h.fake.on_exec(move |argv| {
            assert_eq!(argv, ["probe", "--now"]);
            Outcome::Exit(probe_code.load(Ordering::SeqCst))
        });
        let c = h
            .create(
                "hc",
                serde_json::json!({"Healthcheck": {"Test": ["CMD", "probe", "--now"], "Interval": 5_000_000, "Retries": 2}}),
            )
            .await;
        h.svc.start("hc").await.unwrap();
        assert_eq!(health_of(&c).unwrap().status, HealthStatus::Starting);
        h.until("unhealthy", || {
            health_of(&c).is_some_and(|h| h.status == HealthStatus::Unhealthy)
        })
        .await;
        let hs = health_of(&c).unwrap();
        assert!(hs.failing_streak >= 2);
        let log = hs.log.unwrap();
        assert!(log.iter().all(|r| r.exit_code == 1 && !r.start.is_empty()));
        assert!(log.len() <= MAX_LOG_ENTRIES);
        code.store(0, Ordering::SeqCst);
        h.until("healthy", || {
            health_of(&c).is_some_and(|h| h.status == HealthStatus::Healthy)
        })
        .await;
        assert_eq!(health_of(&c).unwrap().failing_streak, 0);
        h.until("the event", || {
            h.actions(&c).iter().any(|a| a == "health_status: healthy")
        })
        .await;
        let actions = h.actions(&c);
        assert!(actions.iter().any(|a| a == "health_status: unhealthy"));
        assert!(actions.iter().any(|a| a == "health_status: healthy"));
        assert!(actions
            .iter()
            .any(|a| a.starts_with("exec_start: probe --now")));
        // Probes are not kept as execs.
        assert!(h.svc.exec_ids(&c.id).is_empty());
        // A stopped container is unhealthy and probed no more.
        h.fake.exit(&c.id, 0);
        h.status(&c, super::super::state::Status::Exited).await;
        h.until("unhealthy once stopped", || {
            health_of(&c).is_some_and(|h| h.status == HealthStatus::Unhealthy)
        })
        .await;
        let probes = h.fake.calls.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(h.fake.calls.lock().unwrap().len(), probes);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_probe_that_hangs_times_out() {
        let h = Harness::new().await;
        h.fake.on_exec(|_| Outcome::Run);
        let c = h
            .create(
                "slow",
                serde_json::json!({"Healthcheck": {"Test": ["CMD-SHELL", "sleep 9"], "Interval": 5_000_000, "Timeout": 20_000_000, "Retries": 1}}),
            )
            .await;
        h.svc.start("slow").await.unwrap();
        h.until("timed out", || {
            health_of(&c).is_some_and(|h| h.status == HealthStatus::Unhealthy)
        })
        .await;
        let r = &health_of(&c).unwrap().log.unwrap()[0];
        assert_eq!(r.exit_code, -1);
        assert_eq!(r.output, "Health check exceeded timeout (20ms)");
        // The probe was killed, not left running.
        assert!(h.fake.called(&format!("kill {} ", c.id)));
    }
}
