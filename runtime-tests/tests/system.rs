//! System containers: an init as the container's process gets what systemd's
//! container interface asks for, and `kill` (SIGTERM) becomes its halt signal.
//! A busybox init runs everywhere in seconds; a Debian rootfs made with
//! debootstrap boots real systemd where debootstrap can run (the host).

use runtime_tests::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn skip_for_runc() -> bool {
    if runtime_is_runc() {
        skip("system containers are runvz's own mode; runc runs the init as any process");
        return true;
    }
    false
}

/// For tests of the /proc view (a FUSE server): true, after the skip line,
/// where the host has no /dev/fuse.
fn skip_without_fuse() -> bool {
    if Path::new("/dev/fuse").exists() {
        return false;
    }
    skip("the /proc view: no /dev/fuse here");
    true
}

/// A busybox-init container: /sbin/init with an inittab that records what the
/// init got (mounts, environment, cgroup) in /out and, on shutdown, "halted".
fn busybox_init(prefix: &str, out: &Path, annotations: &[(&str, &str)]) -> Ctx {
    // The init's root is an unprivileged host user (runvz.userns=auto, the
    // default): /out is a writable host directory it may write to.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(out, fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = Ctx::new(prefix, &["/sbin/init"]);
    let rootfs = c.bundle.rootfs_path();
    link_busybox_init(&rootfs, None);
    fs::write(
        rootfs.join("etc/inittab"),
        "::sysinit:/bin/sh -c 'cat /proc/mounts > /out/mounts; \
         tr \"\\0\" \"\\n\" < /proc/1/environ > /out/environ; cat /proc/1/cgroup > /out/cgroup'\n\
         ::respawn:/bin/sleep 1000\n\
         ::shutdown:/bin/sh -c 'echo halted > /out/shutdown'\n",
    )
    .unwrap();
    c.bundle.add_mount(json!({
        "destination": "/out", "type": "bind",
        "source": out.to_str().unwrap(), "options": ["rbind", "rw"]
    }));
    for (key, value) in annotations {
        c.bundle.annotation(key, value);
    }
    c.bundle.save();
    c
}

#[track_caller]
fn wait_file(path: &Path) -> String {
    assert!(
        wait_until(Duration::from_secs(20), || path.exists()),
        "{} never appeared",
        path.display()
    );
    // Written by a shell redirect: give it a moment to be complete.
    std::thread::sleep(Duration::from_millis(100));
    fs::read_to_string(path).unwrap()
}

fn mount_of<'a>(mounts: &'a str, dest: &str) -> Option<&'a str> {
    mounts
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(dest))
}

