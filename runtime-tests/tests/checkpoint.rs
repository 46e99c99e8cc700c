//! checkpoint / restore through CRIU. Where `criu check` passes (the cgroup v2
//! VM) containers are really dumped and brought back; where it fails (this
//! host kind's kernel) both commands must refuse clearly and change nothing.

use runtime_tests::*;
use serde_json::json;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why CRIU cannot work here, or None when `criu check` passes.
fn criu_unusable() -> Option<String> {
    match Command::new("criu").arg("check").output() {
        Err(err) => Some(format!("criu cannot be run: {err}")),
        Ok(out) if out.status.success() => None,
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).to_string();
            Some(format!(
                "`criu check` fails on this kernel: {}",
                text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
            ))
        }
    }
}

/// Skips (saying why) unless CRIU works on this kernel.
fn require_criu(test: &str) -> bool {
    match criu_unusable() {
        None => true,
        Some(why) => {
            skip(&format!("{test}: {why}"));
            false
        }
    }
}

/// A shell loop that keeps a counter in its own memory and writes it to
/// /out/cnt (a bind mount of a host directory) every 100 ms.
///
/// Fixed width, overwritten in place (`1<>`, no truncation): CRIU records the
/// size of every open file and refuses a restore when it changed ("Unable to
/// open fd=3"). A dump that caught the shell between `> /out/cnt`'s truncation
/// and its write recorded size 0; with `--leave-running` the loop then wrote
/// the file again, and the restore failed. The file is 9 bytes from the first
/// write on, whenever the dump catches it.
const COUNTER: &str =
    "i=0; while true; do i=$((i+1)); printf '%08d\\n' $i 1<> /out/cnt; sleep 0.1; done";

fn counter_ctx(prefix: &str, out: &Path) -> Ctx {
    let mut c = Ctx::new(prefix, &["sh", "-c", COUNTER]);
    c.bundle.add_mount(json!({
        "destination": "/out", "type": "bind",
        "source": out.to_str().unwrap(), "options": ["rbind", "rw"]
    }));
    c.bundle.save();
    c
}

