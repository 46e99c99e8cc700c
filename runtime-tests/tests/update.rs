//! `update` and `linux.resources` → the cgroup files: on cgroup v1 the
//! per-controller files (memory.limit_in_bytes, cpu.shares, …), on cgroup v2
//! the unified ones (memory.max, cpu.weight, cpu.max, …). Each assertion names
//! a logical [`Setting`]; `Cgroup::assert` checks the exact value each version
//! must hold.

use runtime_tests::Setting::*;
use runtime_tests::*;
use serde_json::json;
use std::fs;

fn running(prefix: &str) -> Ctx {
    let c = Ctx::new(prefix, &["sleep", "100"]);
    c.run_detached();
    c
}

const MIB: u64 = 1024 * 1024;

#[test]
fn update_memory() {
    let c = running("um");
    let cg = c.cgroup();
    // No limit in the spec: v1 shows LONG_MAX (page-aligned), v2 "max".
    cg.assert(&MemoryLimit(None));
    c.cmd(&["update", "--memory", "100M", &c.id]).ok();
    // v1 memory.limit_in_bytes / v2 memory.max = 104857600
    cg.assert(&MemoryLimit(Some(100 * MIB)));
    c.cmd(&["update", "--memory", "209715200", &c.id]).ok();
    cg.assert(&MemoryLimit(Some(209715200)));
    // -1 lifts the limit again.
    c.cmd(&["update", "--memory", "-1", &c.id]).ok();
    cg.assert(&MemoryLimit(None));
}

#[test]
fn update_memory_swap_and_reservation() {
    let c = running("uw");
    let cg = c.cgroup();
    let swap_file = match cg.version() {
        CgroupVersion::V1 => cg.file("memory", "memory.memsw.limit_in_bytes"),
        CgroupVersion::V2 => cg.file("memory", "memory.swap.max"),
    };
    if !swap_file.exists() {
        skip(&format!(
            "no {} on this kernel (swap accounting disabled)",
            swap_file.display()
        ));
        return;
    }
    c.cmd(&[
        "update",
        "--memory",
        "100M",
        "--memory-swap",
        "200M",
        "--memory-reservation",
        "50M",
        &c.id,
    ])
    .ok();
    // v1: memory.memsw.limit_in_bytes = 200M (memory + swap);
    // v2: memory.swap.max = 200M - 100M (swap alone).
    // v1 memory.soft_limit_in_bytes / v2 memory.low = 50M.
    cg.assert_all(&[
        MemoryLimit(Some(100 * MIB)),
        MemorySwap {
            memory: 100 * MIB,
            swap: Some(200 * MIB),
        },
        MemoryReservation(50 * MIB),
    ]);
    // -1: unlimited swap; the memory limit stays.
    c.cmd(&["update", "--memory-swap", "-1", &c.id]).ok();
    cg.assert_all(&[
        MemoryLimit(Some(100 * MIB)),
        MemorySwap {
            memory: 100 * MIB,
            swap: None,
        },
    ]);
}

#[test]
fn update_pids_limit() {
    let c = running("up");
    let cg = c.cgroup();
    cg.assert(&PidsLimit(None));
    c.cmd(&["update", "--pids-limit", "50", &c.id]).ok();
    cg.assert(&PidsLimit(Some(50)));
    // -1 means unlimited: "max" on both versions.
    c.cmd(&["update", "--pids-limit", "-1", &c.id]).ok();
    cg.assert(&PidsLimit(None));
}

#[test]
fn update_cpu_quota_and_period() {
    let c = running("uq");
    let cg = c.cgroup();
    // Nothing set: no quota, the kernel's 100 ms period.
    cg.assert(&CpuMax {
        quota: None,
        period: 100000,
    });
    c.cmd(&[
        "update",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        &c.id,
    ])
    .ok();
    // v1 cpu.cfs_quota_us = 50000, cpu.cfs_period_us = 200000;
    // v2 cpu.max = "50000 200000".
    cg.assert(&CpuMax {
        quota: Some(50000),
        period: 200000,
    });
    c.cmd(&[
        "update",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        &c.id,
    ])
    .ok();
    cg.assert(&CpuMax {
        quota: Some(50000),
        period: 100000,
    });
}

#[test]
fn update_cpu_share() {
    let c = running("us");
    let cg = c.cgroup();
    // Never set: the kernel default (v1 shares 1024, v2 weight 100).
    cg.assert(&CpuShares(None));
    c.cmd(&["update", "--cpu-share", "512", &c.id]).ok();
    // v1 cpu.shares = 512; v2 cpu.weight = 59 (runc 1.1.5: 20).
    assert_eq!(
        runc_shares_to_weight(512),
        if runtime_is_runc() { 20 } else { 59 }
    );
    cg.assert(&CpuShares(Some(512)));
}

#[test]
fn update_resources_from_file() {
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
    c.cgroup().assert_all(&[
        MemoryLimit(Some(209715200)),
        PidsLimit(Some(77)),
        CpuShares(Some(256)),
        CpuMax {
            quota: Some(20000),
            period: 100000,
        },
    ]);
}

#[test]
fn update_resources_from_stdin() {
    // What the containerd shim does: `update --resources - ID`.
    let c = running("ui");
    c.cmd(&["update", "--cpu-share", "300", &c.id]).ok();
    let input = json!({"memory": {"limit": 314572800}, "pids": {"limit": 88}}).to_string();
    c.rt.cmd_stdin(&["update", "--resources", "-", &c.id], input.as_bytes())
        .ok();
    let cg = c.cgroup();
    cg.assert_all(&[MemoryLimit(Some(314572800)), PidsLimit(Some(88))]);
    // Fields absent from the JSON are left alone.
    cg.assert(&CpuShares(Some(300)));
}

#[test]
fn update_rejects_bad_input() {
    let c = running("ub");
    c.cmd(&["update", "--memory", "100M", &c.id]).ok();
    c.cmd(&["update", "--memory", "bogus", &c.id]).failed();
    c.rt.cmd_stdin(&["update", "--resources", "-", &c.id], b"{bad")
        .failed();
    // Nothing changed.
    c.cgroup().assert(&MemoryLimit(Some(100 * MIB)));
}

#[test]
fn create_applies_linux_resources() {
    let mut c = Ctx::new("ur", &["sleep", "100"]);
    c.bundle.resources(json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 134217728},
        "pids": {"limit": 42},
        "cpu": {"shares": 700, "quota": 30000, "period": 100000}
    }));
    c.create();
    let cg = c.cgroup();
    cg.assert_all(&[
        MemoryLimit(Some(134217728)),
        PidsLimit(Some(42)),
        CpuShares(Some(700)),
        CpuMax {
            quota: Some(30000),
            period: 100000,
        },
    ]);
    // The pids limit is enforced: 42 processes at most.
    c.cmd(&["start", &c.id]).ok();
    let o = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null; echo started",
    ]);
    let current = cg.pids_current();
    assert!(
        current <= 42,
        "pids.current {current} above the limit 42 ({o})"
    );
    assert!(
        current >= 30,
        "the fork loop did not run? pids.current {current} ({o})"
    );
}