#[test]
fn an_init_gets_a_system_container_and_halts_on_kill() {
    if skip_for_runc() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init("sysbb", out.path(), &[]);
    c.run_detached();

    let mounts = wait_file(&out.path().join("mounts"));
    for dest in ["/run", "/run/lock", "/tmp"] {
        let m = mount_of(&mounts, dest).unwrap_or_else(|| panic!("no {dest} mount:\n{mounts}"));
        assert!(m.contains("tmpfs"), "{dest} is not a tmpfs: {m}");
    }
    let cgroup = mount_of(&mounts, "/sys/fs/cgroup")
        .or_else(|| mount_of(&mounts, "/sys/fs/cgroup/unified"))
        .unwrap_or_else(|| panic!("no cgroup mount:\n{mounts}"));
    assert!(
        cgroup
            .split_whitespace()
            .nth(3)
            .is_some_and(|o| o.starts_with("rw")),
        "the cgroup tree is not writable: {cgroup}"
    );
    let environ = wait_file(&out.path().join("environ"));
    assert!(
        environ.lines().any(|l| l.starts_with("container=")),
        "no container= in init's environment:\n{environ}"
    );
    // A cgroup namespace: the init sees its own cgroup as the root.
    let own = wait_file(&out.path().join("cgroup"));
    assert!(
        own.lines().all(|l| l.ends_with(":/")),
        "init does not see its cgroup as the root:\n{own}"
    );
    let machine_id = c.cmd(&["exec", &c.id, "cat", "/etc/machine-id"]);
    machine_id.ok();
    assert_eq!(machine_id.stdout.trim().len(), 32, "{machine_id}");

    // `runvz kill ID` (SIGTERM) → busybox init's poweroff signal: it runs its
    // shutdown actions and exits on its own.
    let started = Instant::now();
    c.cmd(&["kill", &c.id]).ok();
    c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
    let took = started.elapsed();
    report(&format!("busybox init halted in {took:?}"));
    assert_eq!(
        fs::read_to_string(out.path().join("shutdown"))
            .unwrap_or_default()
            .trim(),
        "halted",
        "the init did not run its shutdown actions"
    );
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

/// /proc/loadavg inside a system container is its own: two busy loops in one
/// raise its load toward 2, while a second, idle container's stays near 0
/// (the host's, busy with the first, does not show through).
#[test]
fn proc_loadavg_is_the_containers_own() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let (busy_out, idle_out) = (TempDir::new("sys-busy"), TempDir::new("sys-idle"));
    let busy = busybox_init("sysbusy", busy_out.path(), &[]);
    let idle = busybox_init("sysidle", idle_out.path(), &[]);
    busy.run_detached();
    idle.run_detached();
    wait_file(&busy_out.path().join("environ"));
    wait_file(&idle_out.path().join("environ"));
    for _ in 0..2 {
        busy.cmd(&["exec", "-d", &busy.id, "sh", "-c", "while :; do :; done"])
            .ok();
    }
    let load = |c: &Ctx| -> (f64, String) {
        let out = c.cmd(&["exec", &c.id, "cat", "/proc/loadavg"]);
        out.ok();
        let first = out.stdout.split_whitespace().next().unwrap_or("").parse();
        (first.unwrap_or(-1.0), out.stdout)
    };
    let mut seen = String::new();
    let rose = wait_until(Duration::from_secs(60), || {
        let (one, text) = load(&busy);
        seen = text;
        one >= 0.3
    });
    assert!(
        rose,
        "the busy container's 1-minute load never reached 0.3: {seen:?}"
    );
    let (idle_load, text) = load(&idle);
    assert!(
        (0.0..0.2).contains(&idle_load),
        "the idle container shows its own load, not the host's: {text:?} (busy one: {seen:?}, host: {:?})",
        fs::read_to_string("/proc/loadavg").unwrap_or_default()
    );
    report(&format!(
        "/proc/loadavg: busy container {}, idle container {}, host {}",
        seen.trim(),
        text.trim(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    ));
    busy.cmd(&["delete", "--force", &busy.id]).ok();
    idle.cmd(&["delete", "--force", &idle.id]).ok();
    busy.assert_no_leak();
    idle.assert_no_leak();
}

/// Inside a system container /proc/meminfo, /proc/cpuinfo, /proc/uptime and
/// /sys/devices/system/cpu/online are its own: its memory limit (physpages),
/// the CPUs its cpulimit allows, the time since its init started. The server behind them goes on delete.
#[test]
fn proc_shows_the_containers_memory_cpus_and_uptime() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init(
        "sysproc",
        out.path(),
        &[("runvz.ubc.physpages", "0:256M"), ("runvz.cpulimit", "100")],
    );
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let view = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "grep -E '^(MemTotal|MemFree):' /proc/meminfo; grep -c ^processor /proc/cpuinfo; cat /proc/uptime; cat /sys/devices/system/cpu/online",
    ]);
    view.ok();
    let lines: Vec<&str> = view.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{view}");
    assert!(
        !lines[4].contains(['-', ',']),
        "one CPU online under cpulimit 100, as lscpu counts them: {view}"
    );
    let kb = |line: &str| -> u64 { line.split_whitespace().nth(1).unwrap().parse().unwrap() };
    assert_eq!(kb(lines[0]), 256 * 1024, "MemTotal: {view}");
    assert!(kb(lines[1]) <= 256 * 1024, "MemFree: {view}");
    assert_eq!(lines[2], "1", "CPUs under cpulimit 100: {view}");
    let up: f64 = lines[3].split_whitespace().next().unwrap().parse().unwrap();
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up < 60.0 && up <= host_up, "uptime {up} (host {host_up})");
    report(&format!(
        "/proc view: MemTotal {} kB, {} CPU, up {up} s (host up {host_up} s)",
        kb(lines[0]),
        lines[2]
    ));
    c.cmd(&["delete", "--force", &c.id]).ok();
    // The server's command line names the container: no leak means it is gone.
    c.assert_no_leak();
}

