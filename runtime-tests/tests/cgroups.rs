//! What runvz does with cgroups beyond plain limits, checked on whichever cgroup
//! version the host runs (v1 here, v2 in the VM of hack/vm/run-tests.sh):
//! `linux.resources.unified`, cgroup namespaces, nested cgroup paths, and
//! `events --stats` read from the container's own cgroup files.

use std::time::Duration;

use runtime_tests::*;
use serde_json::json;

#[test]
fn unified_resources_from_the_spec() {
    if skip_unless_cgroup_v2() {
        return;
    }
    let mut c = Ctx::new("un", &["sleep", "100"]);
    c.bundle
        .resources(json!({"unified": {"pids.max": "33", "memory.high": "61440000"}}));
    c.bundle.save();
    c.run_detached();
    let cg = c.cgroup();
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("33"));
    assert_eq!(
        cg.read("memory", "memory.high").as_deref(),
        Some("61440000")
    );
}

#[test]
fn update_with_unified_resources() {
    if skip_unless_cgroup_v2() {
        return;
    }
    let c = Ctx::new("uu", &["sleep", "100"]);
    c.run_detached();
    let resources = json!({"unified": {"pids.max": "44", "memory.high": "71680000"}}).to_string();
    c.rt.cmd_stdin(&["update", "--resources", "-", &c.id], resources.as_bytes())
        .ok();
    let cg = c.cgroup();
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("44"));
    assert_eq!(
        cg.read("memory", "memory.high").as_deref(),
        Some("71680000")
    );
}

/// With a cgroup namespace the container sees its own cgroup as the root.
#[test]
fn cgroup_namespace_shows_the_container_at_the_root() {
    let mut c = Ctx::new("cn", &["cat", "/proc/self/cgroup"]);
    c.bundle.patch(|spec| {
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        ns.push(json!({"type": "cgroup"}));
    });
    c.bundle.save();
    let out = c.run_fg(None, Duration::from_secs(30));
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no /proc/self/cgroup output: {out}");
    if cgroup_v2() {
        assert_eq!(lines, vec!["0::/"], "v2 cgroup namespace: {out}");
    } else {
        // Every v1 hierarchy the container is in is its own root.
        for line in &lines {
            if line.contains("name=systemd") || line.starts_with("0::") {
                continue;
            }
            assert!(
                line.ends_with(":/"),
                "host path visible inside: {line}\n{out}"
            );
        }
    }
    // Without the namespace the container's real path shows (a check that can fail).
    let mut plain = Ctx::new("cp", &["cat", "/proc/self/cgroup"]);
    plain.bundle.patch(|spec| {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    plain.bundle.save();
    let out = plain.run_fg(None, Duration::from_secs(30));
    out.ok();
    assert!(
        out.stdout.contains(&plain.id),
        "no cgroup path without the namespace: {out}"
    );
}

/// A cgroupsPath several levels below any existing cgroup is created (with the
/// controllers enabled on the way down, on v2) and its leaf removed on delete.
#[test]
fn nested_cgroups_path_is_created_and_removed() {
    let id = unique_id("ne");
    let parent = format!("{CGROUP_PARENT}/nest-{id}/a");
    let path = format!("{parent}/b");
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    bundle
        .args(&["sleep", "100"])
        .cgroups_path(&path)
        .resources(json!({"pids": {"limit": 21}, "memory": {"limit": 52428800}}));
    bundle.save();
    let _guard = rt.guard(&id, Some(&path));
    rt.cmd(&["run", "--detach", "--bundle", bundle.path_str(), &id])
        .ok();
    let cg = Cgroup::new(&path);
    cg.assert_holds_pid(rt.pid(&id));
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("21"));
    if cgroup_v2() {
        assert_eq!(cg.read("memory", "memory.max").as_deref(), Some("52428800"));
        let control = Cgroup::new(&parent)
            .read("pids", "cgroup.subtree_control")
            .unwrap_or_default();
        for controller in ["memory", "pids", "cpu"] {
            assert!(
                control.contains(controller),
                "{controller} not enabled below {parent}: {control:?}"
            );
        }
    } else {
        assert_eq!(
            cg.read("memory", "memory.limit_in_bytes").as_deref(),
            Some("52428800")
        );
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    assert_no_leak(&rt, &id, &path);
    assert!(!cg.exists(), "leaf cgroup {path} left behind");
    // The intermediate levels are the caller's, as with runc; remove ours.
    for level in [parent.as_str(), &format!("{CGROUP_PARENT}/nest-{id}")] {
        for dir in Cgroup::new(level).dirs_present() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `events --stats` reports what the container's cgroup files hold.
#[test]
fn events_stats_match_the_cgroup_files() {
    let c = Ctx::new("es", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    c.run_detached();
    let cg = c.cgroup();
    assert!(wait_until(Duration::from_secs(10), || cg.pids_current() == 3));
    let out = c.cmd(&["events", "--stats", &c.id]);
    out.ok();
    let event = out.json();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], c.id.as_str());
    let data = &event["data"];
    assert_eq!(data["pids"]["current"], 3, "pids.current: {event}");
    let usage = data["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "memory usage 0: {event}");
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "cpu usage 0: {event}"
    );
}
