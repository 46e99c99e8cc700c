//! Errors: each gives a non-zero exit and a message on stderr, leaves no state
//! dir, cgroup or process behind, and harms no existing container.

use runtime_tests::*;
use std::fs;

/// `create` must fail and leave nothing behind; `run` too.
#[track_caller]
fn create_and_run_fail_cleanly(c: &Ctx) {
    for verb in ["create", "run"] {
        let o = c.cmd(&[verb, "--bundle", c.bundle.path_str(), &c.id]);
        o.failed();
        c.assert_no_leak();
        assert!(
            root_entries(&c.rt).is_empty(),
            "{verb} left {:?} in the root",
            root_entries(&c.rt)
        );
    }
}

#[test]
fn malformed_config_json() {
    let c = Ctx::new("em", &["true"]);
    fs::write(c.bundle.config_path(), "{\"ociVersion\": \"1.0.2\", bad").unwrap();
    create_and_run_fail_cleanly(&c);
}

#[test]
fn config_json_of_the_wrong_shape() {
    let c = Ctx::new("ew", &["true"]);
    fs::write(c.bundle.config_path(), "[1, 2, 3]").unwrap();
    create_and_run_fail_cleanly(&c);
}

#[test]
fn missing_config_json() {
    let c = Ctx::new("ec", &["true"]);
    fs::remove_file(c.bundle.config_path()).unwrap();
    create_and_run_fail_cleanly(&c);
}

#[test]
fn missing_rootfs() {
    let c = Ctx::new("er", &["true"]);
    fs::remove_dir_all(c.bundle.rootfs_path()).unwrap();
    create_and_run_fail_cleanly(&c);
}

#[test]
fn missing_process_binary() {
    // Fails at create (runc checks the binary before create returns).
    let c = Ctx::new("eb", &["/no/such/binary"]);
    create_and_run_fail_cleanly(&c);
}

#[test]
fn missing_bundle_directory() {
    let c = Ctx::new("ed", &["true"]);
    let o = c.cmd(&["create", "--bundle", "/nonexistent/bundle/dir", &c.id]);
    o.failed();
    c.assert_no_leak();
}

#[test]
fn invalid_container_ids() {
    let long = "a".repeat(2000);
    for bad in ["", "..", ".", "a/b", "../escape", long.as_str()] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        let cg = cgroups_path_for(&unique_id("eid"));
        b.args(&["sleep", "100"]).cgroups_path(&cg);
        let _g = rt.guard(bad, Some(&cg));
        let o = rt.cmd(&["create", "--bundle", b.path_str(), bad]);
        o.failed();
        let shown: String = bad.chars().take(20).collect();
        assert!(
            root_entries(&rt).is_empty(),
            "id {shown:?} left {:?} in the root",
            root_entries(&rt)
        );
        if bad.len() > 2 {
            let left = paths_mentioning(&rt.root, &bad[..bad.len().min(40)]);
            assert!(left.is_empty(), "id {shown:?} left {left:?}");
        }
        // Nothing next to the root either ("..", "../escape").
        let beside = entries_beside_root(&rt);
        assert!(
            beside.is_empty(),
            "id {shown:?} wrote {beside:?} beside the root"
        );
        assert!(
            cgroup_dirs_present(&cg).is_empty(),
            "id {shown:?} left a cgroup"
        );
        assert!(
            processes_matching(None, Some(&cg)).is_empty(),
            "id {shown:?} left processes"
        );
    }
}

#[test]
fn unknown_flag_on_create_creates_nothing() {
    let c = Ctx::new("ef", &["sleep", "100"]);
    let o = c.cmd(&[
        "create",
        "--no-such-flag",
        "--bundle",
        c.bundle.path_str(),
        &c.id,
    ]);
    o.failed();
    c.assert_no_leak();
}