/// The /proc view server killed (as the OOM killer or a stray `kill -9`
/// would): the container's /proc/meminfo fails ("Transport endpoint is not
/// connected") until the next `state` or `exec`, which starts the server again
/// and binds its files again inside the container.
#[test]
fn a_killed_proc_view_server_is_restarted_by_state_or_exec() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init(
        "sysrevive",
        out.path(),
        &[("runvz.ubc.physpages", "0:256M")],
    );
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let meminfo_total = || {
        let view = c.cmd(&["exec", &c.id, "grep", "^MemTotal:", "/proc/meminfo"]);
        view.ok();
        view.stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    let server = || -> Vec<i32> {
        processes_matching(Some("internal-procview"), None)
            .iter()
            .filter(|p| p.contains(&c.id))
            .filter_map(|p| p.split(':').next()?.parse().ok())
            .collect()
    };
    assert_eq!(meminfo_total(), (256 * 1024).to_string());
    let init = c.pid();
    for (round, revive) in ["state", "exec"].iter().enumerate() {
        let before = server();
        assert_eq!(before.len(), 1, "round {round}: servers {before:?}");
        // SAFETY: kill(2) with a PID and a signal.
        unsafe { libc::kill(before[0], libc::SIGKILL) };
        assert!(wait_until(Duration::from_secs(5), || server().is_empty()));
        let dead = fs::read_to_string(format!("/proc/{init}/root/proc/meminfo"));
        report(&format!(
            "server killed: the container's /proc/meminfo reads {:?}",
            dead.map(|t| t.len()).map_err(|e| e.to_string())
        ));
        // `exec` revives it itself in the second round.
        let said = if *revive == "state" {
            let out = c.cmd(&["state", &c.id]);
            out.ok();
            out.stderr
        } else {
            String::new()
        };
        assert_eq!(
            meminfo_total(),
            (256 * 1024).to_string(),
            "after {revive} (which said {said:?})"
        );
        let after = server();
        assert!(
            after.len() == 1 && after != before,
            "round {round}: servers {after:?}"
        );
    }
    assert_eq!(c.status().as_deref(), Some("running"));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn haltsignal_overrides_and_other_signals_pass_unchanged() {
    if skip_for_runc() {
        return;
    }
    let out = TempDir::new("sys-out");
    // SIGHUP only makes busybox init re-read its inittab: if `kill` turned
    // SIGTERM into it, the container keeps running.
    let c = busybox_init("syshup", out.path(), &[("runvz.haltsignal", "SIGHUP")]);
    c.run_detached();
    wait_file(&out.path().join("environ"));
    c.cmd(&["kill", &c.id]).ok();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        c.status().as_deref(),
        Some("running"),
        "SIGTERM was not turned into SIGHUP"
    );
    // Any other signal goes through as it is.
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
    assert!(
        !out.path().join("shutdown").exists(),
        "KILL ran shutdown actions?"
    );
    c.cmd(&["delete", &c.id]).ok();
    c.assert_no_leak();
}