fn read_counter(out: &Path) -> u64 {
    // The loop truncates and rewrites the file: retry over a torn read.
    for _ in 0..50 {
        if let Some(n) = fs::read_to_string(out.join("cnt"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no counter in {}", out.join("cnt").display());
}

#[track_caller]
fn wait_counter_above(out: &Path, floor: u64) -> u64 {
    let mut last = 0;
    let reached = wait_until(Duration::from_secs(20), || {
        last = fs::read_to_string(out.join("cnt"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        last > floor
    });
    assert!(reached, "counter stayed at {last}, expected above {floor}");
    last
}

/// Runs a runtime command whose container may keep its stdio: stdio is
/// /dev/null (nothing CRIU would have to treat as external) and runvz's own
/// messages go to a log file, shown when the command fails.
fn detached(rt: &Runtime, args: &[&str], dir: &Path) -> (i32, String) {
    let log = dir.join("runtime.log");
    let _ = fs::remove_file(&log);
    let mut full = vec!["--log", log.to_str().unwrap()];
    full.extend_from_slice(args);
    let mut cmd = rt.command(&full);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let code = wait_child(cmd.spawn().expect("spawn runtime"), Duration::from_secs(90));
    let mut text = fs::read_to_string(&log).unwrap_or_default();
    if code != 0 {
        // The CRIU logs go with the temporary directory: keep their errors.
        for name in ["img/dump.log", "img/restore.log"] {
            let criu_log = fs::read_to_string(dir.join(name)).unwrap_or_default();
            for line in criu_log.lines().filter(|l| l.contains("Error")) {
                text.push_str(&format!("\n{name}: {line}"));
            }
        }
    }
    (code, text)
}

/// `run -d` of the context's bundle through [`detached`], asserted to succeed.
fn run_quiet(c: &Ctx, dir: &Path) {
    let (code, log) = detached(
        &c.rt,
        &["run", "-d", "--bundle", c.bundle.path_str(), &c.id],
        dir,
    );
    assert_eq!(code, 0, "run failed: {log}");
}

/// `checkpoint` of the context's container into `img` through [`detached`].
fn checkpoint_quiet(c: &Ctx, img: &Path, dir: &Path, extra: &[&str]) {
    let mut args = vec!["checkpoint"];
    args.extend_from_slice(extra);
    args.extend(["--image-path", img.to_str().unwrap(), &c.id]);
    let (code, log) = detached(&c.rt, &args, dir);
    assert_eq!(code, 0, "checkpoint {extra:?} failed: {log}");
}

fn wait_child(mut child: Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            use std::os::unix::process::ExitStatusExt;
            return status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runtime command did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_criu_checkpoint_and_restore_refuse_and_change_nothing() {
    let Some(why) = criu_unusable() else {
        skip("CRIU works on this kernel: the real checkpoint tests cover it");
        return;
    };
    report(&format!("CRIU here: {why}"));
    let c = Ctx::new("cknc", &["sleep", "100"]);
    c.run_detached();
    let pid = c.pid();
    let images = TempDir::new("ck-img");
    let out = c.cmd(&[
        "checkpoint",
        "--image-path",
        images.path().join("img").to_str().unwrap(),
        &c.id,
    ]);
    out.failed();
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("CRIU cannot work on this host"),
            "checkpoint should say CRIU cannot work: {out}"
        );
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one error line: {out}"
        );
        assert!(
            !images.path().join("img").exists(),
            "a refused checkpoint made its image directory"
        );
    }
    assert_eq!(c.status().as_deref(), Some("running"));
    assert_eq!(c.pid(), pid);
    c.cgroup().assert_holds_pid(pid);

    // restore of a new ID: refused, nothing of it left behind.
    let other = restore_new_id(&c.rt, "cknr", images.path());
    let out = &other.out;
    out.failed();
    if !runtime_is_runc() {
        assert!(
            out.stderr.contains("CRIU cannot work on this host"),
            "restore should say CRIU cannot work: {out}"
        );
    }
    assert_no_leak(&c.rt, &other.id, &other.cg);
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// `restore -d` of a new ID (a fresh bundle) from `images`, for the refusals.
struct NewRestore {
    out: Output,
    id: String,
    cg: String,
    _guard: ContainerGuard,
}

fn restore_new_id(rt: &Runtime, prefix: &str, images: &Path) -> NewRestore {
    let id = unique_id(prefix);
    let cg = cgroups_path_for(&id);
    let guard = rt.guard(&id, Some(&cg));
    let mut bundle = Bundle::new();
    bundle.args(&["sleep", "100"]).cgroups_path(&cg);
    bundle.save();
    let out = rt.cmd(&[
        "restore",
        "-d",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        bundle.path_str(),
        &id,
    ]);
    NewRestore {
        out,
        id,
        cg,
        _guard: guard,
    }
}

#[test]
fn checkpoint_in_the_wrong_state_or_of_nothing_fails() {
    let c = Ctx::new("ckst", &["sleep", "100"]);
    c.create();
    let images = TempDir::new("ck-img");
    let img = images.path().join("img");
    let out = c.cmd(&["checkpoint", "--image-path", img.to_str().unwrap(), &c.id]);
    out.failed();
    assert_eq!(c.status().as_deref(), Some("created"), "{out}");
    let out = c.cmd(&[
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        "no-such-ck",
    ]);
    out.failed();
    assert!(out.stderr.contains("does not exist"), "{out}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn restore_refuses_a_taken_id_and_an_empty_image_dir() {
    let c = Ctx::new("ckrx", &["sleep", "100"]);
    c.run_detached();
    let images = TempDir::new("ck-img");
    let out = c.cmd(&[
        "restore",
        "-d",
        "--image-path",
        images.path().to_str().unwrap(),
        "--bundle",
        c.bundle.path_str(),
        &c.id,
    ]);
    out.failed();
    assert!(out.stderr.contains("already exists"), "{out}");
    assert_eq!(c.status().as_deref(), Some("running"));

    let other = restore_new_id(&c.rt, "ckre", images.path());
    let out = &other.out;
    out.failed();
    if !runtime_is_runc() {
        let expected = if criu_unusable().is_some() {
            "CRIU cannot work on this host"
        } else {
            "holds no checkpoint"
        };
        assert!(out.stderr.contains(expected), "{out}");
    }
    assert_no_leak(&c.rt, &other.id, &other.cg);
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn checkpoint_stops_the_container_and_restore_resumes_its_memory() {
    if !require_criu("checkpoint/restore") {
        return;
    }
    let out_dir = TempDir::new("ck-out");
    let c = counter_ctx("ckmem", out_dir.path());
    let images = TempDir::new("ck-img");
    let img = images.path().join("img");
    run_quiet(&c, images.path());
    wait_counter_above(out_dir.path(), 3);

    let started = Instant::now();
    checkpoint_quiet(&c, &img, images.path(), &[]);
    report(&format!("checkpoint took {:?}", started.elapsed()));
    assert!(img.join("inventory.img").exists(), "no images written");
    // The container is gone, and so are its processes and cgroup.
    assert!(
        c.status().is_none(),
        "container still listed after checkpoint"
    );
    assert_no_leak(&c.rt, &c.id, &c.cg);
    let frozen_at = read_counter(out_dir.path());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        read_counter(out_dir.path()),
        frozen_at,
        "something still counts"
    );

    let pid_file = images.path().join("restored.pid");
    let started = Instant::now();
    let (code, log) = detached(
        &c.rt,
        &[
            "restore",
            "-d",
            "--image-path",
            img.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
            c.bundle.path_str(),
            &c.id,
        ],
        images.path(),
    );
    assert_eq!(code, 0, "restore failed: {log}");
    report(&format!("restore took {:?}", started.elapsed()));
    assert_eq!(c.status().as_deref(), Some("running"));
    let pid = c.pid();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    c.cgroup().assert_holds_pid(pid);
    // The shell's counter lives on in its memory: it goes on from where it was.
    let resumed = wait_counter_above(out_dir.path(), frozen_at);
    assert!(
        resumed < frozen_at + 100,
        "counter jumped from {frozen_at} to {resumed}"
    );
    // The restored container is a container like any other.
    let exec = c.cmd(&["exec", &c.id, "cat", "/proc/1/cmdline"]);
    exec.ok();
    assert!(exec.stdout.contains("while true"), "{exec}");
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn restore_under_another_id_lands_in_its_own_cgroup_and_namespaces() {
    if !require_criu("checkpoint/restore into another cgroup") {
        return;
    }
    let out_dir = TempDir::new("ck-out");
    let mut a = counter_ctx("ckla", out_dir.path());
    // A cgroup namespace too: it must come back rooted at the new cgroup.
    a.bundle.patch(|spec| {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    });
    a.bundle.save();
    let images = TempDir::new("ck-img");
    let img = images.path().join("img");
    run_quiet(&a, images.path());
    wait_counter_above(out_dir.path(), 2);
    let inside_before = a.cmd(&["exec", &a.id, "cat", "/proc/self/cgroup"]);
    inside_before.ok();

    checkpoint_quiet(&a, &img, images.path(), &["--leave-running"]);
    assert_eq!(
        a.status().as_deref(),
        Some("running"),
        "--leave-running stopped it"
    );
    let before = read_counter(out_dir.path());
    wait_counter_above(out_dir.path(), before);
    a.cmd(&["delete", "--force", &a.id]).ok();
    a.assert_no_leak();

    // The same images, another ID and cgroupsPath.
    let b_id = unique_id("cklb");
    let b_cg = cgroups_path_for(&b_id);
    let _guard = a.rt.guard(&b_id, Some(&b_cg));
    a.bundle.cgroups_path(&b_cg);
    a.bundle.save();
    let (code, log) = detached(
        &a.rt,
        &[
            "restore",
            "-d",
            "--image-path",
            img.to_str().unwrap(),
            "--bundle",
            a.bundle.path_str(),
            &b_id,
        ],
        images.path(),
    );
    assert_eq!(code, 0, "restore under a new ID failed: {log}");
    let pid = a.rt.pid(&b_id);
    Cgroup::new(&b_cg).assert_holds_pid(pid);
    assert!(
        !Cgroup::new(&a.cg).exists(),
        "restore recreated the old container's cgroup {}",
        a.cg
    );
    let inside_after = a.cmd(&["exec", &b_id, "cat", "/proc/self/cgroup"]);
    inside_after.ok();
    assert_eq!(
        inside_after.stdout, inside_before.stdout,
        "the cgroup namespace did not come back rooted at the container's cgroup"
    );
    a.cmd(&["delete", "--force", &b_id]).ok();
    assert_no_leak(&a.rt, &b_id, &b_cg);
}

#[test]
fn restore_hands_the_callers_pipes_to_the_restored_process() {
    if !require_criu("checkpoint/restore with pipes") {
        return;
    }
    // As containerd does: the init's stdout is a pipe of the caller's.
    let c = Ctx::new(
        "ckpipe",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
        ],
    );
    let images = TempDir::new("ck-img");
    let img = images.path().join("img");
    let first_lines = spawn_with_stdout_pipe(
        &c.rt,
        &["run", "-d", "--bundle", c.bundle.path_str(), &c.id],
    );
    let first = first_lines
        .recv_timeout(Duration::from_secs(20))
        .expect("no output before checkpoint");
    assert!(first.starts_with("tick "), "{first}");
    checkpoint_quiet(&c, &img, images.path(), &[]);
    let mut last_before = 0;
    while let Ok(line) = first_lines.recv_timeout(Duration::from_millis(500)) {
        last_before = tick(&line);
    }

    let lines = spawn_with_stdout_pipe(
        &c.rt,
        &[
            "restore",
            "-d",
            "--image-path",
            img.to_str().unwrap(),
            "--bundle",
            c.bundle.path_str(),
            &c.id,
        ],
    );
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the restored process does not write to the new pipe");
    let n = tick(&line);
    assert!(
        n > last_before && n < last_before + 100,
        "restored output {line:?} does not follow tick {last_before}"
    );
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

fn tick(line: &str) -> u64 {
    line.trim()
        .strip_prefix("tick ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
}

/// Runs a detached runtime command with stdout a fresh pipe; the lines the
/// container writes to it arrive on the returned channel.
fn spawn_with_stdout_pipe(rt: &Runtime, args: &[&str]) -> mpsc::Receiver<String> {
    let mut cmd = rt.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn runtime");
    let stdout = child.stdout.take().unwrap();
    let code = wait_child(child, Duration::from_secs(90));
    assert_eq!(code, 0, "{args:?} failed");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn foreground_restore_waits_and_returns_the_exit_status() {
    if !require_criu("foreground restore") {
        return;
    }
    let c = Ctx::new("ckfg", &["sleep", "1000"]);
    let images = TempDir::new("ck-img");
    let img = images.path().join("img");
    run_quiet(&c, images.path());
    checkpoint_quiet(&c, &img, images.path(), &[]);

    let mut cmd = c.rt.command(&[
        "restore",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        c.bundle.path_str(),
        &c.id,
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("spawn restore");
    c.rt.wait_status(&c.id, "running", Duration::from_secs(30));
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    let code = wait_child(child, Duration::from_secs(30));
    assert_eq!(code, 137, "foreground restore should return 128+SIGKILL");
    // Like `run`, a foreground restore deletes the container when it exits.
    c.assert_no_leak();
}

#[test]
fn a_terminal_container_is_refused_clearly_and_keeps_running() {
    if !require_criu("checkpoint of a terminal container") {
        return;
    }
    if runtime_is_runc() {
        skip("runvz's own refusal of terminal containers");
        return;
    }
    let mut c = Ctx::new("cktty", &["sleep", "1000"]);
    c.bundle.terminal(true);
    c.bundle.save();
    let dir = TempDir::new("ck-console");
    let img = dir.path().join("img");
    let sock = dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    let (code, log) = detached(
        &c.rt,
        &[
            "run",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            c.bundle.path_str(),
            &c.id,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{log}");
    let _master = receiver.join().unwrap();
    let pid = c.pid();
    let out = c.cmd(&["checkpoint", "--image-path", img.to_str().unwrap(), &c.id]);
    out.failed();
    assert!(out.stderr.contains("it has a terminal"), "{out}");
    assert!(
        !img.exists(),
        "a refused checkpoint made its image directory"
    );
    assert_eq!(c.status().as_deref(), Some("running"));
    assert_eq!(c.pid(), pid);
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}
