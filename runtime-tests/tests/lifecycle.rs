//! create → state → start → list → ps → pause/resume → kill → delete.

use runtime_tests::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn pid_ns(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// RFC 3339 with a `T` and a zone, e.g. `2026-11-22T02:58:13.056548333Z`.
fn looks_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

#[test]
fn create_with_pid_file_then_state_then_start() {
    let c = Ctx::new("lc", &["sleep", "100"]);
    let pid_file = c.bundle.path().join("init.pid");
    c.cmd(&[
        "create",
        "--bundle",
        c.bundle.path_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
    ])
    .ok();

    // The pid file holds the init pid, and that process exists.
    let text = fs::read_to_string(&pid_file).expect("pid file written");
    let file_pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file content {text:?}"));
    assert!(
        process_alive(file_pid),
        "pid {file_pid} from the pid file is not alive"
    );

    // State JSON shape.
    let st = c.rt.state(&c.id).expect("state of a created container");
    assert!(
        st["ociVersion"].as_str().unwrap_or("").starts_with("1."),
        "ociVersion: {st}"
    );
    assert_eq!(st["id"], Value::from(c.id.as_str()), "{st}");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(file_pid as i64), "{st}");
    assert_eq!(st["bundle"], Value::from(c.bundle.path_str()), "{st}");
    assert_eq!(
        st["rootfs"],
        Value::from(c.bundle.rootfs_path().to_str().unwrap()),
        "{st}"
    );
    let created = st["created"].as_str().expect("created is a string");
    assert!(
        looks_rfc3339(created),
        "created {created:?} is not RFC 3339"
    );
    assert!(st["owner"].is_string(), "owner must be a string: {st}");

    // Created, not started: the user process has not been exec'd yet.
    assert!(
        !cmdline(file_pid).starts_with("sleep"),
        "process already runs the user command before start: {:?}",
        cmdline(file_pid)
    );
    // The container's cgroup has the controllers the tests rely on (v1: its
    // directory in the memory, pids, cpu and freezer hierarchies; v2: cpu, io,
    // memory and pids enabled down the path, and cgroup.freeze) …
    let cg = c.cgroup();
    let missing = cg.missing_controllers();
    assert!(
        missing.is_empty(),
        "cgroup {} ({}) lacks controllers:\n  {}",
        c.cg,
        cg.version(),
        missing.join("\n  ")
    );
    // … and the init is in it (v1: cgroup.procs of each of those
    // hierarchies; v2: the one cgroup.procs).
    cg.assert_holds_pid(file_pid);
    // v1 hierarchies are independent trees; v2 has one, where the init is
    // in exactly the container's cgroup (0::/runvz-test/<id>).
    let own: Vec<String> = fs::read_to_string(format!("/proc/{file_pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    match cg.version() {
        CgroupVersion::V1 => assert!(
            own.iter()
                .any(|l| l.contains(":memory:") && l.ends_with(&c.cg)),
            "/proc/{file_pid}/cgroup has no memory line for {}: {own:?}",
            c.cg
        ),
        CgroupVersion::V2 => assert_eq!(own, [format!("0::{}", c.cg)]),
    }

    c.cmd(&["start", &c.id]).ok();
    c.wait_status("running");
    assert_eq!(c.pid(), file_pid, "pid changed across start");
    assert!(
        wait_until(Duration::from_secs(5), || cmdline(file_pid) == "sleep 100"),
        "after start the init does not run `sleep 100`: {:?}",
        cmdline(file_pid)
    );
    // Own pid namespace: the init is not in ours.
    assert_ne!(pid_ns(file_pid), pid_ns(std::process::id() as i32));
}

#[test]
fn list_table_json_and_quiet() {
    let c = Ctx::new("ls", &["sleep", "100"]);
    // Empty root first.
    let q = c.cmd(&["list", "-q"]);
    q.ok();
    assert_eq!(q.stdout.trim(), "", "list -q with no containers");
    let j = c.cmd(&["list", "--format", "json"]);
    j.ok();
    let v = j.json();
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "list --format json with no containers must be null or []: {v}"
    );

    c.run_detached();
    let pid = c.pid();

    let t = c.cmd(&["list"]);
    t.ok();
    let mut lines = t.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{t}"
    );
    let row: Vec<&str> = lines
        .find(|l| l.starts_with(&c.id))
        .unwrap_or_else(|| panic!("no row for {}:\n{t}", c.id))
        .split_whitespace()
        .collect();
    assert_eq!(row[0], c.id);
    assert_eq!(row[1], pid.to_string());
    assert_eq!(row[2], "running");
    assert_eq!(row[3], c.bundle.path_str());
    assert!(looks_rfc3339(row[4]), "CREATED column {:?}", row[4]);
    assert_eq!(row[5], "root", "OWNER column (we run as root)");

    let j = c.cmd(&["list", "--format", "json"]);
    j.ok();
    let arr = j.json();
    let arr = arr.as_array().expect("list --format json is an array");
    assert_eq!(arr.len(), 1, "{j}");
    assert_eq!(arr[0]["id"], Value::from(c.id.as_str()));
    assert_eq!(arr[0]["status"], "running");
    assert_eq!(arr[0]["pid"].as_i64(), Some(pid as i64));
    assert_eq!(arr[0]["bundle"], Value::from(c.bundle.path_str()));

    let q = c.cmd(&["list", "-q"]);
    q.ok();
    assert_eq!(q.stdout.lines().collect::<Vec<_>>(), [c.id.as_str()]);
}

