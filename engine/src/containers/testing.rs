//! Unit-test harness of the container core: an image store in a temp dir with a tiny
//! image, and the container service over the in-memory supervisor. Nothing runs and
//! nothing is mounted: restart policies, health checks, restores and the state machine
//! are tested without root.

use super::state::Status;
use super::supervisor::fake::Fake;
use super::{Container, ContainerService, Options};
use crate::images::{ImageService, ImportOptions};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A service, its fake supervisor and their directories.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub fake: Arc<Fake>,
    pub svc: Arc<ContainerService>,
    pub images: Arc<ImageService>,
}

fn image_tar(dir: &Path) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n");
    add("bin/true", b"");
    let p = dir.join("image.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

pub async fn open_with(dir: tempfile::TempDir, fake: Arc<Fake>, delay: Duration) -> Harness {
    let data = dir.path().join("data");
    let exec = dir.path().join("exec");
    let images = ImageService::open(&data, Vec::new()).unwrap();
    let svc = ContainerService::open(
        images.clone(),
        fake.clone(),
        &data,
        &exec,
        Options {
            runtimes: crate::config::Runtimes {
                default: "berth".into(),
                paths: [("berth".to_string(), "berth-runtime".to_string())]
                    .into_iter()
                    .collect(),
            },
            cgroup_parent: "/berth-test".into(),
            restart_delay: delay,
        },
    )
    .await
    .unwrap();
    Harness {
        dir,
        fake,
        svc,
        images,
    }
}

impl Harness {
    /// A fresh service with the image `img:1` (`CMD ["true"]`).
    pub async fn new() -> Self {
        Self::with_delay(Duration::from_millis(10)).await
    }

    /// As `new`, with this first restart delay.
    pub async fn with_delay(delay: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let images = ImageService::open(&data, Vec::new()).unwrap();
        let tar = image_tar(dir.path());
        images
            .import(
                &tar,
                &ImportOptions {
                    reference: crate::images::reference::Reference::parse_with_default_tag("img:1")
                        .ok(),
                    message: String::new(),
                    changes: vec![r#"CMD ["true"]"#.into()],
                    platform: None,
                },
            )
            .unwrap();
        drop(images);
        open_with(dir, Arc::new(Fake::default()), delay).await
    }

    /// The same directories opened again by a new service (a berthd restart) over
    /// `fake` (the supervisor as the new berthd finds it).
    pub async fn reopen(self, fake: Arc<Fake>) -> Self {
        let Harness {
            dir, svc, images, ..
        } = self;
        let delay = svc.restart_delay;
        // Work in flight (an exit being recorded) ends first, as it would before a
        // process exits.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&svc) > 1 {
            assert!(Instant::now() < deadline, "the service is still in use");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(svc);
        drop(images);
        open_with(dir, fake, delay).await
    }

    /// Creates a container from `img:1` with `extra` merged into the request.
    pub async fn create(&self, name: &str, extra: Value) -> Arc<Container> {
        let mut body = json!({"Image": "img:1", "HostConfig": {"NetworkMode": "none"}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if k == "HostConfig" {
                    if let (Some(hc), Some(v)) = (b["HostConfig"].as_object_mut(), v.as_object()) {
                        hc.extend(v.clone());
                    }
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        let req = berth_api::container::ContainerCreateRequest::decode(
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .unwrap();
        let (id, _) = self.svc.create(Some(name), req).await.unwrap();
        self.svc.get(&id).unwrap()
    }

    /// Waits (bounded) until `f` holds.
    pub async fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the container has this status.
    pub async fn status(&self, c: &Container, want: Status) {
        self.until(&format!("{} {want}", c.name()), || c.status() == want)
            .await;
    }

    /// The actions of the container events emitted so far.
    pub fn actions(&self, c: &Container) -> Vec<String> {
        self.svc
            .events
            .since(0)
            .iter()
            .filter(|e| e.id == c.id)
            .map(|e| e.action.clone())
            .collect()
    }
}
