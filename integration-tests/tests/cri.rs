//! berthd's Kubernetes CRI, driven by a gRPC client built from the same CRI types
//! (k8s-cri over tonic): the pod sandbox / container / exec / logs / stats / image life
//! cycle, bad requests and their gRPC codes, a pod removed with its containers running,
//! a CNI plugin that fails, berthd killed with -9 while pods run, and exec and attach
//! streamed through a real SPDY client (moby/spdystream, from Debian). Each test has
//! its own berthd, bridge, subnet and registry, and removes what it made.

mod cgroup_support;
mod cri_support;
mod engine_support;

use cgroup_support::cgroup_file_of as cgroup_file;
use cri_support::*;
use k8s_cri::v1 as cri;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::Code;

async fn lock() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
    }
}

/// The `(stream, tag, content)` of each line of a CRI log.
fn log_lines(path: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            assert_eq!(f.len(), 4, "not a CRI log line: {l:?}");
            assert!(chrono_like(f[0]), "bad timestamp in {l:?}");
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// RFC 3339 with nanoseconds in UTC: 2026-01-02T03:04:05.123456789Z.
fn chrono_like(t: &str) -> bool {
    t.len() == 30 && t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_container_exec_logs_stats_and_image_life_cycle() {
    let _g = lock().await;
    let c = Cri::start();
    let (mut rt, mut img) = c.clients().await;

    let v = rt
        .version(cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.runtime_name.as_str(), v.runtime_api_version.as_str()),
        ("berth", "v1")
    );
    let st = rt
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let conds = st.status.unwrap().conditions;
    assert!(conds.iter().all(|c| c.status), "{conds:?}");
    let rc = rt
        .runtime_config(cri::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rc.linux.unwrap().cgroup_driver,
        cri::CgroupDriver::Cgroupfs as i32
    );

    // Images: pulled into the engine's store, listed fully qualified, found by any name.
    let image_id = c.pull().await;
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    let by_name = img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: c.image.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .expect("image");
    let by_id = img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image_id.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .expect("image");
    assert_eq!(by_name, by_id);
    assert_eq!(by_name.repo_tags, vec![c.image.clone()]);
    assert_eq!(by_name.repo_digests.len(), 1);
    let list = img
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert!(list.iter().any(|i| i.id == image_id));
    let fs = img
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 1_000_000);

    // A pod: ready, an address in the test subnet, its DNS config and hostname.
    let (pod, pod_cfg) = c.run_pod("life").await;
    let s = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let status = s.status.unwrap();
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    let pod_ip = status.network.unwrap().ip;
    let prefix = c.subnet.trim_end_matches("0/24");
    assert!(pod_ip.starts_with(prefix), "{pod_ip} not in {}", c.subnet);
    assert_eq!(c.reserved_ips(), vec![pod_ip.clone()]);
    assert_eq!(c.bridge_ports(), 1);
    let netns = c.exec_root().join("cri/netns").join(&pod);
    assert!(netns.exists());

    // A container that writes to both streams, then ticks.
    let cfg = c.container_config(
        "ticker",
        &["sh", "-c", "trap '' TERM; echo out; echo err >&2; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"],
    );
    let ctr = c.run_container(&pod, &pod_cfg, cfg).await;
    let st = c.container_status(&ctr).await;
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    let log = Path::new(&pod_cfg.log_directory).join("ticker.log");
    assert_eq!(st.log_path, log.display().to_string());
    eventually("log lines", Duration::from_secs(10), || {
        log_lines(&log).len() >= 4
    })
    .await;
    let lines = log_lines(&log);
    assert!(
        lines.contains(&("stdout".into(), "F".into(), "out".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("stderr".into(), "F".into(), "err".into())),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.2 == "tick 0"), "{lines:?}");

    let listed = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                label_selector: [("c".to_string(), "ticker".to_string())].into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, ctr);

    // ExecSync: output, exit code, the pod's hostname and resolv.conf.
    let r = c
        .exec_sync(
            &ctr,
            &[
                "sh",
                "-c",
                "hostname; cat /etc/resolv.conf; echo oops >&2; exit 3",
            ],
            10,
        )
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.exit_code, 3);
    assert!(out.starts_with("life-host\n"), "{out}");
    assert!(
        out.contains("nameserver 10.0.0.10")
            && out.contains("search svc.test")
            && out.contains("options ndots:2"),
        "{out}"
    );
    assert_eq!(String::from_utf8_lossy(&r.stderr), "oops\n");
    // A timeout ends the command (and the call) and leaves no process behind.
    let t = Instant::now();
    let e = c.exec_sync(&ctr, &["sleep", "30"], 1).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let r = c
        .exec_sync(
            &ctr,
            &[
                "sh",
                "-c",
                "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null; echo; done",
            ],
            10,
        )
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&r.stdout).contains("sleep30"),
        "the timed-out exec still runs"
    );

    // Stats of the container and the pod.
    let cs = rt
        .container_stats(cri::ContainerStatsRequest {
            container_id: ctr.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(cs.cpu.unwrap().usage_core_nano_seconds.unwrap().value > 0);
    assert!(cs.memory.unwrap().working_set_bytes.unwrap().value > 0);
    let ps = rt
        .pod_sandbox_stats(cri::PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(ps.linux.unwrap().containers.len(), 1);

    // The kubelet rotates the log: renamed away, reopened, the new file fills.
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    rt.reopen_container_log(cri::ReopenContainerLogRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap();
    eventually("lines in the reopened log", Duration::from_secs(10), || {
        !log_lines(&log).is_empty()
    })
    .await;
    let before = log_lines(&rotated).len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        log_lines(&rotated).len(),
        before,
        "the old file still grows"
    );

    // Pods are not Docker's containers.
    let body = c
        .berthd()
        .http("GET", "/containers/json?all=1", None)
        .json();
    assert_eq!(
        body,
        serde_json::json!([]),
        "docker ps lists a pod container"
    );

    // Stop: the ticker ignores SIGTERM, so after the timeout it is killed.
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    let st = c.container_status(&ctr).await;
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "stopped at once: {st:?}\n{}",
        c.berthd().log()
    );
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "Error"));
    assert!(st.finished_at > st.started_at && st.started_at > st.created_at);
    // Again is fine; ReopenContainerLog of a stopped container is not.
    rt.stop_container(cri::StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    assert_eq!(
        code(
            rt.reopen_container_log(cri::ReopenContainerLogRequest {
                container_id: ctr.clone()
            })
            .await
        ),
        Code::FailedPrecondition
    );
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        code(
            rt.container_status(cri::ContainerStatusRequest {
                container_id: ctr.clone(),
                verbose: false
            })
            .await
        ),
        Code::NotFound
    );
    assert!(!c.data_root().join("cri/containers-fs").join(&ctr).exists());

    // A container that exits by itself: Completed.
    let done = c
        .run_container(&pod, &pod_cfg, c.container_config("done", &["true"]))
        .await;
    eventually("exit of true", Duration::from_secs(10), || {
        futures_block(c.container_status(&done)).state
            == cri::ContainerState::ContainerExited as i32
    })
    .await;
    let st = c.container_status(&done).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (0, "Completed"));

    // Stop the pod: not ready, its address released (CNI DEL), its namespace gone.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let s = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.status.unwrap().state,
        cri::PodSandboxState::SandboxNotready as i32
    );
    assert!(c.reserved_ips().is_empty(), "{:?}", c.reserved_ips());
    assert_eq!(c.bridge_ports(), 0);
    assert!(!netns.exists());
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let pods = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty());
    assert!(!c.data_root().join("cri/pods").join(&pod).exists());

    // The image goes with RemoveImage.
    img.remove_image(cri::RemoveImageRequest {
        image: Some(cri::ImageSpec {
            image: c.image.clone(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let gone = img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image_id,
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(gone.image.is_none());
}

/// Runs a future to completion from a synchronous closure (bounded by its own work).
fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_grpc_codes() {
    let _g = lock().await;
    let c = Cri::start();
    let (mut rt, mut img) = c.clients().await;
    let nope = "0123456789abcdef".to_string();

    assert_eq!(
        code(
            rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: nope.clone(),
                verbose: false
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: nope.clone()
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.container_status(cri::ContainerStatusRequest {
                container_id: nope.clone(),
                verbose: false
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.start_container(cri::StartContainerRequest {
                container_id: nope.clone()
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.stop_container(cri::StopContainerRequest {
                container_id: nope.clone(),
                timeout: 0
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(code(c.exec_sync(&nope, &["true"], 0).await), Code::NotFound);
    assert_eq!(
        code(
            rt.container_stats(cri::ContainerStatsRequest {
                container_id: nope.clone()
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.exec(cri::ExecRequest {
                container_id: nope.clone(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.port_forward(cri::PortForwardRequest {
                pod_sandbox_id: nope.clone(),
                port: vec![80]
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            rt.container_status(cri::ContainerStatusRequest {
                container_id: String::new(),
                verbose: false
            })
            .await
        ),
        Code::InvalidArgument
    );
    // Removing what is not there is not an error (the kubelet retries removals).
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: nope.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: nope.clone(),
    })
    .await
    .unwrap();

    assert_eq!(
        code(
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: None,
                runtime_handler: String::new()
            })
            .await
        ),
        Code::InvalidArgument
    );
    let mut no_uid = c.pod_config("x");
    no_uid.metadata.as_mut().unwrap().uid.clear();
    assert_eq!(
        code(
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(no_uid),
                runtime_handler: String::new()
            })
            .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(c.pod_config("x")),
                runtime_handler: "no-such-runtime".into()
            })
            .await
        ),
        Code::InvalidArgument
    );

    c.pull().await;
    let (pod, pod_cfg) = c.run_pod("bad").await;
    // The same pod name twice.
    assert_eq!(
        code(
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_cfg.clone()),
                runtime_handler: String::new()
            })
            .await
        ),
        Code::AlreadyExists
    );
    let create = |cfg: cri::ContainerConfig| cri::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(cfg),
        sandbox_config: Some(pod_cfg.clone()),
    };
    let mut no_image = c.container_config("a", &["true"]);
    no_image.image = None;
    assert_eq!(
        code(rt.create_container(create(no_image)).await),
        Code::InvalidArgument
    );
    let mut unknown = c.container_config("a", &["true"]);
    unknown.image = Some(cri::ImageSpec {
        image: "127.0.0.1:1/none:x".into(),
        ..Default::default()
    });
    assert_eq!(
        code(rt.create_container(create(unknown)).await),
        Code::NotFound
    );
    let mut group_only = c.container_config("a", &["true"]);
    group_only.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            run_as_group: Some(cri::Int64Value { value: 5 }),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        code(rt.create_container(create(group_only)).await),
        Code::InvalidArgument
    );
    #[allow(deprecated)]
    let bad_seccomp = {
        let mut b = c.container_config("a", &["true"]);
        b.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                seccomp_profile_path: "/not/localhost.json".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        b
    };
    assert_eq!(
        code(rt.create_container(create(bad_seccomp)).await),
        Code::InvalidArgument
    );
    let mut relative = c.container_config("a", &["true"]);
    relative.mounts = vec![cri::Mount {
        container_path: "rel".into(),
        host_path: c.work.path().display().to_string(),
        ..Default::default()
    }];
    assert_eq!(
        code(rt.create_container(create(relative)).await),
        Code::InvalidArgument
    );
    // Nothing half-made remains of the refused creates.
    let all = rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(all.is_empty(), "{all:?}");

    let id = c
        .run_container(&pod, &pod_cfg, c.container_config("a", &["sleep", "60"]))
        .await;
    assert_eq!(
        code(
            rt.start_container(cri::StartContainerRequest {
                container_id: id.clone()
            })
            .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            rt.create_container(create(c.container_config("a", &["true"])))
                .await
        ),
        Code::AlreadyExists,
        "a second container of the same name"
    );
    assert_eq!(
        code(
            rt.exec(cri::ExecRequest {
                container_id: id.clone(),
                cmd: vec![],
                stdout: true,
                ..Default::default()
            })
            .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            rt.exec(cri::ExecRequest {
                container_id: id.clone(),
                cmd: vec!["sh".into()],
                tty: true,
                stderr: true,
                stdout: true,
                ..Default::default()
            })
            .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            rt.attach(cri::AttachRequest {
                container_id: id.clone(),
                stdin: true,
                stdout: true,
                ..Default::default()
            })
            .await
        ),
        Code::InvalidArgument,
        "no stdin to attach to"
    );
    assert_eq!(code(c.exec_sync(&id, &[], 0).await), Code::InvalidArgument);

    // Images.
    let none = img
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: "127.0.0.1:1/nothing:here".into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.image.is_none());
    assert_eq!(
        code(
            img.pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: "Bad//Name".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
        ),
        Code::InvalidArgument
    );
    let missing = format!("{}/test/bb:no-such-tag", c.registry.host());
    assert_eq!(
        code(
            img.pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: missing,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            img.image_status(cri::ImageStatusRequest {
                image: None,
                verbose: false
            })
            .await
        ),
        Code::InvalidArgument
    );
    // An image in use is not removed under a container.
    assert_eq!(
        code(
            img.remove_image(cri::RemoveImageRequest {
                image: Some(cri::ImageSpec {
                    image: c.image.clone(),
                    ..Default::default()
                })
            })
            .await
        ),
        Code::FailedPrecondition
    );

    // berthd is fine after all of it.
    rt.version(cri::VersionRequest::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_pod_stops_and_removes_its_running_containers() {
    let _g = lock().await;
    let c = Cri::start();
    let (mut rt, _) = c.clients().await;
    c.pull().await;
    let (pod, pod_cfg) = c.run_pod("rm").await;
    let a = c
        .run_container(&pod, &pod_cfg, c.container_config("a", &["sleep", "600"]))
        .await;
    let b = c
        .run_container(&pod, &pod_cfg, c.container_config("b", &["sleep", "600"]))
        .await;
    let (pa, pb) = (c.pid_of(&a).await, c.pid_of(&b).await);
    assert!(alive(pa) && alive(pb));
    let netns = c.exec_root().join("cri/netns").join(&pod);
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(!alive(pa) && !alive(pb), "the pod's processes outlived it");
    let all = rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(all.is_empty(), "{all:?}");
    assert!(rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert!(!netns.exists());
    assert!(c.reserved_ips().is_empty());
    assert_eq!(c.bridge_ports(), 0);
    for id in [&pod, &a, &b] {
        let procs = std::fs::read_dir("/proc").unwrap().flatten().filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).contains(id.as_str()))
                .unwrap_or(false)
        });
        assert_eq!(procs.count(), 0, "a process (a shim?) of {id} remains");
    }
}

/// UpdateContainerResources between CreateContainer and StartContainer: the container
/// starts with the new limits (in its cgroup and in ContainerStatus), as containerd's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_updated_before_start_are_the_ones_it_starts_with() {
    let _g = lock().await;
    let c = Cri::start();
    let (mut rt, _) = c.clients().await;
    c.pull().await;
    let (pod, pod_cfg) = c.run_pod("upd").await;
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(c.container_config("u", &["sleep", "600"])),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    let limit = 96 << 20;
    rt.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: limit,
            cpu_shares: 512,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    let pid = c.pid_of(&id).await;
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let memory = if unified {
        cgroup_file(pid, "memory", "memory.max")
    } else {
        cgroup_file(pid, "memory", "memory.limit_in_bytes")
    };
    assert_eq!(memory, Some(limit.to_string()));
    if !unified {
        assert_eq!(
            cgroup_file(pid, "cpu", "cpu.shares"),
            Some("512".to_string())
        );
    }
    let st = c.container_status(&id).await;
    let res = st.resources.and_then(|r| r.linux).expect("resources");
    assert_eq!(res.memory_limit_in_bytes, limit);
    assert_eq!(res.cpu_shares, 512);
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_cni_plugin_leaves_nothing_behind() {
    let _g = lock().await;
    let c = Cri::start_with(&[r#"{"type": "berth-test-fail"}"#]);
    // A plugin that refuses ADD (with a CNI error result) and accepts DEL.
    let plugin = c.plugin_dir().join("berth-test-fail");
    std::fs::write(
        &plugin,
        "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then\n  echo '{\"cniVersion\":\"0.4.0\",\"code\":11,\"msg\":\"test plugin refuses\",\"details\":\"on purpose\"}'\n  exit 1\nfi\nexit 0\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&plugin).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (mut rt, _) = c.clients().await;
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(c.pod_config("fail")),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(
        e.message().contains("test plugin refuses") && e.message().contains("berth-test-fail"),
        "{e:?}"
    );
    assert!(rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert!(
        c.reserved_ips().is_empty(),
        "the bridge plugin's address was not released: {:?}",
        c.reserved_ips()
    );
    assert_eq!(c.bridge_ports(), 0, "a veth was left on the bridge");
    let netns_dir = c.exec_root().join("cri/netns");
    let left: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let pods_dir = c.data_root().join("cri/pods");
    let left: Vec<_> = std::fs::read_dir(&pods_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // The same name works once the network does.
    std::fs::write(&plugin, "#!/bin/sh\ncat\n").unwrap();
    let (pod, _) = c.run_pod("fail").await;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_survive_berthd_killed_with_sigkill() {
    let _g = lock().await;
    let mut c = Cri::start();
    c.pull().await;
    let (pod, pod_cfg) = c.run_pod("crash").await;
    let ticker = c
        .run_container(
            &pod,
            &pod_cfg,
            c.container_config(
                "ticker",
                &[
                    "sh",
                    "-c",
                    "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
                ],
            ),
        )
        .await;
    let quitter = c
        .run_container(
            &pod,
            &pod_cfg,
            c.container_config("quitter", &["sh", "-c", "exit 7"]),
        )
        .await;
    eventually("exit of quitter", Duration::from_secs(10), || {
        futures_block(c.container_status(&quitter)).state
            == cri::ContainerState::ContainerExited as i32
    })
    .await;
    let pid = c.pid_of(&ticker).await;
    let ip = c.reserved_ips();
    c.crash_and_restart();

    // Listed as they are, the running one still running (same process), its network kept.
    let (mut rt, _) = c.clients().await;
    let pods = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].state, cri::PodSandboxState::SandboxReady as i32);
    let st = c.container_status(&ticker).await;
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    assert_eq!(c.pid_of(&ticker).await, pid);
    let st = c.container_status(&quitter).await;
    assert_eq!(
        (st.state, st.exit_code),
        (cri::ContainerState::ContainerExited as i32, 7)
    );
    assert_eq!(c.reserved_ips(), ip);
    let r = c
        .exec_sync(&ticker, &["echo", "still here"], 10)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "still here\n");
    // Its log goes on being written.
    let log = Path::new(&pod_cfg.log_directory).join("ticker.log");
    let n = log_lines(&log).len();
    eventually(
        "log lines after the restart",
        Duration::from_secs(10),
        || log_lines(&log).len() > n + 3,
    )
    .await;

    // A container killed while berthd was down is seen exited after the next restart.
    let (mut rt, _) = c.clients().await;
    rt.stop_container(cri::StopContainerRequest {
        container_id: ticker.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    c.crash_and_restart();
    let (mut rt, _) = c.clients().await;
    let st = c.container_status(&ticker).await;
    assert_eq!(
        (st.state, st.exit_code),
        (cri::ContainerState::ContainerExited as i32, 137)
    );
    // Stopped after a crash: its network is DEL'd, and it can be removed.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(c.reserved_ips().is_empty());
    assert_eq!(c.bridge_ports(), 0);
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert!(!alive(pid));
}

/// Builds the SPDY test client (Go, over Debian's moby/spdystream) in `dir`.
fn build_spdy_client(dir: &Path) -> std::path::PathBuf {
    let src = Path::new("/usr/share/gocode/src/github.com/docker/spdystream");
    assert!(
        src.is_dir(),
        "moby/spdystream missing: apt-get install golang-go golang-github-docker-spdystream-dev (deploy/install-deps.sh)"
    );
    // Debian ships it under its old import path; its files import the new one.
    let gopath = dir.join("gopath");
    let dst = gopath.join("src/github.com/moby/spdystream");
    for sub in ["", "spdy"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".go") && !name.ends_with("_test.go") {
                std::fs::copy(e.path(), dst.join(sub).join(&name)).unwrap();
            }
        }
    }
    let main = dir.join("spdy_exec.go");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/spdy_exec.go"),
        &main,
    )
    .unwrap();
    let out_bin = dir.join("spdy_exec");
    let out = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out_bin)
        .arg(&main)
        .env("GO111MODULE", "off")
        .env("GOPATH", &gopath)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go (apt-get install golang-go)");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_bin
}

fn spdy(client: &Path, url: &str, flags: &[&str], stdin: &[u8], status: &Path) -> (String, String) {
    let mut cmd = std::process::Command::new(client);
    cmd.args(flags).arg("-status").arg(status).arg(url);
    let out = berth_integration_tests::run_piped(cmd, Some(stdin), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "spdy_exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A pod running one container that sleeps (to exec into): its ID, config and the
/// container's ID.
async fn pod_with_a_sleeper(c: &Cri, name: &str) -> (String, cri::PodSandboxConfig, String) {
    let (pod, pod_cfg) = c.run_pod(name).await;
    let ctr = c
        .run_container(
            &pod,
            &pod_cfg,
            c.container_config("sleeper", &["sleep", "600"]),
        )
        .await;
    (pod, pod_cfg, ctr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_attach_stream_over_spdy() {
    let _g = lock().await;
    let c = Cri::start();
    let client = build_spdy_client(c.work.path());
    let (mut rt, _) = c.clients().await;
    c.pull().await;
    let (pod, pod_cfg, ctr) = pod_with_a_sleeper(&c, "stream").await;
    let status = c.work.path().join("status.json");

    // stdin, stdout and stderr, and a non-zero exit in the v4 status.
    let url = rt
        .exec(cri::ExecRequest {
            container_id: ctr.clone(),
            cmd: [
                "sh",
                "-c",
                "read x; echo got:$x; echo to-stderr >&2; exit 5",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (out, err) = spdy(&client, &url, &["-stdin"], b"hello\n", &status);
    assert_eq!(out, "got:hello\n");
    assert_eq!(err, "to-stderr\n");
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).unwrap()).unwrap();
    assert_eq!(st["status"], "Failure");
    assert_eq!(st["reason"], "NonZeroExitCode");
    assert_eq!(st["details"]["causes"][0]["message"], "5");
    // A URL serves once.
    let mut again = std::process::Command::new(&client);
    again.arg("-status").arg(&status).arg(&url);
    let out = berth_integration_tests::run_piped(again, None, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A terminal, resized by the client.
    let url = rt
        .exec(cri::ExecRequest {
            container_id: ctr.clone(),
            cmd: ["sh", "-c", "sleep 1; stty size"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stdin: true,
            stdout: true,
            tty: true,
            stderr: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let (out, _) = spdy(&client, &url, &["-stdin", "-tty"], b"", &status);
    assert!(out.contains("40 100"), "{out:?}");
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).unwrap()).unwrap();
    assert_eq!(st["status"], "Success");

    // Attach to a shell's stdin (stdin_once): what it runs comes back; it ends with it.
    let mut shell = c.container_config("shell", &["sh"]);
    shell.stdin = true;
    shell.stdin_once = true;
    let sh = c.run_container(&pod, &pod_cfg, shell).await;
    let url = rt
        .attach(cri::AttachRequest {
            container_id: sh.clone(),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let (out, err) = spdy(
        &client,
        &url,
        &["-stdin"],
        b"echo attached-$((40+2))\n",
        &status,
    );
    assert_eq!(out, "attached-42\n");
    assert_eq!(err, "");
    eventually(
        "the shell's exit after stdin closed",
        Duration::from_secs(10),
        || {
            futures_block(c.container_status(&sh)).state
                == cri::ContainerState::ContainerExited as i32
        },
    )
    .await;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

/// The WebSocket upgrade of a streaming URL, offering `proto`.
fn websocket_request(
    url: &str,
    proto: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
    req
}

/// One WebSocket session of Kubernetes' channel protocol: connects offering `proto`,
/// sends `input` (each a whole message, channel byte first), then reads until the
/// server closes. Returns (stdout, stderr, error channel, first message).
async fn websocket_session(
    url: &str,
    proto: &str,
    input: Vec<Vec<u8>>,
) -> (String, String, String, Vec<u8>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let req = websocket_request(url, proto);
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("WebSocket handshake in time")
    .expect("WebSocket handshake");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(proto)
    );
    for m in input {
        ws.send(Message::Binary(m.into())).await.unwrap();
    }
    let (mut out, mut err, mut status, mut first) = (Vec::new(), Vec::new(), Vec::new(), None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        let b = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        first.get_or_insert_with(|| b.to_vec());
        match b.first() {
            Some(1) => out.extend_from_slice(&b[1..]),
            Some(2) => err.extend_from_slice(&b[1..]),
            Some(3) => status.extend_from_slice(&b[1..]),
            other => panic!("message on channel {other:?}"),
        }
    }
    assert!(
        tokio::time::Instant::now() < deadline,
        "the session did not end"
    );
    let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
    (s(out), s(err), s(status), first.unwrap_or_default())
}

/// A WebSocket upgrade of `url` offering `proto` is refused with a 400.
async fn websocket_refused(url: &str, proto: &str) {
    let req = websocket_request(url, proto);
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected a 400, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_over_websocket_as_kubectl_sends_it() {
    let _g = lock().await;
    let c = Cri::start();
    let (mut rt, _) = c.clients().await;
    c.pull().await;
    let (pod, _, ctr) = pod_with_a_sleeper(&c, "ws").await;
    let exec = |cmd: &str, stdin: bool, tty: bool| cri::ExecRequest {
        container_id: ctr.clone(),
        cmd: ["sh", "-c", cmd].iter().map(|s| s.to_string()).collect(),
        stdin,
        stdout: true,
        stderr: !tty,
        tty,
    };
    // v5: input, then the close signal of stdin ([255, 0]): `cat` sees its end.
    let url = rt
        .exec(exec(
            "read x; echo got:$x; echo to-stderr >&2; cat; exit 5",
            true,
            false,
        ))
        .await
        .unwrap()
        .into_inner()
        .url;
    let (out, err, status, first) = websocket_session(
        &url,
        "v5.channel.k8s.io",
        vec![b"\x00hello\nmore\n".to_vec(), vec![255, 0]],
    )
    .await;
    assert_eq!(
        first,
        [1],
        "the session starts with an empty stdout message"
    );
    assert_eq!(out, "got:hello\nmore\n");
    assert_eq!(err, "to-stderr\n");
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["reason"], "NonZeroExitCode");
    assert_eq!(st["details"]["causes"][0]["message"], "5");

    // v4 with a terminal, resized on channel 4.
    let url = rt
        .exec(exec("sleep 1; stty size", true, true))
        .await
        .unwrap()
        .into_inner()
        .url;
    let (out, _, status, _) = websocket_session(
        &url,
        "v4.channel.k8s.io",
        vec![[&[4u8][..], br#"{"Width":100,"Height":40}"#].concat()],
    )
    .await;
    assert!(out.contains("40 100"), "{out:?}");
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["status"], "Success");

    // A subprotocol the server does not speak is refused before the upgrade.
    let url = rt
        .exec(exec("true", false, false))
        .await
        .unwrap()
        .into_inner()
        .url;
    websocket_refused(&url, "v9.bogus.k8s.io").await;
    // Port-forward is SPDY's only: a WebSocket asking for it is refused the same way.
    let url = rt
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![80],
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    websocket_refused(&url, "v4.channel.k8s.io").await;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}
