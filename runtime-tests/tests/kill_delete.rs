//! `kill --all` and `delete` (with and without --force) in every state. The
//! container's processes are found through its cgroup (v1 `cgroup.procs` of
//! each hierarchy, v2 the one `cgroup.procs`).

use runtime_tests::*;
use std::fs;
use std::time::Duration;

#[test]
fn kill_all_kills_every_process() {
    let c = Ctx::new("ka", &["sleep", "100"]);
    c.run_detached();
    let init = c.pid();
    let mut pids = vec![init];
    for n in 0..2 {
        let pf = c.bundle.path().join(format!("e{n}.pid"));
        c.cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pf.to_str().unwrap(),
            &c.id,
            "sleep",
            "100",
        ])
        .ok();
        pids.push(fs::read_to_string(&pf).unwrap().trim().parse().unwrap());
    }
    let cg = c.cgroup();
    for p in &pids {
        assert!(process_alive(*p));
        // What `kill --all` walks: the container's cgroup.
        cg.assert_holds_pid(*p);
    }
    c.cmd(&["kill", "--all", &c.id, "KILL"]).ok();
    // Reaping of exec'd processes can be slow on this host (their parent is
    // the host's PID 1): allow a few seconds.
    c.wait_status("stopped");
    for p in &pids {
        assert!(
            wait_until(Duration::from_secs(5), || !process_alive(*p)),
            "pid {p} survived kill --all"
        );
    }
    // The cgroup is empty (it stays until delete).
    for f in cg.procs_files() {
        assert!(
            wait_until(Duration::from_secs(5), || Cgroup::procs_in(&f).is_empty()),
            "{} ({}) still lists {:?} after kill --all",
            f.display(),
            cg.version(),
            Cgroup::procs_in(&f)
        );
    }
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn delete_force_running() {
    let c = Ctx::new("dr", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    c.cmd(&["delete", "--force", &c.id]).ok();
    assert!(!c.rt.state_dir(&c.id).exists());
    c.assert_no_leak();
    assert!(!process_alive(pid));
}

#[test]
fn delete_force_running_with_exec_processes() {
    let c = Ctx::new("de", &["sleep", "100"]);
    c.run_detached();
    let init = c.pid();
    let pf = c.bundle.path().join("e.pid");
    c.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &c.id,
        "sleep",
        "100",
    ])
    .ok();
    let exec_pid: i32 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert!(process_alive(init) && process_alive(exec_pid));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    assert!(!process_alive(init));
    assert!(wait_until(Duration::from_secs(5), || !process_alive(
        exec_pid
    )));
}

#[test]
fn delete_force_created() {
    let c = Ctx::new("dc", &["sleep", "100"]);
    c.create();
    let pid = c.pid();
    assert!(process_alive(pid));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
}

#[test]
fn delete_created_without_force() {
    // runc deletes a created (never started) container without --force.
    let c = Ctx::new("dn", &["sleep", "100"]);
    c.create();
    let pid = c.pid();
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
}

#[test]
fn delete_force_paused() {
    let c = Ctx::new("dp", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    c.cmd(&["pause", &c.id]).ok();
    // v1 freezer.state FROZEN; v2 cgroup.freeze 1, "frozen 1": delete --force
    // must thaw (or kill through cgroup.kill) to get rid of it.
    c.cgroup().assert(&Setting::Frozen(true));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    assert!(!process_alive(pid));
}

#[test]
fn delete_force_after_init_killed_from_outside() {
    let c = Ctx::new("dk", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    // SAFETY: kill(2) on the container's init.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(wait_until(Duration::from_secs(5), || !process_alive(pid)));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn delete_stopped_without_force() {
    let c = Ctx::new("ds", &["sh", "-c", "exit 0"]);
    c.create();
    c.cmd(&["start", &c.id]).ok();
    c.wait_status("stopped");
    let st = c.rt.state(&c.id).unwrap();
    assert_eq!(st["status"], "stopped");
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn delete_force_of_missing_id_succeeds() {
    // The containerd shim's cleanup runs `delete --force` after `delete`.
    let rt = Runtime::new();
    let id = unique_id("dm");
    let o = rt.cmd(&["delete", "--force", &id]);
    o.code_is(0);
    // Without --force it is an error.
    rt.cmd(&["delete", &id]).failed();
}