#[test]
fn ps_json_and_table() {
    let c = Ctx::new("ps", &["sleep", "100"]);
    c.run_detached();
    let init = c.pid();
    let pf = c.bundle.path().join("exec.pid");
    c.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &c.id,
        "sleep",
        "99",
    ])
    .ok();
    let exec_pid: i64 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();

    let j = c.cmd(&["ps", "--format", "json", &c.id]);
    j.ok();
    let pids: Vec<i64> = j
        .json()
        .as_array()
        .expect("ps --format json is an array")
        .iter()
        .map(|v| v.as_i64().expect("pids are integers"))
        .collect();
    assert!(pids.contains(&(init as i64)), "init {init} missing: {j}");
    assert!(
        pids.contains(&exec_pid),
        "exec'd pid {exec_pid} missing: {j}"
    );
    assert_eq!(pids.len(), 2, "{j}");

    // The table comes from the host's `ps -ef` (procps, or busybox in the
    // VM: both print a PID column the runtime filters on).
    let ps = match ps_table_usable() {
        Ok(ps) => ps,
        Err(why) => {
            skip(&format!("ps table part (the JSON part passed): {why}"));
            return;
        }
    };
    let t = c.cmd(&["ps", &c.id]);
    t.ok();
    let mut lines = t.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == "PID")
        .unwrap_or_else(|| panic!("no PID column:\n{t}"));
    let table_pids: Vec<i64> = lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect();
    assert!(table_pids.contains(&(init as i64)), "{t}");
    assert!(table_pids.contains(&exec_pid), "{t}");
    assert_eq!(
        table_pids.len(),
        2,
        "only the container's processes ({ps}):\n{t}"
    );

    // ps arguments after the ID go to ps(1).
    let t = c.cmd(&["ps", &c.id, "-o", "pid,comm"]);
    t.ok();
    assert!(t.stdout.lines().next().unwrap_or("").contains("PID"), "{t}");
    assert!(t.stdout.contains("sleep"), "{t}");
}

#[test]
fn pause_and_resume() {
    let c = Ctx::new("pz", &["sleep", "100"]);
    c.run_detached();
    let cg = c.cgroup();
    // Never paused: v1 freezer.state THAWED; v2 cgroup.freeze 0, "frozen 0".
    cg.assert(&Setting::Frozen(false));
    c.cmd(&["pause", &c.id]).ok();
    assert_eq!(c.status().as_deref(), Some("paused"));
    // v1 freezer.state FROZEN; v2 cgroup.freeze 1 and cgroup.events "frozen 1"
    // (pause returns once the kernel reports the cgroup frozen).
    cg.assert(&Setting::Frozen(true));
    let l = c.cmd(&["list", "--format", "json"]).json();
    assert_eq!(l[0]["status"], "paused", "{l}");

    c.cmd(&["resume", &c.id]).ok();
    assert_eq!(c.status().as_deref(), Some("running"));
    cg.assert(&Setting::Frozen(false));
    // Really running again: exec works.
    let e = c.cmd(&["exec", &c.id, "echo", "alive"]);
    e.ok();
    assert_eq!(e.stdout, "alive\n");
}