#[test]
fn unknown_signal_name() {
    let c = Ctx::new("es", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    for sig in ["FOO", "SIGFOO", "-9"] {
        c.cmd(&["kill", &c.id, sig]).failed();
    }
    assert_eq!(c.status().as_deref(), Some("running"));
    assert!(process_alive(pid));
}

#[test]
fn start_of_a_running_container() {
    let c = Ctx::new("et", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    c.cmd(&["start", &c.id]).failed();
    assert_eq!(c.status().as_deref(), Some("running"));
    assert_eq!(c.pid(), pid);
    assert!(process_alive(pid));
}

#[test]
fn delete_of_a_running_container_without_force() {
    let c = Ctx::new("eu", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    c.cmd(&["delete", &c.id]).failed();
    assert_eq!(c.status().as_deref(), Some("running"));
    assert!(process_alive(pid));
    assert!(c.rt.state_dir(&c.id).exists());
    // Still fully usable.
    let e = c.cmd(&["exec", &c.id, "echo", "ok"]);
    e.ok();
    assert_eq!(e.stdout, "ok\n");
}

#[test]
fn operations_on_a_stopped_container() {
    let c = Ctx::new("ep", &["sleep", "100"]);
    c.run_detached();
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    c.cmd(&["exec", &c.id, "true"]).failed();
    c.cmd(&["pause", &c.id]).failed();
    c.cmd(&["resume", &c.id]).failed();
    c.cmd(&["start", &c.id]).failed();
    c.cmd(&["kill", &c.id, "KILL"]).failed();
    c.cmd(&["update", "--memory", "100M", &c.id]).failed();
    c.cmd(&["events", "--stats", &c.id]).failed();
    // Still there and still deletable.
    assert_eq!(c.status().as_deref(), Some("stopped"));
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn pause_twice_and_resume_running() {
    let c = Ctx::new("eq", &["sleep", "100"]);
    c.run_detached();
    c.cmd(&["resume", &c.id]).failed();
    c.cmd(&["pause", &c.id]).ok();
    c.cmd(&["pause", &c.id]).failed();
    c.cmd(&["exec", &c.id, "true"]).failed();
    assert_eq!(c.status().as_deref(), Some("paused"));
    c.cmd(&["resume", &c.id]).ok();
    assert_eq!(c.status().as_deref(), Some("running"));
}

#[test]
fn create_of_an_existing_id_leaves_it_unharmed() {
    let c = Ctx::new("ex", &["sleep", "100"]);
    c.create();
    let before = c.rt.state(&c.id).unwrap();
    let pid = c.pid();

    // Same bundle, and another bundle with the same ID.
    c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id])
        .failed();
    let mut other = Bundle::new();
    other
        .args(&["sleep", "100"])
        .cgroups_path(&cgroups_path_for(&unique_id("ex2")));
    c.cmd(&["create", "--bundle", other.path_str(), &c.id])
        .failed();
    c.cmd(&["run", "-d", "--bundle", other.path_str(), &c.id])
        .failed();

    let after = c.rt.state(&c.id).expect("the existing container is gone");
    assert_eq!(after, before, "state changed");
    assert!(process_alive(pid));
    // And it still starts and runs.
    c.cmd(&["start", &c.id]).ok();
    c.wait_status("running");
    let e = c.cmd(&["exec", &c.id, "echo", "fine"]);
    e.ok();
    assert_eq!(e.stdout, "fine\n");
}

#[test]
fn commands_on_a_missing_container() {
    let rt = Runtime::new();
    let id = unique_id("ez");
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
        vec!["pause", &id],
        vec!["resume", &id],
        vec!["exec", &id, "true"],
        vec!["ps", &id],
        vec!["update", "--memory", "100M", &id],
        vec!["events", "--stats", &id],
    ] {
        rt.cmd(&args).failed();
    }
    assert!(root_entries(&rt).is_empty(), "{:?}", root_entries(&rt));
    let left = paths_mentioning(&rt.root, &id);
    assert!(left.is_empty(), "{left:?}");
}
