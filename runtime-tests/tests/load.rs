//! Load (#14): N containers running at once, half plain (`sleep`) and half
//! system containers (busybox init, their own ID range, idmapped rootfs and
//! /proc view server), started by 8 parallel workers in one state root; then
//! `list` and `beancounters` over all of them, then all deleted by 8 workers.
//! Reported: wall time of each phase, host memory per container at the peak,
//! and what is left behind (asserted to be nothing).
//!
//! N is 200 in `make test` (40 in the emulated VM, `RUNVZ_TEST_LIGHT=1`) and
//! `RUNVZ_LOAD_CONTAINERS` when set: `make bench` runs 1,000.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime_tests::*;
use serde_json::{Value, json};

const WORKERS: usize = 8;

fn containers() -> usize {
    std::env::var("RUNVZ_LOAD_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if light_mode() { 40 } else { 200 })
}

/// Host memory in use (MemTotal − MemAvailable), KiB.
fn host_memory_used_kib() -> u64 {
    let info = fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("MemTotal:") - field("MemAvailable:")
}

/// Resident and proportional memory of the /proc view server's supervisor
/// and worker, KiB: `supervisor RSS/PSS, worker RSS/PSS`.
fn view_server_memory() -> String {
    let mut parts = Vec::new();
    for line in processes_matching(Some("internal-procview"), None) {
        let Some(pid) = line
            .split(':')
            .next()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let role = if line.contains("--worker") {
            "worker"
        } else {
            "supervisor"
        };
        parts.push(format!("{role} {}/{} KiB", field("Rss:"), field("Pss:")));
    }
    parts.sort();
    parts.join(", ")
}

/// One container of the load: a bundle of its own (just config.json) on a
/// shared read-only rootfs.
struct Member {
    id: String,
    cg: String,
    bundle: PathBuf,
}

/// Deletes every member (and its cgroup) on drop, also when the test fails.
struct Members<'a> {
    rt: &'a Runtime,
    list: Vec<Member>,
}

impl Drop for Members<'_> {
    fn drop(&mut self) {
        for m in &self.list {
            drop(self.rt.guard(&m.id, Some(&m.cg)));
        }
    }
}

fn config(rootfs: &Path, args: &[&str], cg: &str, system: bool) -> Value {
    let mut spec = default_spec();
    spec["root"] = json!({"path": rootfs, "readonly": true});
    spec["process"]["args"] = json!(args);
    spec["process"]["terminal"] = json!(false);
    spec["linux"]["cgroupsPath"] = json!(cg);
    if system {
        spec["annotations"] = json!({"runvz.ubc.numproc": "200:200"});
    }
    spec
}

/// Runs `f` over `items` on 8 threads; returns the failures.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<(), String> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(item) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

/// Runs the command `args` gives for each member on 8 threads; returns the
/// wall time and the failures.
fn on_all(
    rt: &Runtime,
    members: &[Member],
    args: impl Fn(&Member) -> Vec<String> + Sync,
) -> (Duration, Vec<String>) {
    let start = Instant::now();
    let failures = in_parallel(members, |m| {
        let args = args(m);
        let out = rt.cmd_timeout(&args, Duration::from_secs(120));
        if out.success() {
            Ok(())
        } else {
            Err(format!("{} {}: {}", args[0], m.id, out.stderr.trim()))
        }
    });
    (start.elapsed(), failures)
}