#[test]
fn kill_default_signal_is_term() {
    let c = {
        let mut c = Ctx::new(
            "kt",
            &[
                "sh",
                "-c",
                "trap 'touch /got-term' TERM; while :; do sleep 0.1; done",
            ],
        );
        c.bundle.readonly(false);
        c
    };
    c.run_detached();
    let pid = c.pid();
    assert!(
        wait_until(Duration::from_secs(5), || signal_caught(pid, libc::SIGTERM)),
        "the shell never installed its TERM trap"
    );
    let marker = c.bundle.rootfs_path().join("got-term");
    c.cmd(&["kill", &c.id]).ok();
    assert!(
        wait_until(Duration::from_secs(5), || marker.exists()),
        "the container's TERM handler never ran after `kill ID`"
    );
    // TERM was handled, so the container still runs (KILL would have ended it).
    assert_eq!(c.status().as_deref(), Some("running"));
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
}

#[test]
fn kill_signal_by_name_prefixed_name_and_number() {
    for sig in ["KILL", "SIGKILL", "9"] {
        let c = Ctx::new("ks", &["sleep", "100"]);
        c.run_detached();
        let pid = c.pid();
        c.cmd(&["kill", &c.id, sig]).ok();
        c.wait_status("stopped");
        assert!(
            wait_until(Duration::from_secs(5), || !process_alive(pid)),
            "init {pid} survived kill {sig}"
        );
        c.cmd(&["delete", &c.id]).ok();
        c.assert_no_leak();
    }
}

#[test]
fn kill_paused_container_with_kill() {
    let c = Ctx::new("kp", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    c.cmd(&["pause", &c.id]).ok();
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    assert!(!process_alive(pid));
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn full_lifecycle_leaves_nothing() {
    let c = Ctx::new("fl", &["sleep", "100"]);
    c.create();
    assert!(
        c.rt.state_dir(&c.id).exists(),
        "state dir missing while created"
    );
    assert!(
        c.cgroup().exists(),
        "no cgroup {} while created ({})",
        c.cg,
        cgroup_version()
    );
    c.cmd(&["start", &c.id]).ok();
    c.wait_status("running");
    let pid = c.pid();
    let e = c.cmd(&["exec", &c.id, "sh", "-c", "echo $$; exit 0"]);
    e.ok();
    c.cmd(&["pause", &c.id]).ok();
    c.cmd(&["resume", &c.id]).ok();
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    assert!(!process_alive(pid), "init {pid} still alive");
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
    let s = c.cmd(&["state", &c.id]);
    s.failed();
}

#[test]
fn annotations_show_in_state() {
    let mut c = Ctx::new("an", &["sleep", "100"]);
    c.bundle
        .annotation("org.example.key", "value one")
        .annotation("org.example.test", "2");
    c.create();
    let st = c.rt.state(&c.id).unwrap();
    assert_eq!(st["annotations"]["org.example.key"], "value one", "{st}");
    assert_eq!(st["annotations"]["org.example.test"], "2", "{st}");
}

#[test]
fn process_cwd_env_and_bind_mount_from_config() {
    let host_dir = TempDir::new("bind");
    fs::write(host_dir.path().join("hello.txt"), "from the host\n").unwrap();
    let mut c = Ctx::new(
        "cw",
        &[
            "sh",
            "-c",
            "pwd; echo $GREETING; cat /mnt/data/hello.txt; echo x > /mnt/data/ro 2>/dev/null || echo ro-ok",
        ],
    );
    c.bundle
        .cwd("/etc")
        .env(&["PATH=/bin", "GREETING=hi there"])
        .add_mount(serde_json::json!({
            "destination": "/mnt/data",
            "type": "bind",
            "source": host_dir.path(),
            "options": ["rbind", "ro"]
        }));
    let o = c.run_fg(None, DEFAULT_TIMEOUT);
    o.ok();
    assert_eq!(o.stdout, "/etc\nhi there\nfrom the host\nro-ok\n");
    assert!(!host_dir.path().join("ro").exists());
    c.assert_no_leak();
}
