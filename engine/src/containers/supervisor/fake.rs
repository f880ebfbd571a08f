//! An in-memory supervisor for unit tests: tasks and processes are records, exits and
//! pauses are published as the real one publishes them, and tests decide what an exec'd
//! program does, end a task as its program would, or cut the event stream to make the
//! engine re-sync. Nothing runs.

use super::{Error, Event, EventStream, Exit, NewTask, ProcessState, Result, Status, Stdio};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;
use tokio::sync::broadcast;

/// What an exec'd program does once started.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Exits at once with this status.
    Exit(u32),
    /// Runs until killed.
    Run,
    /// Cannot start: the runtime's error.
    Fail(String),
}

#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    status: Status,
    exit_status: u32,
    args: Vec<String>,
}

#[derive(Debug, Clone)]
struct Task {
    init: Proc,
    execs: HashMap<String, Proc>,
    spec: oci_spec::runtime::Spec,
    stdio: Stdio,
}

type Rule = Box<dyn Fn(&[String]) -> Outcome + Send + Sync>;

/// A look at the engine's files when it deletes a task.
pub type DeleteHook = Box<dyn Fn(&str) + Send + Sync>;

/// The fake.
pub struct Fake {
    tasks: Mutex<HashMap<String, Task>>,
    events: Mutex<broadcast::Sender<Event>>,
    next_pid: Mutex<u32>,
    rule: Mutex<Rule>,
    /// Calls made, in order (`create ID`, `start ID EXEC`, `kill ID SIG`, ...).
    pub calls: Mutex<Vec<String>>,
    /// When set, `create` fails with this message.
    pub fail_create: Mutex<Option<String>>,
    /// Reconnections asked for.
    pub reconnects: Mutex<u32>,
    /// When set, a started init process exits at once with this status (its exit may
    /// reach the engine before the start's answer is recorded).
    pub exit_on_start: Mutex<Option<u32>>,
    /// Called with the ID at every `delete`, before it acts (to look at what the
    /// engine has written by then).
    pub on_delete: Mutex<Option<DeleteHook>>,
}

