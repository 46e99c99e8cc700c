//! What runvz promises beyond runc's own behaviour: a `create` killed with SIGKILL
//! at any point leaves nothing `delete --force` cannot remove; errors reach a
//! `--log-format json` log as the last `error` line; consoles work over
//! `--console-socket` and, for `run` in the foreground, on the caller's terminal.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_tests::*;
use serde_json::json;

/// Kills `create` after increasing delays (through every stage of building the
/// container); each time `delete --force` must leave no state, cgroup or process.
#[test]
fn create_killed_midway_is_fully_removable() {
    if runtime_is_runc() {
        skip("runc 1.1.5 leaves an init waiting and a cgroup behind here; this is runvz's promise");
        return;
    }
    let delays_ms = [0u64, 1, 2, 3, 5, 8, 12, 20, 30, 50];
    for delay in delays_ms {
        let c = Ctx::new("kc", &["sleep", "100"]);
        let mut child =
            c.rt.command(&["create", "--bundle", c.bundle.path_str(), &c.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn create");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        c.cmd(&["delete", "--force", &c.id]).ok();
        let leaks = leaks(&c.rt, &c.id, &c.cg);
        assert!(
            leaks.is_empty(),
            "create killed after {delay} ms left: {leaks:?}"
        );
        // The ID is usable again.
        c.create();
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// `delete --force` after a killed `create` kills only what that create left:
/// a container with the same ID under another state root (another engine's),
/// whose init is also a runvz `create` clone waiting for `start`, is spared.
#[test]
fn cleanup_of_a_killed_create_spares_the_same_id_under_another_root() {
    if runtime_is_runc() {
        skip("runc 1.1.5 leaves an init waiting and a cgroup behind here; this is runvz's promise");
        return;
    }
    let other = Ctx::new("sameid", &["sleep", "100"]);
    other.create();
    // The same ID under a root of its own, its create stuck in a
    // createRuntime hook (libcontainer's processes exist by then), then killed.
    let rt = Runtime::new();
    let cg = format!("{}-here", other.cg);
    let mut bundle = Bundle::new();
    bundle.args(&["sleep", "100"]).cgroups_path(&cg);
    let marker = format!("hook-of-{}", other.id);
    // The marker is the shell's $0: a shell may exec a lone last command in
    // its place (busybox's does), so the script does not end with the sleep.
    bundle.set(
        "/hooks/createRuntime",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "sleep 10; true", marker]}]),
    );
    let _guard = rt.guard(&other.id, Some(&cg));
    let mut create = rt
        .command(&["create", "--bundle", bundle.path_str(), &other.id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn create");
    let hook_runs = wait_until(Duration::from_secs(20), || {
        !processes_matching(Some(&marker), None).is_empty()
    });
    let _ = create.kill();
    let _ = create.wait();
    assert!(hook_runs, "the createRuntime hook never ran");
    rt.cmd(&["delete", "--force", &other.id]).ok();
    for p in processes_matching(Some(&marker), None) {
        if let Some(pid) = p.split(':').next().and_then(|p| p.parse().ok()) {
            // SAFETY: kill(2) with a PID and a signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // What this root's create left is gone (`leaks` would also count the
    // other root's init, which names the same ID).
    let left: Vec<String> = processes_matching(Some(rt.root_str()), Some(&cg));
    assert!(left.is_empty(), "the killed create left {left:?}");
    assert!(!rt.state_dir(&other.id).exists() && !Cgroup::new(&cg).exists());
    assert_eq!(
        other.status().as_deref(),
        Some("created"),
        "the other root's container was harmed"
    );
    other.cmd(&["start", &other.id]).ok();
    other.wait_status("running");
}

/// A corrupt state.json is an error naming the file, never a guess that the
/// container stopped (a plain `delete` would then remove a running one); `list`
/// still lists the others and warns; `delete --force` still removes everything.
#[test]
fn corrupt_state_is_an_error_and_force_delete_still_cleans() {
    if runtime_is_runc() {
        skip("runvz's promise (runc reports its own JSON error)");
        return;
    }
    let c = Ctx::new("corrupt", &["sleep", "100"]);
    c.run_detached();
    let init = c.pid();
    let state = c.rt.root.join(&c.id).join("state.json");
    std::fs::write(&state, b"{\"id\": \"half").expect("corrupt state.json");
    let shown = state.display().to_string();
    for args in [
        vec!["state", &c.id],
        vec!["delete", &c.id],
        vec!["kill", &c.id, "KILL"],
    ] {
        let out = c.cmd(&args);
        out.failed();
        assert!(
            out.stderr.contains(&shown) && out.stderr.contains("corrupt"),
            "{args:?} must name the corrupt file:\n{out}"
        );
    }
    assert!(
        std::path::Path::new(&format!("/proc/{init}")).exists(),
        "the container's init must survive a refused delete"
    );
    let list = c.cmd(&["list"]);
    list.ok();
    assert!(
        list.stderr.contains(&shown),
        "list warns about the unreadable container:\n{list}"
    );
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "delete --force must kill the init"
    );
}

/// The init's PID recorded in state.json now belongs to an unrelated host
/// process (as after PID reuse): `kill` and `delete --force` must not signal it.
/// runvz holds the init by pidfd and checks its start time once held.
#[test]
fn a_recycled_init_pid_is_never_signalled() {
    if runtime_is_runc() {
        skip("runvz's promise (runc checks the start time too, without a pidfd)");
        return;
    }
    let c = Ctx::new("recycled", &["sleep", "100"]);
    c.run_detached();
    // Start times count in clock ticks (10 ms): a stranger started in the
    // init's own tick would pass for it, which no real PID reuse can do.
    std::thread::sleep(Duration::from_millis(50));
    let mut stranger = Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let state_file = c.rt.root.join(&c.id).join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    state["pid"] = serde_json::json!(stranger.id());
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();

    let kill = c.cmd(&["kill", &c.id, "KILL"]);
    kill.failed();
    assert!(kill.stderr.contains("container not running"), "{kill}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    let alive = stranger.try_wait().expect("try_wait").is_none();
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(
        alive,
        "runvz signalled a process that merely has the init's old PID"
    );
    c.assert_no_leak();
}

/// containerd's shim and conmon report the last `"level":"error"` line of the log.
#[test]
fn errors_reach_the_json_log() {
    let rt = Runtime::new();
    let dir = TempDir::new("runvz-log");
    let log = dir.path().join("log.json");
    let missing = unique_id("nolog");
    let out = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        &missing,
    ]);
    out.failed();
    let text = std::fs::read_to_string(&log).expect("log file written");
    let last_error = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in the log:\n{text}"));
    let msg = last_error["msg"].as_str().unwrap_or_default();
    // runc says only "container does not exist"; runvz names the container.
    if !runtime_is_runc() {
        assert!(
            msg.contains(&missing),
            "error line does not name the container: {last_error}"
        );
    }
    assert!(
        last_error["time"].as_str().is_some_and(|t| t.contains('T')),
        "no time: {last_error}"
    );
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["msg"].is_string(),
            "bad log line: {line}"
        );
    }
}

