//! Races (#14): 8 workers hammer one running container for 30 s with
//! `kill`, `kill --all`, `delete` (which must refuse a running container),
//! `exec`, `update`, `pause` (then `resume` by the same worker), `resume`,
//! `state` and `list`; and 8 workers
//! `create` the same ID at once, round after round. Every command either works
//! or fails with one error line in runc's words; none panics or hangs; the
//! container is never lost and is never reported as anything but running or
//! paused; no zombie is left in it, and `delete --force` then leaves nothing.
//! The emulated cgroup v2 VM (`RUNVZ_TEST_LIGHT=1`) runs 10 s.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runtime_tests::*;
use serde_json::json;

const WORKERS: usize = 8;

fn hammer_time() -> Duration {
    Duration::from_secs(if light_mode() { 10 } else { 30 })
}

/// The failures a command may meet while others act on the same container,
/// by operation: anything else is a defect.
fn acceptable_failure(op: &str, stderr: &str) -> bool {
    let allowed: &[&str] = match op {
        // Refused while another worker has it paused.
        "exec" => &["cannot exec in a paused container"],
        "pause" => &["container not running"],
        "resume" => &["container not paused"],
        // Never allowed to delete a running or paused container.
        "delete" => &["that is not stopped"],
        _ => &[],
    };
    allowed.iter().any(|a| stderr.contains(a))
}

#[derive(Default)]
struct Tally {
    ok: BTreeMap<&'static str, usize>,
    refused: BTreeMap<&'static str, usize>,
    defects: Vec<String>,
}

/// Processes in the cgroup that are zombies.
fn zombies_in(cg: &str) -> Vec<String> {
    let mut found = Vec::new();
    for file in Cgroup::new(cg).procs_files() {
        for pid in Cgroup::procs_in(&file) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains("Z ("))
            {
                found.push(format!("{pid}"));
            }
        }
    }
    found
}

#[test]
fn eight_workers_on_one_container() {
    let c = Ctx::new("race", &["sleep", "100000"]);
    c.run_detached();
    let init = c.pid();
    let tally = Mutex::new(Tally::default());
    let deadline = Instant::now() + hammer_time();
    std::thread::scope(|s| {
        for worker in 0..WORKERS {
            let (c, tally) = (&c, &tally);
            s.spawn(move || {
                let mut n = worker;
                while Instant::now() < deadline {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let limit = (100 + n % 900).to_string();
                    let ops: [(&'static str, Vec<&str>); 9] = [
                        ("state", vec!["state", &c.id]),
                        ("list", vec!["list", "--format", "json"]),
                        ("kill", vec!["kill", &c.id, "CONT"]),
                        ("kill --all", vec!["kill", "--all", &c.id, "CONT"]),
                        ("delete", vec!["delete", &c.id]),
                        ("exec", vec!["exec", &c.id, "true"]),
                        ("update", vec!["update", "--pids-limit", &limit, &c.id]),
                        ("pause", vec!["pause", &c.id]),
                        ("resume", vec!["resume", &c.id]),
                    ];
                    let (op, args) = &ops[(n >> 16) % ops.len()];
                    let out = c.rt.cmd_timeout(args, Duration::from_secs(60));
                    // A worker that paused resumes soon after: an exec that
                    // passed its check just before the pause waits in the
                    // frozen cgroup until then (as under runc).
                    let resumed = (*op == "pause" && out.success()).then(|| {
                        std::thread::sleep(Duration::from_millis(20));
                        c.rt.cmd_timeout(&["resume", &c.id], Duration::from_secs(60))
                    });
                    let mut t = tally.lock().unwrap();
                    if let Some(resumed) = resumed {
                        // kill --all thaws a paused container on its way out.
                        if !resumed.success() && !acceptable_failure("resume", &resumed.stderr) {
                            t.defects
                                .push(format!("resume failed: {}", resumed.stderr.trim()));
                        }
                    }
                    if out.stderr.contains("panicked") {
                        t.defects.push(format!("{op} panicked: {}", out.stderr));
                    } else if out.success() {
                        *t.ok.entry(op).or_default() += 1;
                        if *op == "state" {
                            let status = out.json()["status"].clone();
                            if status != json!("running") && status != json!("paused") {
                                t.defects.push(format!("state said {status}"));
                            }
                        }
                    } else if acceptable_failure(op, &out.stderr)
                        && out.stderr.trim().lines().count() == 1
                    {
                        *t.refused.entry(op).or_default() += 1;
                    } else {
                        t.defects
                            .push(format!("{op} failed: {}", out.stderr.trim()));
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    let ran: usize = t.ok.values().sum::<usize>() + t.refused.values().sum::<usize>();
    report(&format!(
        "8 workers, {:?}: {} commands ({} defects); done {:?}; refused as runc would {:?}",
        hammer_time(),
        ran + t.defects.len(),
        t.defects.len(),
        t.ok,
        t.refused
    ));
    assert!(
        t.defects.is_empty(),
        "defects:\n  {}",
        t.defects.join("\n  ")
    );
    // Not lost: the same init, running once resumed, still working.
    if c.status().as_deref() == Some("paused") {
        c.cmd(&["resume", &c.id]).ok();
    }
    assert_eq!(c.status().as_deref(), Some("running"));
    assert_eq!(c.pid(), init, "the init changed");
    c.cmd(&["exec", &c.id, "true"]).ok();
    let zombies = zombies_in(&c.cg);
    assert!(zombies.is_empty(), "zombies in the container: {zombies:?}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// 8 workers `create` the same ID at once, round after round: exactly one
/// wins each round, the others fail with one error line, and the winner is a
/// working container that cleans up fully.
#[test]
fn eight_creates_of_the_same_id() {
    let rounds = if light_mode() { 3 } else { 10 };
    let mut c = Ctx::new("race-cr", &["sleep", "100000"]);
    for round in 0..rounds {
        let id = unique_id("samecr");
        let cg = cgroups_path_for(&id);
        c.bundle.cgroups_path(&cg);
        c.bundle.save();
        let _guard = c.rt.guard(&id, Some(&cg));
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let (c, id) = (&c, &id);
                    s.spawn(move || c.rt.cmd(&["create", "--bundle", c.bundle.path_str(), id]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = outs.iter().filter(|o| o.success()).count();
        assert_eq!(
            winners, 1,
            "round {round}: {winners} creates of {id} succeeded"
        );
        for out in outs.iter().filter(|o| !o.success()) {
            let text = out.stderr.trim();
            assert!(
                text.lines().count() == 1 && text.contains("error") && text.contains("exists"),
                "round {round}: a losing create said {text:?}"
            );
        }
        assert_eq!(c.rt.status(&id).as_deref(), Some("created"));
        c.rt.cmd(&["start", &id]).ok();
        c.rt.wait_status(&id, "running", Duration::from_secs(10));
        c.rt.cmd(&["delete", "--force", &id]).ok();
        assert_no_leak(&c.rt, &id, &cg);
    }
    report(&format!(
        "{rounds} rounds of {WORKERS} creates of one ID: exactly one won each"
    ));
}