#[test]
fn system_false_keeps_an_init_an_ordinary_process() {
    if skip_for_runc() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init("sysoff", out.path(), &[("runvz.system", "false")]);
    c.run_detached();
    let environ = wait_file(&out.path().join("environ"));
    assert!(!environ.contains("container="), "{environ}");
    let mounts = wait_file(&out.path().join("mounts"));
    assert!(mount_of(&mounts, "/run/lock").is_none(), "{mounts}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();

    let bad = busybox_init("sysbad", out.path(), &[("runvz.system", "maybe")]);
    let out = bad.cmd(&["create", "--bundle", bad.bundle.path_str(), &bad.id]);
    out.failed();
    assert!(out.stderr.contains("runvz.system"), "{out}");
    bad.assert_no_leak();
}

/// A rootfs on a filesystem that cannot be idmapped (ramfs) gives one clear
/// error naming the way out, leaves nothing behind, and runs with
/// `runvz.userns=host`.
#[test]
fn a_rootfs_that_cannot_be_idmapped_is_refused_clearly() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("sysram", &["/sbin/init"]);
    let ramfs = TempDir::new("sys-ramfs");
    let status = Command::new("mount")
        .args(["-t", "ramfs", "ramfs", ramfs.path().to_str().unwrap()])
        .status()
        .expect("mount");
    assert!(status.success(), "cannot mount a ramfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(ramfs.path());
    let rootfs = ramfs.path().join("rootfs");
    let copied = Command::new("cp")
        .args(["-a", c.bundle.rootfs_path().to_str().unwrap()])
        .arg(&rootfs)
        .status()
        .expect("cp");
    assert!(copied.success());
    link_busybox_init(&rootfs, None);
    fs::write(rootfs.join("etc/inittab"), "::respawn:/bin/sleep 1000\n").unwrap();
    c.bundle.set("/root/path", json!(rootfs.to_str().unwrap()));
    c.bundle.save();
    let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
    out.failed();
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out}");
    assert!(
        out.stderr.contains("cannot idmap the rootfs") && out.stderr.contains("runvz.userns=host"),
        "{out}"
    );
    c.assert_no_leak();
    let ranges = fs::read_to_string("/run/runvz/.userns/ranges.json").unwrap_or_default();
    assert!(
        !ranges.contains(&format!("/{}\"", c.id)),
        "range kept: {ranges}"
    );

    c.bundle.annotation("runvz.userns", "host");
    c.bundle.save();
    c.run_detached();
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// With no engine, a person gives a system container a network namespace by
/// path: it joins it (before its own user namespace, as runc does), and its
/// root, an unprivileged user outside, cannot reconfigure what it does not own.
#[test]
fn a_network_namespace_given_by_path_is_joined() {
    if skip_for_runc() {
        return;
    }
    // busybox's unshare in the VM, util-linux's on the host.
    let mut holder = match Command::new("unshare")
        .args(["--net", "sleep", "300"])
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            skip(&format!(
                "network namespace by path: cannot run unshare: {err}"
            ));
            return;
        }
    };
    let netns = format!("/proc/{}/ns/net", holder.id());
    let ours = fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_link(&netns)
            .is_ok_and(|ns| ns != ours)),
        "unshare made no network namespace"
    );
    let out = TempDir::new("sys-netns");
    let mut c = busybox_init("sysnet", out.path(), &[]);
    c.bundle.set(
        "/linux/namespaces",
        json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": netns}
        ]),
    );
    c.bundle.save();
    c.run_detached();
    wait_file(&out.path().join("environ"));
    assert_eq!(
        fs::read_link(format!("/proc/{}/ns/net", c.pid())).unwrap(),
        fs::read_link(&netns).unwrap(),
        "the init is not in the given network namespace"
    );
    let map = fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
    assert!(
        map.split_whitespace().nth(1) != Some("0"),
        "no user namespace: {map}"
    );
    // Its /sys is that namespace's: only its loopback, none of the host's devices.
    let devices = c.cmd(&["exec", &c.id, "ls", "/sys/class/net"]);
    devices.ok();
    assert_eq!(devices.stdout.trim(), "lo", "{devices}");
    let up = c.cmd(&["exec", &c.id, "ip", "link", "set", "lo", "up"]);
    up.failed();
    assert!(up.stderr.contains("ermitted"), "{up}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    let _ = holder.kill();
    let _ = holder.wait();
}

/// The capabilities Podman gives a container by default.
fn podman_caps() -> serde_json::Value {
    json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
        "CAP_AUDIT_WRITE",
        "CAP_MKNOD",
        "CAP_NET_RAW"
    ])
}