impl Default for Fake {
    fn default() -> Self {
        Self {
            tasks: Mutex::new(HashMap::new()),
            events: Mutex::new(broadcast::channel(1024).0),
            next_pid: Mutex::new(1000),
            rule: Mutex::new(Box::new(|_| Outcome::Exit(0))),
            calls: Mutex::new(Vec::new()),
            fail_create: Mutex::new(None),
            reconnects: Mutex::new(0),
            exit_on_start: Mutex::new(None),
            on_delete: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fake {
    /// Decides what exec'd programs do, by their argv.
    pub fn on_exec(&self, rule: impl Fn(&[String]) -> Outcome + Send + Sync + 'static) {
        *lock(&self.rule) = Box::new(rule);
    }

    fn record(&self, call: String) {
        lock(&self.calls).push(call);
    }

    /// Whether a call starting with `prefix` was made.
    pub fn called(&self, prefix: &str) -> bool {
        lock(&self.calls).iter().any(|c| c.starts_with(prefix))
    }

    fn publish(&self, e: Event) {
        let _ = lock(&self.events).send(e);
    }

    /// The init process of `id` exits with `status` (as its program would), published.
    pub fn exit(&self, id: &str, status: u32) {
        if let Some(pid) = self.stop(id, "", status) {
            self.publish(Event::Exit(Exit {
                container_id: id.into(),
                exec_id: None,
                pid,
                exit_status: status,
                exited_at: Some(SystemTime::now()),
                reason: String::new(),
            }));
        }
    }

    /// The init process of `id` exits without an event reaching anyone (as while the
    /// engine was not subscribed): only a re-sync finds it.
    pub fn exit_unseen(&self, id: &str, status: u32) {
        self.stop(id, "", status);
    }

    /// The kernel's OOM killer strikes the container: an OOM event, then its exit (137).
    pub fn oom(&self, id: &str) {
        self.publish(Event::Oom {
            container_id: id.into(),
        });
        self.exit(id, 137);
    }

    /// A task found running (or stopped with `exit`) as a restarted supervisor finds its
    /// shims again.
    pub fn seed(&self, id: &str, pid: u32, exit: Option<u32>) {
        let status = if exit.is_some() {
            Status::Stopped
        } else {
            Status::Running
        };
        lock(&self.tasks).insert(
            id.into(),
            Task {
                init: Proc {
                    pid,
                    status,
                    exit_status: exit.unwrap_or(0),
                    args: Vec::new(),
                },
                execs: HashMap::new(),
                spec: oci_spec::runtime::Spec::default(),
                stdio: Stdio::default(),
            },
        );
    }

    /// Ends every subscription (as a supervisor restart does).
    pub fn disconnect(&self) {
        *lock(&self.events) = broadcast::channel(1024).0;
    }

    /// The spec and stdio the task of `id` was created with.
    pub fn task(&self, id: &str) -> Option<(oci_spec::runtime::Spec, Stdio)> {
        lock(&self.tasks)
            .get(id)
            .map(|t| (t.spec.clone(), t.stdio.clone()))
    }

    /// The status of a process.
    pub fn status(&self, id: &str, exec_id: &str) -> Option<Status> {
        let tasks = lock(&self.tasks);
        let t = tasks.get(id)?;
        if exec_id.is_empty() {
            Some(t.init.status)
        } else {
            t.execs.get(exec_id).map(|p| p.status)
        }
    }

    /// Marks a process stopped; its pid if it was running.
    fn stop(&self, id: &str, exec_id: &str, status: u32) -> Option<u32> {
        let mut tasks = lock(&self.tasks);
        let t = tasks.get_mut(id)?;
        let p = if exec_id.is_empty() {
            &mut t.init
        } else {
            t.execs.get_mut(exec_id)?
        };
        if !matches!(p.status, Status::Running | Status::Paused) {
            return None;
        }
        p.status = Status::Stopped;
        p.exit_status = status;
        Some(p.pid)
    }

    fn pid(&self) -> u32 {
        let mut n = lock(&self.next_pid);
        *n += 1;
        *n
    }
}

fn not_found(what: &str) -> Error {
    Error::NotFound(format!("{what}: not found"))
}

#[async_trait::async_trait]
impl super::Supervisor for Fake {
    async fn create(&self, task: NewTask) -> Result<()> {
        self.record(format!("create {}", task.id));
        if let Some(msg) = lock(&self.fail_create).clone() {
            return Err(Error::Failed(msg));
        }
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&task.id) {
            return Err(Error::Conflict(format!("task {} already exists", task.id)));
        }
        let args = task
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        tasks.insert(
            task.id.clone(),
            Task {
                init: Proc {
                    pid: 0,
                    status: Status::Created,
                    exit_status: 0,
                    args,
                },
                execs: HashMap::new(),
                spec: task.spec,
                stdio: task.stdio,
            },
        );
        Ok(())
    }

    async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        self.record(format!("start {id} {exec_id}"));
        let pid = self.pid();
        let outcome = {
            let mut tasks = lock(&self.tasks);
            let t = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
            if exec_id.is_empty() {
                t.init.pid = pid;
                t.init.status = Status::Running;
                if let Some(status) = *lock(&self.exit_on_start) {
                    t.init.status = Status::Stopped;
                    t.init.exit_status = status;
                    let _ = lock(&self.events).send(Event::Exit(Exit {
                        container_id: id.into(),
                        exec_id: None,
                        pid,
                        exit_status: status,
                        exited_at: Some(SystemTime::now()),
                        reason: String::new(),
                    }));
                }
                return Ok(pid);
            }
            if t.init.status != Status::Running {
                return Err(Error::Conflict(format!("task {id} is not running")));
            }
            let p = t.execs.get_mut(exec_id).ok_or_else(|| not_found(exec_id))?;
            let outcome = (lock(&self.rule))(&p.args);
            if let Outcome::Fail(msg) = &outcome {
                return Err(Error::Failed(msg.clone()));
            }
            p.pid = pid;
            p.status = Status::Running;
            outcome
        };
        if let Outcome::Exit(status) = outcome {
            // Published after the start answers, as a real exit would come.
            let id = id.to_string();
            let exec_id = exec_id.to_string();
            if self.stop(&id, &exec_id, status).is_some() {
                let events = lock(&self.events).clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let _ = events.send(Event::Exit(Exit {
                        container_id: id,
                        exec_id: Some(exec_id),
                        pid,
                        exit_status: status,
                        exited_at: Some(SystemTime::now()),
                        reason: String::new(),
                    }));
                });
            }
        }
        Ok(pid)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.record(format!("delete {id}"));
        if let Some(hook) = lock(&self.on_delete).as_ref() {
            hook(id);
        }
        let mut tasks = lock(&self.tasks);
        if let Some(t) = tasks.get(id) {
            if matches!(t.init.status, Status::Running | Status::Paused) {
                return Err(Error::Conflict(format!("task {id} is running")));
            }
        }
        tasks.remove(id);
        Ok(())
    }

    async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        _stdio: &Stdio,
    ) -> Result<()> {
        self.record(format!("exec {id} {exec_id}"));
        let mut tasks = lock(&self.tasks);
        let t = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        match t.init.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict("cannot exec in task: it is paused".into()))
            }
            _ => return Err(Error::Conflict(format!("task {id} is not running"))),
        }
        if t.execs.contains_key(exec_id) {
            return Err(Error::Conflict(format!("exec {exec_id} already exists")));
        }
        t.execs.insert(
            exec_id.into(),
            Proc {
                pid: 0,
                status: Status::Created,
                exit_status: 0,
                args: process.args().clone().unwrap_or_default(),
            },
        );
        Ok(())
    }

    async fn delete_process(&self, id: &str, exec_id: &str) -> Result<()> {
        self.record(format!("delete_process {id} {exec_id}"));
        let mut tasks = lock(&self.tasks);
        let t = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        t.execs.remove(exec_id).ok_or_else(|| not_found(exec_id))?;
        Ok(())
    }

    async fn kill(&self, id: &str, exec_id: &str, signal: u32, _all: bool) -> Result<()> {
        self.record(format!("kill {id} {exec_id} {signal}"));
        if !lock(&self.tasks).contains_key(id) {
            return Err(not_found(id));
        }
        let status = 128 + signal;
        if let Some(pid) = self.stop(id, exec_id, status) {
            self.publish(Event::Exit(Exit {
                container_id: id.into(),
                exec_id: (!exec_id.is_empty()).then(|| exec_id.to_string()),
                pid,
                exit_status: status,
                exited_at: Some(SystemTime::now()),
                reason: String::new(),
            }));
        }
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.record(format!("pause {id}"));
        {
            let mut tasks = lock(&self.tasks);
            let t = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
            t.init.status = Status::Paused;
        }
        self.publish(Event::Paused {
            container_id: id.into(),
        });
        Ok(())
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.record(format!("resume {id}"));
        {
            let mut tasks = lock(&self.tasks);
            let t = tasks.get_mut(id).ok_or_else(|| not_found(id))?;
            t.init.status = Status::Running;
        }
        self.publish(Event::Resumed {
            container_id: id.into(),
        });
        Ok(())
    }

    async fn resize(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.record(format!("resize {id} {exec_id} {width}x{height}"));
        Ok(())
    }

    async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        self.record(format!("close_stdin {id} {exec_id}"));
        Ok(())
    }

    async fn pids(&self, id: &str) -> Result<Vec<u32>> {
        let tasks = lock(&self.tasks);
        let t = tasks.get(id).ok_or_else(|| not_found(id))?;
        Ok(std::iter::once(&t.init)
            .chain(t.execs.values())
            .filter(|p| p.status == Status::Running)
            .map(|p| p.pid)
            .collect())
    }

    async fn update(&self, id: &str, _resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        self.record(format!("update {id}"));
        Ok(())
    }

    async fn state(&self, id: &str, exec_id: &str) -> Result<ProcessState> {
        let tasks = lock(&self.tasks);
        let t = tasks.get(id).ok_or_else(|| not_found(id))?;
        let p = if exec_id.is_empty() {
            &t.init
        } else {
            t.execs.get(exec_id).ok_or_else(|| not_found(exec_id))?
        };
        Ok(ProcessState {
            pid: p.pid,
            status: p.status,
            exit_status: p.exit_status,
            exited_at: None,
            oom_killed: false,
            exit_reason: String::new(),
        })
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let rx = lock(&self.events).subscribe();
        let s = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(e) => Some((Ok(e), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Some((Err(Error::Lost(format!("{n} events"))), rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(Box::pin(s))
    }

    async fn reconnect(&self) {
        *lock(&self.reconnects) += 1;
    }

    async fn shutdown(&self) {}
}
