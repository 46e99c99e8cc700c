//! Stress: 4 worker threads run create → start → kill → delete for 200
//! containers (50 each) in one state root, then nothing may be left: no state
//! dirs, cgroups (in any v1 hierarchy, or the v2 tree), processes or mounts.
//! With `RUNVZ_TEST_LIGHT=1` (the emulated cgroup v2 VM, about 10x slower) it
//! runs 40 (10 each); the count used is printed.

use runtime_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WORKERS: usize = 4;
const PER_WORKER: usize = 50;
const PER_WORKER_LIGHT: usize = 10;

/// Last-resort cleanup, also on panic: force-delete whatever is still in the
/// root, kill what is left in the cgroup parent and remove it.
struct Cleanup {
    rt_bin: PathBuf,
    root: PathBuf,
    cg_parent: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if id.starts_with('.') {
                    continue;
                }
                let mut c = std::process::Command::new(&self.rt_bin);
                c.arg("--root")
                    .arg(&self.root)
                    .args(["delete", "--force"])
                    .arg(&id);
                let _ = try_run_command(&mut c, None, Duration::from_secs(10));
            }
        }
        kill_cgroup(&self.cg_parent);
        remove_cgroup(&self.cg_parent);
    }
}

fn child_cgroups(parent: &str) -> Vec<String> {
    let mut v = Vec::new();
    for dir in cgroup_dirs_present(parent) {
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    v.push(e.path().display().to_string());
                }
            }
        }
    }
    v
}

#[test]
fn stress_create_start_kill_delete_4_workers() {
    let per_worker = if light_mode() {
        PER_WORKER_LIGHT
    } else {
        PER_WORKER
    };
    report(&format!(
        "stress: {} containers, {per_worker} per worker{} ({})",
        WORKERS * per_worker,
        if light_mode() {
            " (RUNVZ_TEST_LIGHT=1)"
        } else {
            ""
        },
        cgroup_version()
    ));
    let rt = Runtime::new();
    let tag = unique_id("st");
    let cg_parent = format!("{CGROUP_PARENT}/{tag}");
    let _cleanup = Cleanup {
        rt_bin: rt.bin.clone(),
        root: rt.root.clone(),
        cg_parent: cg_parent.clone(),
    };
    let timings: Mutex<BTreeMap<&'static str, Vec<Duration>>> = Mutex::new(BTreeMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let bundles: Vec<Bundle> = (0..WORKERS)
        .map(|_| {
            let mut b = Bundle::new();
            b.args(&["sleep", "100"]);
            b
        })
        .collect();

    let start = Instant::now();
    std::thread::scope(|s| {
        for (w, bundle) in bundles.iter().enumerate() {
            let (rt, timings, errors, tag, cg_parent) = (&rt, &timings, &errors, &tag, &cg_parent);
            s.spawn(move || {
                let mut bundle_cfg = bundle.config.clone();
                for n in 0..per_worker {
                    let id = format!("{tag}-w{w}-{n}");
                    bundle_cfg["linux"]["cgroupsPath"] = format!("{cg_parent}/{id}").into();
                    fs::write(
                        bundle.config_path(),
                        serde_json::to_string(&bundle_cfg).unwrap(),
                    )
                    .unwrap();
                    let step = |name: &'static str, args: &[&str]| -> Result<(), String> {
                        let o = rt.try_cmd(args, None, DEFAULT_TIMEOUT);
                        timings
                            .lock()
                            .unwrap()
                            .entry(name)
                            .or_default()
                            .push(o.elapsed);
                        if o.success() {
                            Ok(())
                        } else {
                            Err(format!("worker {w}, container {n}: {name} failed:\n{o}"))
                        }
                    };
                    let res = (|| {
                        step("create", &["create", "--bundle", bundle.path_str(), &id])?;
                        step("start", &["start", &id])?;
                        step("kill", &["kill", &id, "KILL"])?;
                        let t = Instant::now();
                        if !wait_until(Duration::from_secs(10), || {
                            rt.status(&id).as_deref() == Some("stopped")
                        }) {
                            return Err(format!("{id}: not stopped 10 s after kill"));
                        }
                        timings
                            .lock()
                            .unwrap()
                            .entry("wait-stopped")
                            .or_default()
                            .push(t.elapsed());
                        step("delete", &["delete", &id])
                    })();
                    if let Err(e) = res {
                        errors.lock().unwrap().push(e);
                        return; // stop this worker; the others go on
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let total = WORKERS * per_worker;
    report(&format!(
        "stress: {total} containers (create+start+kill+delete) with {WORKERS} workers in {elapsed:.2?}, \
         {:.1} ms per container",
        elapsed.as_secs_f64() * 1000.0 / total as f64
    ));
    for (name, mut v) in timings.into_inner().unwrap() {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        report(&format!(
            "  {name:>12}: n={:3} min {:7.1} ms  median {:7.1} ms  p95 {:7.1} ms  max {:7.1} ms",
            v.len(),
            ms(v[0]),
            ms(v[v.len() / 2]),
            ms(v[v.len() * 95 / 100]),
            ms(v[v.len() - 1])
        ));
    }
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} worker(s) failed:\n{}",
        errors.len(),
        errors.join("\n")
    );

    // Nothing may be left.
    let mut leaked: Vec<String> = Vec::new();
    let ok = wait_until(Duration::from_secs(10), || {
        leaked.clear();
        for e in root_entries(&rt) {
            leaked.push(format!("state dir {e}"));
        }
        for p in paths_mentioning(&rt.root, &tag) {
            leaked.push(format!("{} under the root", p.display()));
        }
        for c in child_cgroups(&cg_parent) {
            leaked.push(format!("cgroup {c}"));
        }
        for p in processes_matching(Some(&tag), Some(&cg_parent)) {
            leaked.push(format!("process {p}"));
        }
        for m in host_mounts_matching(&tag) {
            leaked.push(format!("mount {m}"));
        }
        for b in &bundles {
            for m in host_mounts_matching(b.path_str()) {
                leaked.push(format!("mount {m}"));
            }
        }
        leaked.is_empty()
    });
    assert!(
        ok,
        "leaked after the stress run:\n  {}",
        leaked.join("\n  ")
    );
}
