//! Concurrent commands on one state root.

use runtime_tests::*;
use std::sync::Barrier;
use std::time::Duration;

/// Two `create`s of the same ID at the same instant: exactly one may succeed,
/// and the survivor must be a working container that cleans up fully.
///
/// runc 1.1.5 is racy here: in roughly one try in six the loser's cleanup
/// removes the winner's state directory (the winner reported success, but
/// `state` then says "container does not exist" and its `runc init` process and
/// cgroup leak), and now and then both creates fail. When the runtime under
/// test reports itself as runc, such a round is printed and tolerated (the
/// "at most one succeeds" part is still asserted); any other runtime must get
/// every round right.
#[test]
fn concurrent_create_of_the_same_id() {
    let tolerate = runtime_reports_runc();
    let mut runc_races = 0;
    for round in 0..5 {
        let c = Ctx::new("cc", &["sleep", "100"]);
        let barrier = Barrier::new(2);
        let create = || {
            barrier.wait();
            c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id])
        };
        let (a, b) = std::thread::scope(|s| {
            let ha = s.spawn(create);
            let hb = s.spawn(create);
            (ha.join().unwrap(), hb.join().unwrap())
        });
        let wins = [&a, &b].iter().filter(|o| o.success()).count();
        assert!(
            wins <= 1,
            "round {round}: both concurrent creates succeeded:\n{a}\n{b}"
        );
        for o in [&a, &b] {
            if !o.success() {
                o.failed();
            }
        }
        let status = c.status();
        if wins != 1 || status.as_deref() != Some("created") {
            let msg = format!(
                "round {round}: {wins} create(s) succeeded, then status {status:?}\n{a}\n{b}"
            );
            if tolerate {
                report(&format!(
                    "note: runc's known concurrent-create race hit: {msg}"
                ));
                runc_races += 1;
                continue; // the guard kills whatever leaked
            }
            panic!("{msg}");
        }
        // The survivor works.
        c.cmd(&["start", &c.id]).ok();
        c.wait_status("running");
        let e = c.cmd(&["exec", &c.id, "echo", "survivor"]);
        e.ok();
        assert_eq!(e.stdout, "survivor\n");
        let procs = c.cmd(&["ps", "--format", "json", &c.id]).json();
        assert_eq!(
            procs.as_array().map(Vec::len),
            Some(1),
            "round {round}: exactly the init should run: {procs}"
        );
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
    if runc_races > 0 {
        report(&format!(
            "note: runc lost {runc_races} of 5 rounds to its create race (tolerated for runc only)"
        ));
    }
}

/// Several containers created and started at once in one root all work.
#[test]
fn concurrent_creates_of_different_ids() {
    let rt = Runtime::new();
    let n = 6;
    let mut items = Vec::new();
    for _ in 0..n {
        let id = unique_id("cd");
        let cg = cgroups_path_for(&id);
        let mut b = Bundle::new();
        b.args(&["sleep", "100"]).cgroups_path(&cg);
        let g = rt.guard(&id, Some(&cg));
        items.push((id, cg, b, g));
    }
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        for (id, _, b, _) in &items {
            let (rt, barrier) = (&rt, &barrier);
            s.spawn(move || {
                barrier.wait();
                rt.cmd(&["create", "--bundle", b.path_str(), id]).ok();
                rt.cmd(&["start", id]).ok();
                rt.wait_status(id, "running", Duration::from_secs(10));
            });
        }
    });
    let listed = rt.cmd(&["list", "-q"]);
    listed.ok();
    let mut ids: Vec<&str> = listed.stdout.lines().collect();
    ids.sort();
    let mut want: Vec<&str> = items.iter().map(|i| i.0.as_str()).collect();
    want.sort();
    assert_eq!(ids, want);
    std::thread::scope(|s| {
        for (id, ..) in &items {
            let rt = &rt;
            s.spawn(move || rt.cmd(&["delete", "--force", id]).ok().code);
        }
    });
    for (id, cg, ..) in &items {
        assert_no_leak(&rt, id, cg);
    }
}