#[test]
fn many_plain_and_system_containers_at_once() {
    if runtime_is_runc() {
        skip("half of the load is system containers, which are runvz's");
        return;
    }
    let n = containers();
    let rt = Runtime::new();
    // The two shared root filesystems: plain, and busybox init for the
    // system half.
    let plain = Bundle::new();
    let system = Bundle::new();
    let init_root = system.rootfs_path();
    link_busybox_init(&init_root, Some("::respawn:/bin/sleep 100000\n"));

    let bundles = TempDir::new("load");
    let mut members = Members {
        rt: &rt,
        list: Vec::new(),
    };
    for i in 0..n {
        let is_system = i % 2 == 1;
        let id = unique_id(if is_system { "ls" } else { "lp" });
        let cg = cgroups_path_for(&id);
        let bundle = bundles.path().join(&id);
        fs::create_dir(&bundle).unwrap();
        let spec = if is_system {
            config(&init_root, &["/sbin/init"], &cg, true)
        } else {
            config(&plain.rootfs_path(), &["sleep", "100000"], &cg, false)
        };
        fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        members.list.push(Member { id, cg, bundle });
    }

    let memory_before = host_memory_used_kib();
    let (started_in, failures) = on_all(&rt, &members.list, |m| {
        let bundle = m.bundle.display().to_string();
        vec![
            "run".into(),
            "-d".into(),
            "--bundle".into(),
            bundle,
            m.id.clone(),
        ]
    });
    assert!(
        failures.is_empty(),
        "{} of {n} failed to start:\n  {}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n  ")
    );

    // All running, as `list` says, and each one's own processes are there.
    let start = Instant::now();
    let list = rt.cmd_timeout(&["list", "--format", "json"], Duration::from_secs(120));
    list.ok();
    let listed_in = start.elapsed();
    let running = list
        .json()
        .as_array()
        .map(|a| a.iter().filter(|e| e["status"] == json!("running")).count())
        .unwrap_or(0);
    assert_eq!(running, n, "list shows {running} of {n} running");
    // Every system container's init has made its respawned child by now.
    let settled = wait_until(Duration::from_secs(60), || {
        members
            .list
            .iter()
            .skip(1)
            .step_by(2)
            .all(|m| Cgroup::new(&m.cg).pids_current() >= 2)
    });
    assert!(
        settled,
        "not every system container's init started its child"
    );
    let memory_peak = host_memory_used_kib();

    // The one /proc view server serves every system container: each one's
    // meminfo read through its directory on the host, and the server's
    // memory with all of them.
    let view = if Path::new("/dev/fuse").exists() {
        let start = Instant::now();
        let mut read = 0;
        for m in members.list.iter().skip(1).step_by(2) {
            let file = format!(
                "/run/runvz.procview/{}/meminfo",
                runvz_key_name(&runvz_key(&rt, &m.id))
            );
            let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(text.starts_with("MemTotal:"), "{file}: {text}");
            read += 1;
        }
        let per_read = start.elapsed() / read.max(1);
        format!(
            "; /proc view server: {read} containers, a meminfo read {per_read:.0?}, resident/proportional: {}",
            view_server_memory()
        )
    } else {
        String::new()
    };

    let start = Instant::now();
    let bc = rt.cmd_timeout(
        &["beancounters", "--format", "json"],
        Duration::from_secs(120),
    );
    bc.ok();
    let counted_in = start.elapsed();
    let reports = bc.json();
    let reported = reports.as_array().map_or(0, Vec::len);
    assert_eq!(reported, n, "beancounters reported {reported} of {n}");

    let (deleted_in, failures) = on_all(&rt, &members.list, |m| {
        vec!["delete".into(), "--force".into(), m.id.clone()]
    });
    assert!(
        failures.is_empty(),
        "deletes failed:\n  {}",
        failures.join("\n  ")
    );

    let mut left = Vec::new();
    for m in &members.list {
        wait_until(Duration::from_secs(5), || {
            leaks(&rt, &m.id, &m.cg).is_empty()
        });
        left.extend(leaks(&rt, &m.id, &m.cg));
    }
    let per_container = memory_peak.saturating_sub(memory_before) / n as u64;
    report(&format!(
        "load: {n} containers ({} plain, {} system) by {WORKERS} workers: started in {started_in:.1?}, \
         list {listed_in:.1?}, beancounters {counted_in:.1?}, deleted in {deleted_in:.1?}; \
         host memory {per_container} KiB per container; {} left behind{view}",
        n - n / 2,
        n / 2,
        left.len()
    ));
    assert!(left.is_empty(), "left behind:\n  {}", left.join("\n  "));
}
