//! `update` and `linux.resources` → the cgroup v1 files.

use runtime_tests::*;
use serde_json::json;
use std::fs;

fn running(prefix: &str) -> Ctx {
    let c = Ctx::new(prefix, &["sleep", "100"]);
    c.run_detached();
    c
}

#[track_caller]
fn cg(c: &Ctx, ctrl: &str, file: &str) -> String {
    c.cgroup(ctrl, file)
        .unwrap_or_else(|| panic!("cannot read {ctrl}/{}/{file}", c.cg))
}

#[test]
fn update_memory() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("um");
    c.cmd(&["update", "--memory", "100M", &c.id]).ok();
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "104857600");
    c.cmd(&["update", "--memory", "209715200", &c.id]).ok();
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "209715200");
}

#[test]
fn update_pids_limit() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("up");
    assert_eq!(cg(&c, "pids", "pids.max"), "max");
    c.cmd(&["update", "--pids-limit", "50", &c.id]).ok();
    assert_eq!(cg(&c, "pids", "pids.max"), "50");
    // -1 means unlimited.
    c.cmd(&["update", "--pids-limit", "-1", &c.id]).ok();
    assert_eq!(cg(&c, "pids", "pids.max"), "max");
}

#[test]
fn update_cpu_quota_and_period() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("uq");
    c.cmd(&[
        "update",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        &c.id,
    ])
    .ok();
    assert_eq!(cg(&c, "cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_quota_us"), "50000");
}

#[test]
fn update_cpu_share() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("us");
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "1024");
    c.cmd(&["update", "--cpu-share", "512", &c.id]).ok();
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "512");
}

#[test]
fn update_resources_from_file() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("uf");
    let f = c.bundle.path().join("resources.json");
    fs::write(
        &f,
        json!({
            "memory": {"limit": 209715200},
            "pids": {"limit": 77},
            "cpu": {"shares": 256, "quota": 20000, "period": 100000}
        })
        .to_string(),
    )
    .unwrap();
    c.cmd(&["update", "--resources", f.to_str().unwrap(), &c.id])
        .ok();
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "209715200");
    assert_eq!(cg(&c, "pids", "pids.max"), "77");
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "256");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_period_us"), "100000");
}

#[test]
fn update_resources_from_stdin() {
    if skip_unless_cgroup_v1() {
        return;
    }
    // What the containerd shim does: `update --resources - ID`.
    let c = running("ui");
    c.cmd(&["update", "--cpu-share", "300", &c.id]).ok();
    let input = json!({"memory": {"limit": 314572800}, "pids": {"limit": 88}}).to_string();
    c.rt.cmd_stdin(&["update", "--resources", "-", &c.id], input.as_bytes())
        .ok();
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "314572800");
    assert_eq!(cg(&c, "pids", "pids.max"), "88");
    // Fields absent from the JSON are left alone.
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "300");
}

#[test]
fn update_rejects_bad_input() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let c = running("ub");
    c.cmd(&["update", "--memory", "100M", &c.id]).ok();
    c.cmd(&["update", "--memory", "bogus", &c.id]).failed();
    c.rt.cmd_stdin(&["update", "--resources", "-", &c.id], b"{bad")
        .failed();
    // Nothing changed.
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "104857600");
}

#[test]
fn create_applies_linux_resources() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let mut c = Ctx::new("ur", &["sleep", "100"]);
    c.bundle.resources(json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 134217728},
        "pids": {"limit": 42},
        "cpu": {"shares": 700, "quota": 30000, "period": 100000}
    }));
    c.create();
    assert_eq!(cg(&c, "memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(cg(&c, "pids", "pids.max"), "42");
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "700");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_quota_us"), "30000");
    // The pids limit is enforced: 42 processes at most.
    c.cmd(&["start", &c.id]).ok();
    let o = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null; echo started",
    ]);
    let current: u32 = cg(&c, "pids", "pids.current").parse().unwrap();
    assert!(
        current <= 42,
        "pids.current {current} above the limit 42 ({o})"
    );
    assert!(
        current >= 30,
        "the fork loop did not run? pids.current {current} ({o})"
    );
}