#[test]
fn console_socket_receives_a_working_pty() {
    let mut c = Ctx::new("cs", &["sh", "-c", "tty; stty size; echo from-the-pty"]);
    c.bundle.terminal(true);
    c.bundle.save();
    let dir = TempDir::new("runvz-console");
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    c.cmd(&[
        "create",
        "--bundle",
        c.bundle.path_str(),
        "--console-socket",
        sock.to_str().unwrap(),
        &c.id,
    ])
    .ok();
    let master = std::fs::File::from(receiver.join().unwrap());
    c.cmd(&["start", &c.id]).ok();
    let mut output = Vec::new();
    let mut reader = master;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1024];
    // Reading the master ends with EIO once the container's side is closed.
    while Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => output.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&output);
    assert!(text.contains("from-the-pty"), "pty output: {text:?}");
    assert!(
        text.contains("/dev/"),
        "tty inside is not a terminal: {text:?}"
    );
    assert!(
        !text.contains("not a tty"),
        "tty inside is not a terminal: {text:?}"
    );
    c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

/// `run` in the foreground with `terminal: true` and no console socket relays the
/// container's terminal to the caller's (here a pty made by `script`).
#[test]
fn foreground_run_relays_the_terminal() {
    if !script_available() {
        skip(
            "`script` (util-linux) is not installed (`script --version` fails or is not util-linux's)",
        );
        return;
    }
    let mut c = Ctx::new(
        "ft",
        &["sh", "-c", "test -t 0 && test -t 1 && echo term-ok; exit 7"],
    );
    c.bundle.terminal(true);
    c.bundle.save();
    let line = format!(
        "{} --root {} run --bundle {} {}",
        c.rt.bin.display(),
        c.rt.root_str(),
        c.bundle.path_str(),
        c.id
    );
    let out = run_command(
        Command::new("script").args(["-qec", &line, "/dev/null"]),
        None,
        Duration::from_secs(30),
    );
    assert!(out.stdout.contains("term-ok"), "no terminal inside: {out}");
    assert_eq!(out.code, 7, "exit status not passed through: {out}");
    c.assert_no_leak();
}

/// One state file per container: `<root>/<id>/state.json` is libcontainer's
/// state with runvz's record in it (written before the build, kept through
/// libcontainer's own saves), and `update`'s beancounters land there too; no
/// second record anywhere under the root.
#[test]
fn a_container_has_one_state_file_with_runvz_record() {
    if runtime_is_runc() {
        skip("runvz's own state layout");
        return;
    }
    let c = Ctx::new("onefile", &["sleep", "100"]);
    c.run_detached();
    let read_state = || -> serde_json::Value {
        let path = c.rt.root.join(&c.id).join("state.json");
        serde_json::from_slice(&std::fs::read(&path).expect("read state.json"))
            .expect("state.json is JSON")
    };
    let state = read_state();
    assert_eq!(state["id"], json!(c.id));
    assert_eq!(state["pid"].as_i64(), Some(c.pid() as i64), "{state}");
    let record = &state["runvz"];
    assert!(
        record["cgroup_path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&c.id)),
        "runvz's record survives libcontainer's saves: {state}"
    );
    assert!(record["init_start_time"].as_u64().is_some(), "{state}");

    // Nothing else under the root holds state of this container.
    let mut others: Vec<String> = std::fs::read_dir(&c.rt.root)
        .expect("read root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name != ".locks")
        .collect();
    others.sort();
    assert!(
        others.is_empty(),
        "dot entries in the state root: {others:?}"
    );
    let json_files: Vec<String> = std::fs::read_dir(c.rt.root.join(&c.id))
        .expect("read the container's directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    for name in &json_files {
        assert!(
            ["state.json", "config.json", "youki_config.json"].contains(&name.as_str()),
            "unexpected file {name} beside state.json"
        );
    }

    c.cmd(&["update", "--numproc", "100:100", &c.id]).ok();
    let state = read_state();
    assert_eq!(
        state["runvz"]["beancounters"]["runvz.ubc.numproc"],
        json!("100:100"),
        "update's bounds are recorded in the state file: {state}"
    );
    assert_eq!(state["status"], json!("running"), "{state}");
    assert_eq!(c.status().as_deref(), Some("running"));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}