#[test]
fn systemd_boots_to_running_and_halts_cleanly() {
    if skip_for_runc() {
        return;
    }
    let lower = match systemd_rootfs() {
        Ok(dir) => dir,
        Err(why) => {
            skip(&format!("systemd boot: {why}"));
            return;
        }
    };
    let overlay = Overlay::new(&lower);
    let mut c = Ctx::new("sysd", &["/sbin/init"]);
    c.bundle
        .set("/root/path", json!(overlay.merged.to_str().unwrap()))
        .set("/root/readonly", json!(false))
        .set("/hostname", json!("runvz-system"));
    // The capabilities Podman gives a container by default: what an engine
    // passes (runc's `spec` default of three is too few for systemd).
    for set in ["bounding", "effective", "permitted"] {
        c.bundle
            .set(&format!("/process/capabilities/{set}"), podman_caps());
    }
    c.bundle.save();
    // In the foreground, so the init's own exit status comes back; systemd
    // writes its own errors to stderr, kept to explain a failed boot.
    let console = TempDir::new("sys-console");
    let log = console.path().join("output.log");
    let mut cmd =
        c.rt.command(&["run", "--bundle", c.bundle.path_str(), &c.id]);
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().expect("spawn runvz run");
    let booted = Instant::now();
    c.rt.wait_status(&c.id, "running", Duration::from_secs(30));

    let mut state = String::new();
    wait_until(Duration::from_secs(90), || {
        let out = c.rt.cmd(&["exec", &c.id, "systemctl", "is-system-running"]);
        state = out.stdout.trim().to_string();
        state == "running" || state == "degraded"
    });
    report(&format!(
        "systemd reached {state:?} in {:?}",
        booted.elapsed()
    ));
    if state != "running" {
        let failed = c.rt.cmd(&[
            "exec",
            &c.id,
            "systemctl",
            "--failed",
            "--no-legend",
            "--no-pager",
        ]);
        panic!(
            "systemd is {state:?} (container {:?}); failed units:\n{}\nits output:\n{}",
            c.status(),
            failed.stdout,
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // It booted in a user namespace of its own (the default): root inside,
    // an unprivileged host user outside.
    let map = fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
    let map: Vec<u64> = map.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!(
        map[0] == 0 && map[1] >= 1 << 30 && map[2] == 65536,
        "systemd's uid_map: {map:?}"
    );
    let login = c.cmd(&[
        "exec",
        &c.id,
        "bash",
        "-l",
        "-c",
        "echo login:$(whoami):$(hostname)",
    ]);
    login.ok();
    assert_eq!(login.stdout.trim(), "login:root:runvz-system", "{login}");
    let status = c.cmd(&["exec", &c.id, "systemctl", "status", "--no-pager"]);
    assert!(status.stdout.contains("State: running"), "{status}");
    let journal = c.cmd(&["exec", &c.id, "journalctl", "--no-pager", "-b", "-o", "cat"]);
    journal.ok();
    assert!(
        journal.stdout.contains("Reached target"),
        "journald recorded nothing of the boot: {journal}"
    );

    let asked = Instant::now();
    c.cmd(&["kill", &c.id]).ok();
    let deadline = asked + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            break status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() > deadline {
            let _ = c.rt.cmd(&["kill", &c.id, "KILL"]);
            let _ = child.wait();
            panic!("systemd did not halt within 10 s of `runvz kill`");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    report(&format!(
        "systemd halted in {:?}, init exit status {code}",
        asked.elapsed()
    ));
    assert_ne!(code, 137, "the init was killed, not halted");
    c.assert_no_leak();
    drop(overlay);
}

/// The user `ps` shows a process running as: procps's `-o uid= -p`, or the
/// VM's busybox `ps -o pid,user` (a name or, for an unnamed ID, the number;
/// a long header widens the column busybox otherwise cuts at 8).
fn ps_uid(pid: i32) -> String {
    let ps = |args: &[&str]| {
        let out = Command::new("ps").args(args).output().expect("ps");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let procps = ps(&["-o", "uid=", "-p", &pid.to_string()]);
    if !procps.trim().is_empty() {
        return procps.trim().to_string();
    }
    ps(&["-o", "pid,user=USER______________"])
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(&pid.to_string())).then(|| f.next().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

/// `runvz.userns=auto`, the default for a system container: each gets its own
/// 65536-ID range, its root is an unprivileged host user, its rootfs stays
/// root's through an idmapped mount, read-only binds and binds marked `idmap`
/// keep their owners, other host files are nobody's; the range is given back
/// on delete. `runvz.userns=host` runs one without a user namespace.
#[test]
fn userns_auto_gives_disjoint_unprivileged_ranges() {
    if skip_for_runc() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let host = TempDir::new("sys-userns");
    // Private to host root, as an engine's run directory is: the container's
    // root could not reach a bind source in it by path.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let root_file = host.path().join("root-owned");
    fs::write(&root_file, "host\n").unwrap();
    let volume = host.path().join("volume");
    fs::create_dir(&volume).unwrap();
    let start = |prefix: &str, annotation: Option<&str>| {
        let mut c = Ctx::new(prefix, &["/sbin/init"]);
        let rootfs = c.bundle.rootfs_path();
        link_busybox_init(&rootfs, None);
        fs::write(rootfs.join("etc/inittab"), "::respawn:/bin/sleep 1000\n").unwrap();
        if let Some(value) = annotation {
            c.bundle.annotation("runvz.userns", value);
        }
        c.bundle.set("/root/readonly", json!(false));
        // Root's usual powers (Podman's set), which are the container's own here.
        for set in ["bounding", "effective", "permitted"] {
            c.bundle
                .set(&format!("/process/capabilities/{set}"), podman_caps());
        }
        for (dest, source, options) in [
            ("/host-ro", &root_file, json!(["bind", "ro"])),
            ("/host-rw", &root_file, json!(["bind", "rw"])),
            ("/volume", &volume, json!(["bind", "rw", "idmap"])),
        ] {
            if dest == "/volume" && annotation == Some("host") {
                continue; // idmap needs a user namespace
            }
            c.bundle.add_mount(json!({
                "destination": dest, "type": "bind",
                "source": source.to_str().unwrap(), "options": options
            }));
        }
        c.bundle.save();
        c.run_detached();
        c
    };
    // One by default, one asked for by name.
    let a = start("usa", None);
    let b = start("usb", Some("auto"));
    let range = |c: &Ctx| -> (u64, u64) {
        let map = fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
        let f: Vec<u64> = map.split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!((f[0], f[2]), (0, 65536), "uid_map {map:?}");
        (f[1], f[1] + f[2])
    };
    let (ra, rb) = (range(&a), range(&b));
    report(&format!("user-namespace ranges: {ra:?} and {rb:?}"));
    assert!(
        ra.1 <= rb.0 || rb.1 <= ra.0,
        "ranges overlap: {ra:?} {rb:?}"
    );
    // On the host, `ps` shows each init under its range's first ID, not root.
    for (c, r) in [(&a, ra), (&b, rb)] {
        assert_eq!(ps_uid(c.pid()), r.0.to_string(), "ps: {}'s init", c.id);
    }

    // Inside: root owns the rootfs and may chown its files...
    let out = a.cmd(&[
        "exec",
        &a.id,
        "sh",
        "-c",
        "id -u; stat -c %u /bin/busybox; touch /f && chown 5:5 /f && stat -c %u:%g /f",
    ]);
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["0", "0", "5:5"],
        "{out}"
    );
    // ...which the host sees as the container's ID 5, as on disk (idmapped).
    let on_disk = a.bundle.rootfs_path().join("f");
    assert_eq!(fs::metadata(&on_disk).unwrap().uid(), 5);
    // A host root's file: read-only, it shows as root's (idmapped) yet cannot
    // be written; writable and not idmapped, it is nobody's and refused too.
    let out = a.cmd(&[
        "exec",
        &a.id,
        "sh",
        "-c",
        "stat -c ro:%u /host-ro; echo x > /host-ro; echo ro=$?; \
         stat -c rw:%u /host-rw; echo x > /host-rw; echo rw=$?",
    ]);
    for want in ["ro:0", "ro=1", "rw:65534", "rw=1"] {
        assert!(out.stdout.lines().any(|l| l == want), "{want}: {out}");
    }
    assert_eq!(fs::read_to_string(&root_file).unwrap(), "host\n");
    // A volume marked `idmap`: root inside writes as its owner, host root.
    let out = a.cmd(&[
        "exec",
        &a.id,
        "sh",
        "-c",
        "stat -c %u /volume; touch /volume/made && stat -c %u /volume/made",
    ]);
    out.ok();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["0", "0"], "{out}");
    assert_eq!(fs::metadata(volume.join("made")).unwrap().uid(), 0);

    // Delete gives the ranges back and unmounts what was idmapped.
    for c in [&a, &b] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
    // The allocator is the host's, whatever --root each engine gives.
    let ranges = fs::read_to_string("/run/runvz/.userns/ranges.json").unwrap();
    assert!(
        !ranges.contains(&format!("/{}\"", a.id)) && !ranges.contains(&format!("/{}\"", b.id)),
        "ranges not released: {ranges}"
    );
    // (Other tests' containers may hold idmapped mounts: look for these ones'.)
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for dir in [host.path(), a.bundle.path(), b.bundle.path()] {
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(
            !mounts
                .lines()
                .any(|l| l.contains(name) && l.contains("runvz.idmap")),
            "idmapped mounts of {name} left: {mounts}"
        );
    }
    assert!(
        a.bundle.rootfs_path().join("bin/busybox").exists(),
        "delete removed the rootfs through its mount"
    );
    assert!(root_file.exists() && volume.join("made").exists());

    // runvz.userns=host: the same container without a user namespace.
    let h = start("ush", Some("host"));
    let map = fs::read_to_string(format!("/proc/{}/uid_map", h.pid())).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"],
        "runvz.userns=host: {map}"
    );
    h.cmd(&["delete", "--force", &h.id]).ok();
    h.assert_no_leak();
}

/// A system container's helpers outlive `create` (the /proc view server):
/// none may keep a descriptor the caller handed to runvz, or a caller that
/// waits for EOF on its pipe (an engine's sync pipe) hangs as long as the
/// container lives.
#[test]
fn no_helper_keeps_the_callers_descriptors() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init("sysfd", out.path(), &[]);
    // A pipe whose write end runvz inherits (not close-on-exec).
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), 0) }, 0);
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: plain fcntl on a descriptor this test owns.
    unsafe { libc::fcntl(read_end, libc::F_SETFD, libc::FD_CLOEXEC) };
    c.run_detached();
    // SAFETY: closing this test's own copy.
    unsafe { libc::close(write_end) };
    wait_file(&out.path().join("environ"));
    let mut poll = libc::pollfd {
        fd: read_end,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, a bounded wait.
    let ready = unsafe { libc::poll(&mut poll, 1, 5000) };
    let mut byte = [0u8; 1];
    // SAFETY: reads at most one byte into `byte`.
    let eof = ready == 1 && unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) } == 0;
    // SAFETY: the test's own descriptor.
    unsafe { libc::close(read_end) };
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    assert!(
        eof,
        "the caller's pipe is still held open by a process runvz left running (poll: {ready})"
    );
}

