//! Task stats through the supervisor's gRPC API, decoded as containerd decodes them
//! (io.containerd.cgroups.v1/v2.Metrics), for berth-shim and containerd's runc shim.

mod supervisor_support;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::Message;
use supervisor_support::*;

fn stats_of_a_running_task(runtime: pb::Runtime, id: &str) {
    let sv = Supervisor::start();
    sv.create_container(sv.container(id, "sleep 100 & sleep 100", runtime));
    let mut t = sv.tasks();
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stats = sv
        .block(t.stats(pb::StatsRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .stats
        .expect("stats present");
    if stats.type_url.ends_with("cgroups.v1.Metrics") {
        let m = v1::Metrics::parse_from_bytes(&stats.value).unwrap();
        assert_eq!(m.pids.current, 2, "{m:?}");
        assert!(m.memory.usage.usage > 0);
        assert!(m.cpu.usage.total > 0);
    } else {
        assert!(
            stats.type_url.ends_with("cgroups.v2.Metrics"),
            "{}",
            stats.type_url
        );
        let m = v2::Metrics::parse_from_bytes(&stats.value).unwrap();
        assert_eq!(m.pids.current, 2);
        assert!(m.memory.usage > 0);
    }
    sv.cleanup();
}

#[test]
fn berth_shim_reports_cgroup_metrics() {
    stats_of_a_running_task(berth(), "stats-berth");
}

#[test]
fn runc_v2_shim_reports_the_same_kind_of_metrics() {
    stats_of_a_running_task(runc_v2(), "stats-runc");
}