/// numfile above the hard limit runvz itself runs with (a fresh VM's is
/// 4096): the limit is raised before the container's user namespace, where a
/// raise is still allowed (runc raises it from the parent), and the init gets
/// exactly the barrier and limit. Inside the user namespace the raise failed
/// with a bare "EPERM".
#[test]
fn numfile_above_the_callers_hard_limit_is_set_in_a_user_namespace() {
    if skip_for_runc() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init("sysrl", out.path(), &[("runvz.ubc.numfile", "8192:8192")]);
    // runvz runs with a hard NOFILE of 2048 (lowering needs no privilege).
    let mut run =
        c.rt.command(&["run", "-d", "-b", c.bundle.path_str(), &c.id]);
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut run, || {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 2048,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let run = run_command(&mut run, None, Duration::from_secs(30));
    if !has_cap_sys_resource() {
        // Some sandboxes give root no CAP_SYS_RESOURCE: then the raise is
        // refused before anything is made, with the reason.
        run.failed();
        assert!(
            run.stderr.contains("runvz.ubc.numfile") && run.stderr.contains("CAP_SYS_RESOURCE"),
            "{run}"
        );
        c.assert_no_leak();
        return;
    }
    run.ok();
    wait_file(&out.path().join("environ"));
    let limits = fs::read_to_string(format!("/proc/{}/limits", c.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| l.split_whitespace().skip(3).take(2).collect())
        .unwrap_or_default();
    assert_eq!(open_files, ["8192", "8192"], "the init's limits:\n{limits}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff).
fn has_cap_sys_resource() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}
