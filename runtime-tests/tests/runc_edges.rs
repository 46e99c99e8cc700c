//! Edges where callers notice a difference from runc: each case runs the same
//! steps under runc and under the runtime under test and compares what a caller
//! observes (exit status, runc's key phrase on stderr, the effect inside).
//! Skipped, visibly, where runc is absent or is the runtime under test.

use runtime_tests::*;
use std::time::Duration;

/// Runs `case` once with runc and once with the runtime under test, each with a
/// fresh container (`sleep 100`), and returns (runc's, ours) observations.
fn both(prefix: &str, case: impl Fn(&Ctx) -> Vec<String>) -> Option<(Vec<String>, Vec<String>)> {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("runc comparison: {why}"));
        return None;
    }
    if runtime_is_runc() {
        skip("runc comparison: the runtime under test is runc itself");
        return None;
    }
    let mut seen = Vec::new();
    for rt in [Runtime::runc(), Runtime::new()] {
        let ctx = Ctx::with_runtime(rt, prefix, &["sleep", "100"]);
        seen.push(case(&ctx));
        let _ = ctx.cmd(&["delete", "--force", &ctx.id]);
        ctx.assert_no_leak();
    }
    let ours = seen.pop().unwrap();
    Some((seen.pop().unwrap(), ours))
}

#[track_caller]
fn same(prefix: &str, case: impl Fn(&Ctx) -> Vec<String>) {
    if let Some((runc, ours)) = both(prefix, case) {
        assert_eq!(ours, runc, "runvz (left) differs from runc (right)");
    }
}

fn status(out: &Output) -> String {
    format!("exit {}", out.code)
}

#[test]
fn exec_into_a_created_container() {
    same("ee", |c| {
        c.create();
        let out = c.cmd(&["exec", &c.id, "echo", "in-created"]);
        vec![status(&out), out.stdout.clone()]
    });
}

#[test]
fn exec_cap_takes_runcs_capability_names() {
    same("ec", |c| {
        c.create_start();
        let out = c.cmd(&[
            "exec",
            "--cap",
            "CAP_SYSLOG",
            "--cap=CAP_KILL",
            &c.id,
            "grep",
            "^Cap",
            "/proc/self/status",
        ]);
        vec![status(&out), out.stdout.clone()]
    });
}

#[test]
fn kill_all_with_signal_zero() {
    same("ek", |c| {
        c.create_start();
        let out = c.cmd(&["kill", "--all", &c.id, "0"]);
        vec![status(&out), c.status().unwrap_or_default()]
    });
}

/// containerd's shim turns a failed kill into "already finished" only on
/// runc's words; anything else fails Kubernetes' StopPodSandbox.
#[test]
fn kill_of_an_exited_container_says_container_not_running() {
    same("ex", |c| {
        c.create_start();
        c.cmd(&["kill", &c.id, "KILL"]).ok();
        c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
        let out = c.cmd(&["kill", &c.id, "KILL"]);
        let all = c.cmd(&["kill", "--all", &c.id, "KILL"]);
        vec![
            status(&out),
            out.stderr.contains("container not running").to_string(),
            status(&all),
        ]
    });
}

#[test]
fn exec_process_json_without_user_runs_as_root() {
    same("ep", |c| {
        c.create_start();
        let dir = TempDir::new("proc");
        let file = dir.path().join("process.json");
        std::fs::write(
            &file,
            r#"{"args":["id","-u"],"cwd":"/","env":["PATH=/bin:/sbin"]}"#,
        )
        .unwrap();
        let out = c.cmd(&["exec", "--process", file.to_str().unwrap(), &c.id]);
        vec![status(&out), out.stdout.clone()]
    });
}

/// Hooks get the state on stdin and may exit without reading it: a runtime
/// killed by SIGPIPE there leaves a half-made container behind. Ten
/// create/start/delete cycles with every host-side hook `true`.
#[test]
fn hooks_that_do_not_read_their_stdin() {
    same("eh", |c| {
        let hook = serde_json::json!([{"path": "/bin/true", "args": ["true"]}]);
        let mut b = Bundle::new();
        b.args(&["true"]).cgroups_path(&c.cg);
        for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
            b.set(&format!("/hooks/{kind}"), hook.clone());
        }
        let mut seen = Vec::new();
        for _ in 0..10 {
            let create = c.cmd(&["create", "--bundle", b.path_str(), &c.id]);
            let start = c.cmd(&["start", &c.id]);
            c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
            let delete = c.cmd(&["delete", &c.id]);
            seen.push(format!(
                "{} {} {}",
                status(&create),
                status(&start),
                status(&delete)
            ));
        }
        seen
    });
}

/// `exec --cgroup` names an existing sub-cgroup; runc refuses a missing one
/// (and one that climbs out) and creates nothing.
#[test]
fn exec_into_a_missing_sub_cgroup_is_refused() {
    same("eg", |c| {
        c.create_start();
        let missing = c.cmd(&["exec", "--cgroup", "nonexistent", &c.id, "true"]);
        let climbing = c.cmd(&["exec", "--cgroup", "../../x", &c.id, "true"]);
        let created = Cgroup::new(&format!("{}/nonexistent", c.cg)).exists();
        vec![
            (missing.code != 0).to_string(),
            (climbing.code != 0).to_string(),
            format!("created: {created}"),
        ]
    });
}

/// An exec'd process is in the init's cgroup in every hierarchy.
#[test]
fn exec_lands_in_the_inits_cgroups() {
    same("ei", |c| {
        c.create_start();
        let out = c.cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "sort /proc/1/cgroup > /tmp/a; sort /proc/self/cgroup > /tmp/b; cmp /tmp/a /tmp/b && echo same",
        ]);
        vec![status(&out), out.stdout.clone()]
    });
}

/// Errors carry the word `error` and runc's key phrase for what failed (tools
/// and engines grep for both), never a library's internal message.
#[test]
fn errors_carry_runcs_key_phrases() {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("runc comparison: {why}"));
        return;
    }
    let cases: [Refusal; 3] = [
        (
            "a /proc that is a symlink",
            |b| {
                let proc_dir = b.rootfs_path().join("proc");
                let _ = std::fs::remove_dir_all(&proc_dir);
                std::os::unix::fs::symlink("/tmp", &proc_dir).unwrap();
            },
            "must be mounted on ordinary directory",
        ),
        (
            "a missing executable",
            |b| {
                b.args(&["/nonexistent"]);
            },
            "no such file or directory",
        ),
        (
            "a missing rootfs",
            |b| {
                b.set("/root/path", serde_json::json!("no-such-rootfs"));
            },
            "no-such-rootfs",
        ),
    ];
    each_refusal("er", &cases, |what, phrase, out| {
        assert_ne!(out.code, 0, "{what}: {out}");
        assert!(
            out.stderr.contains("error") && out.stderr.contains(phrase),
            "{what}: no 'error' or {phrase:?}: {out}"
        );
        for internal in ["youki", "ExecFailed", "BrokenChannel", "unexpected message"] {
            assert!(!out.stderr.contains(internal), "{what}: {internal}: {out}");
        }
    });
    for rt in [Runtime::runc(), Runtime::new()] {
        let out = rt.cmd(&["state", "no-such-container"]);
        assert!(
            out.code != 0 && out.stderr.contains("error") && out.stderr.contains("does not exist"),
            "{out}"
        );
    }
}

/// Bad configs runc refuses are refused, in runc's words, with nothing left
/// behind and never a panic.
#[test]
fn bad_process_and_namespaces_are_refused_like_runc() {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("runc comparison: {why}"));
        return;
    }
    let cases: [Refusal; 4] = [
        (
            "empty args",
            |b| {
                b.set("/process/args", serde_json::json!([]));
            },
            "args must not be empty",
        ),
        (
            "relative cwd",
            |b| {
                b.set("/process/cwd", serde_json::json!("tmp"));
            },
            "Cwd must be an absolute path",
        ),
        (
            "a namespace twice",
            |b| {
                b.patch(|c| {
                    c["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type": "pid"}))
                });
            },
            "duplicated ns",
        ),
        (
            "a rootfs behind a symlink",
            |b| {
                let real = b.path().join("rootfs.real");
                std::fs::rename(b.rootfs_path(), &real).unwrap();
                std::os::unix::fs::symlink(&real, b.rootfs_path()).unwrap();
            },
            "not an absolute path, or a symlink",
        ),
    ];
    each_refusal("bp", &cases, |what, phrase, out| {
        assert!(
            out.code == 1 && out.stderr.contains(phrase) && !out.stderr.contains("panicked"),
            "{what}: want exit 1 and {phrase:?}: {out}"
        );
    });
}

/// A bad bundle: what it is, how the default bundle is spoiled, runc's phrase.
type Refusal = (&'static str, fn(&mut Bundle), &'static str);

/// Runs each spoiled bundle in the foreground under runc and under the
/// runtime under test, hands every refusal to `check`, and requires that
/// nothing is left behind.
fn each_refusal(prefix: &str, cases: &[Refusal], check: impl Fn(&str, &str, &Output)) {
    for (what, setup, phrase) in cases {
        for rt in [Runtime::runc(), Runtime::new()] {
            let mut ctx = Ctx::with_runtime(rt, prefix, &["true"]);
            setup(&mut ctx.bundle);
            let out = ctx.run_fg(None, Duration::from_secs(30));
            check(what, phrase, &out);
            ctx.assert_no_leak();
        }
    }
}

/// Hooks get the state with the bundle the caller gave (OCI hooks read files
/// from it), and a createContainer hook runs in the rootfs.
#[test]
fn hooks_see_the_callers_bundle_and_the_rootfs() {
    same("hb", |c| {
        let out_dir = TempDir::new("hookout");
        let state = out_dir.path().join("state.json");
        let cwd = out_dir.path().join("cwd");
        let mut b = Bundle::new();
        b.args(&["true"]).cgroups_path(&c.cg);
        b.set(
            "/hooks/prestart",
            serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", state.display())]}]),
        );
        b.set(
            "/hooks/createContainer",
            serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("pwd > {}", cwd.display())]}]),
        );
        let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
        let seen: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap_or_default())
                .unwrap_or_default();
        let bundle = std::fs::canonicalize(b.path()).unwrap();
        let rootfs = std::fs::canonicalize(b.rootfs_path()).unwrap();
        let hook_cwd = std::fs::read_to_string(&cwd).unwrap_or_default();
        vec![
            status(&run),
            format!(
                "bundle is the caller's: {}",
                seen["bundle"].as_str() == Some(bundle.to_str().unwrap())
            ),
            format!(
                "createContainer cwd is the rootfs: {}",
                hook_cwd.trim() == rootfs.to_str().unwrap()
            ),
        ]
    });
}

/// A failing startContainer hook ends the container with runc's status and
/// words on its stderr (`start` has returned: nobody else can say it).
#[test]
fn a_failing_start_container_hook_is_reported() {
    same("hs", |c| {
        let mut b = Bundle::new();
        b.args(&["true"]).cgroups_path(&c.cg);
        b.set(
            "/hooks/startContainer",
            serde_json::json!([{"path": "/bin/false"}]),
        );
        let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
        vec![
            status(&run),
            format!("says so: {}", run.stderr.contains("error running")),
        ]
    });
}

/// The OCI spec's recursive rootfsPropagation values (containerd's CRI sends
/// rshared and rslave): the container runs and its root shows the same
/// propagation as under runc. (Left out: `shared`, which libcontainer makes
/// shared after pivot_root where runc leaves it private, and `[r]unbindable`,
/// which runc 1.1.5 fails with EINVAL.)
#[test]
fn rootfs_propagation_takes_the_recursive_forms() {
    for propagation in ["rshared", "rslave", "rprivate", "slave", "private"] {
        same("rp", |c| {
            let mut b = Bundle::new();
            b.cgroups_path(&c.cg);
            b.set("/linux/rootfsPropagation", serde_json::json!(propagation));
            b.args(&[
                "sh",
                "-c",
                "awk '$5 == \"/\" { for (i = 7; $i != \"-\"; i++) printf \"%s \", $i }' /proc/self/mountinfo | sed 's/:[0-9]*//g'",
            ]);
            let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
            vec![propagation.to_string(), status(&run), run.stdout.clone()]
        });
    }
}

/// A pre-existing frozen cgroup: the init would hang in it, unkillable, so
/// runc refuses it ("container's cgroup unexpectedly frozen"), and so must we
/// (runvz hung in D state). Nothing of the container may stay behind.
#[test]
fn a_frozen_pre_existing_cgroup_is_refused() {
    same("fz", |c| {
        let cg = c.cgroup();
        let (controller, file, frozen, thawed) = if cg.version().is_v2() {
            ("", "cgroup.freeze", "1", "0")
        } else {
            ("freezer", "freezer.state", "FROZEN", "THAWED")
        };
        std::fs::create_dir_all(cg.dir(controller)).unwrap();
        std::fs::write(cg.file(controller, file), frozen).unwrap();
        let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
        let _ = std::fs::write(cg.file(controller, file), thawed);
        let state = c.cmd(&["state", &c.id]);
        remove_cgroup(&c.cg);
        vec![
            status(&out),
            format!("says so: {}", out.stderr.contains("unexpectedly frozen")),
            format!("state after: {}", status(&state)),
        ]
    });
}

/// A pre-existing cgroup with a process in it: runc warns and goes on.
#[test]
fn a_non_empty_pre_existing_cgroup_gets_a_warning() {
    same("ne", |c| {
        let cg = c.cgroup();
        let controller = if cg.version().is_v2() { "" } else { "devices" };
        std::fs::create_dir_all(cg.dir(controller)).unwrap();
        let mut squatter = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        std::fs::write(
            cg.file(controller, "cgroup.procs"),
            squatter.id().to_string(),
        )
        .unwrap();
        let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
        let _ = squatter.kill();
        let _ = squatter.wait();
        vec![
            status(&out),
            format!(
                "warns: {}",
                out.stderr
                    .contains("container's cgroup is not empty: 1 process(es) found")
            ),
        ]
    });
}

/// `linux.resources.unified` cannot be honoured on cgroup v1: refused, as
/// runc does, rather than silently ignored.
#[test]
fn unified_resources_on_cgroup_v1_are_refused() {
    if skip_unless_cgroup_v1() {
        return;
    }
    same("un", |c| {
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg);
        b.set(
            "/linux/resources/unified",
            serde_json::json!({"memory.max": "100000000"}),
        );
        let out = c.cmd(&["create", "--bundle", b.path_str(), &c.id]);
        vec![
            status(&out),
            format!(
                "says so: {}",
                out.stderr.contains("cannot use unified on cgroup v1")
            ),
        ]
    });
}

/// `events` reports each OOM kill in the container as `{"type":"oom","id":…}`
/// (callers such as containerd turn it into a TaskOOM event).
#[test]
fn events_reports_an_oom_kill() {
    same("oo", |c| {
        let mut b = Bundle::new();
        b.args(&["sleep", "100"]).cgroups_path(&c.cg);
        b.set(
            "/linux/resources/memory",
            serde_json::json!({"limit": 33554432, "swap": 33554432}),
        );
        c.cmd(&["run", "--detach", "--bundle", b.path_str(), &c.id])
            .ok();
        let mut events =
            c.rt.command(&["events", "--interval", "1s", &c.id])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let hog = c.cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "head -c 200000000 /dev/zero | sort >/dev/null",
        ]);
        std::thread::sleep(Duration::from_millis(1500));
        let _ = events.kill();
        let out = events.wait_with_output().unwrap();
        let lines = String::from_utf8_lossy(&out.stdout).to_string();
        let oom = format!("{{\"type\":\"oom\",\"id\":\"{}\"}}", c.id);
        vec![
            format!("hog killed: {}", hog.code != 0),
            format!("oom event: {}", lines.lines().any(|l| l == oom)),
        ]
    });
}

/// What a process sees of its terminal: the owner of its pty (`--user`'s
/// uid, the tty group kept) and its size (`consoleSize`), read from the pty
/// master handed over the console socket.
fn pty_view(c: &Ctx, args: &[&str]) -> String {
    use std::io::Read;
    let dir = TempDir::new("tty");
    let sock = dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    let mut full: Vec<&str> = args.to_vec();
    let sock_str = sock.to_str().unwrap();
    full.splice(1..1, ["--console-socket", sock_str]);
    let out = c.cmd(&full);
    if out.code != 0 {
        return format!("{}: {}", status(&out), out.stderr.trim());
    }
    let mut master = std::fs::File::from(receiver.join().unwrap());
    if args[0] == "create" {
        c.cmd(&["start", &c.id]).ok();
    }
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&text).contains("END") {
            break;
        }
    }
    // Up to the probe's END: the newline after it may still be on its way.
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    match text.find("END") {
        Some(end) => text[..end + 3].to_string(),
        None => text,
    }
}

const TTY_PROBE: &str = "stat -c 'owner %u:%g' \"$(tty)\"; stty size; echo END";

/// `exec -t --user 1000:100`: the pty belongs to uid 1000 (runc's
/// fixStdioPermissions), so the process can use its own terminal.
#[test]
fn exec_tty_belongs_to_the_exec_user() {
    same("tu", |c| {
        c.create_start();
        vec![pty_view(
            c,
            &[
                "exec", "-t", "-d", "--user", "1000:100", &c.id, "sh", "-c", TTY_PROBE,
            ],
        )]
    });
}

/// `process.consoleSize` sizes the pty, for the init and for an exec'd
/// process (`exec --process`).
#[test]
fn console_size_is_honoured() {
    same("tz", |c| {
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg).terminal(true);
        b.args(&["sh", "-c", &format!("{TTY_PROBE}; sleep 100")]);
        b.set(
            "/process/consoleSize",
            serde_json::json!({"height": 37, "width": 111}),
        );
        let init = pty_view(c, &["create", "--bundle", b.path_str(), &c.id]);
        let dir = TempDir::new("proc");
        let file = dir.path().join("process.json");
        std::fs::write(
            &file,
            serde_json::json!({
                "terminal": true, "args": ["sh", "-c", TTY_PROBE], "cwd": "/",
                "env": ["PATH=/bin:/sbin"], "user": {"uid": 0, "gid": 0},
                "consoleSize": {"height": 21, "width": 77}
            })
            .to_string(),
        )
        .unwrap();
        let exec = pty_view(
            c,
            &["exec", "-d", "--process", file.to_str().unwrap(), &c.id],
        );
        vec![init, exec]
    });
}

/// With `--no-pivot` the host's mounts stay reachable behind the chroot: a
/// full procfs anywhere on the host (here one the test mounts) would let the
/// container mount a fresh, unmasked procfs from a new user namespace. runc
/// hides every such mount first; the host's mount itself is untouched.
#[test]
fn no_pivot_leaves_no_procfs_to_remount() {
    let host_proc = TempDir::new("hostproc");
    let target = host_proc.path().to_str().unwrap().to_string();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "proc", "proc", &target])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        skip("cannot mount a procfs on the host for the probe");
        return;
    }
    // Unmounted however the test ends (before its directory goes).
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(target.clone());
    same("np", |c| {
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg);
        b.patch(|cfg| {
            for set in ["bounding", "effective", "permitted"] {
                let caps = cfg["process"]["capabilities"][set].as_array_mut().unwrap();
                for cap in ["CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN"] {
                    caps.push(serde_json::json!(cap));
                }
            }
        });
        b.args(&[
            "sh",
            "-c",
            "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED'; true",
        ]);
        let run = c.cmd(&["run", "--no-pivot", "--bundle", b.path_str(), &c.id]);
        let host_still_mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!(" {target} "));
        vec![
            status(&run),
            format!("fresh procfs mounted: {}", run.stdout.contains("MOUNTED")),
            format!("host's procfs still mounted: {host_still_mounted}"),
        ]
    });
}

/// `update` of the CPU period and quota in a pod whose own quota caps its
/// children (cgroup v1 refuses a period whose old quota would exceed the
/// pod's ratio): runc then writes the quota first. On v2 both go in one write
/// and the pod is left unlimited.
#[test]
fn update_of_the_cpu_period_inside_a_limited_pod() {
    same("up", |c| {
        let pod = c.cgroup();
        if pod.version().is_v1() {
            std::fs::create_dir_all(pod.dir("cpu")).unwrap();
            std::fs::write(pod.file("cpu", "cpu.cfs_quota_us"), "50000").unwrap();
        }
        let ctr = format!("{}/ctr", c.cg);
        let mut b = Bundle::new();
        b.args(&["sleep", "100"]).cgroups_path(&ctr);
        b.set(
            "/linux/resources/cpu",
            serde_json::json!({"quota": 50000, "period": 100000}),
        );
        let mut seen = vec![status(&c.cmd(&[
            "run",
            "--detach",
            "--bundle",
            b.path_str(),
            &c.id,
        ]))];
        for (period, quota) in [("50000", "25000"), ("200000", "100000")] {
            let out = c.cmd(&[
                "update",
                "--cpu-period",
                period,
                "--cpu-quota",
                quota,
                &c.id,
            ]);
            let cg = Cgroup::new(&ctr);
            let now = if cg.version().is_v1() {
                format!(
                    "{} {}",
                    cg.read("cpu", "cpu.cfs_quota_us").unwrap_or_default(),
                    cg.read("cpu", "cpu.cfs_period_us").unwrap_or_default()
                )
            } else {
                cg.read("", "cpu.max").unwrap_or_default()
            };
            seen.push(format!("{period}/{quota}: {} → {now}", status(&out)));
        }
        c.cmd(&["delete", "--force", &c.id]).ok();
        remove_cgroup(&c.cg);
        seen
    });
}

/// A user-namespaced container with a bind mount whose source its mapped
/// root cannot reach by path (a 0700 directory of the host's root on the
/// way): runc opens the source before joining the user namespace and runs;
/// the container then sees the mount (and the kernel's permission checks in
/// it) as under runc.
/// Both with one range (root is host uid 100000, which the 0700 directory
/// keeps out) and with several (root is host root: runc writes all ranges
/// itself, without newuidmap).
#[test]
fn userns_bind_mount_of_a_source_the_mapped_root_cannot_reach() {
    let one_range = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let two_ranges = serde_json::json!([
        {"containerID": 0, "hostID": 0, "size": 1},
        {"containerID": 1, "hostID": 100000, "size": 65536}
    ]);
    for mapping in [one_range, two_ranges] {
        userns_bind_mount_with(&mapping);
    }
}

fn userns_bind_mount_with(mapping: &serde_json::Value) {
    same("ub", |c| {
        let host = TempDir::new("ubsrc");
        let private = host.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::write(private.join("f"), "HELLO").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg);
        b.patch(|cfg| {
            cfg["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            cfg["linux"]["uidMappings"] = mapping.clone();
            cfg["linux"]["gidMappings"] = mapping.clone();
            cfg["mounts"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "destination": "/mnt/p", "type": "bind",
                    "source": private.to_str().unwrap(), "options": ["rbind", "ro"]
                }));
        });
        b.args(&[
            "sh",
            "-c",
            "cat /mnt/p/f; echo; touch /mnt/p/new 2>&1 | grep -o 'Read-only'",
        ]);
        let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
        vec![status(&run), run.stdout.clone()]
    });
}

/// Device cgroup rules as runc applies them (cgroup v1's devices.list shows
/// the result): from "deny everything", so a config that only denies one
/// device does not leave all others open; an access string with letters the
/// kernel does not know keeps the ones it does (`rwa` → `rw`). (libcgroups
/// also allows /dev/console, c 5:1, which runc 1.1.5 does not: left out of
/// the comparison, named in the closing note.)
#[test]
fn device_rules_start_from_deny_all() {
    if skip_unless_cgroup_v1() {
        return;
    }
    let configs = [
        serde_json::json!([{"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]),
        serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}
        ]),
    ];
    for rules in configs {
        same("dr", |c| {
            let mut b = Bundle::new();
            b.args(&["sleep", "100"]).cgroups_path(&c.cg);
            b.set("/linux/resources/devices", rules.clone());
            let run = c.cmd(&["run", "--detach", "--bundle", b.path_str(), &c.id]);
            let mut list: Vec<String> = c
                .cgroup()
                .read("devices", "devices.list")
                .unwrap_or_default()
                .lines()
                .filter(|l| *l != "c 5:1 rwm")
                .map(String::from)
                .collect();
            list.sort();
            vec![status(&run), list.join(", ")]
        });
    }
}
// ---------------------------------------------------------------------------
// Seccomp: default errno, -ENOSYS for calls the profile does not know, agents
// ---------------------------------------------------------------------------

/// `helpers/sysprobe.rs`, built static by build.rs: makes the system calls
/// busybox cannot (an unknown number, clone3, a thread) and prints the errno.
const SYSPROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sysprobe"));

fn put_sysprobe(b: &Bundle) {
    use std::os::unix::fs::PermissionsExt;
    let path = b.rootfs_path().join("bin/sysprobe");
    std::fs::write(&path, SYSPROBE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// What runc's and runvz's inits, busybox `sh`/`mkdir` and the static probe
/// call from the moment the filter is loaded (early, before the capabilities
/// are dropped, without noNewPrivileges) until the probe's output is written.
/// All numbered below 435 (clone3): the largest is `rseq` (334).
const SECCOMP_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "connect",
    "dup2",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "fchdir",
    "fchmod",
    "fchown",
    "fcntl",
    "fork",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "ioctl",
    "kill",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "prlimit64",
    "pselect6",
    "read",
    "readlink",
    "readlinkat",
    "recvfrom",
    "recvmsg",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "select",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setpgid",
    "setresgid",
    "setresuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "sigaltstack",
    "socket",
    "stat",
    "statfs",
    "statx",
    "sysinfo",
    "tgkill",
    "time",
    "times",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "wait4",
    "write",
    "writev",
];

/// A profile that denies by default: `defaultAction` SCMP_ACT_ERRNO with
/// `defaultErrnoRet` (runvz's init failed to load it when noNewPrivileges
/// was false: "failed to load seccomp context"). A denied mkdir must answer
/// the profile's errno, with and without noNewPrivileges.
#[test]
fn seccomp_default_errno_ret_applies() {
    for (nnp, errno) in [(true, 1), (false, 1), (true, 95), (false, 95), (false, 38)] {
        same("sd", |c| {
            let mut b = Bundle::new();
            b.cgroups_path(&c.cg);
            b.set("/process/noNewPrivileges", serde_json::json!(nnp));
            // runc's Go finds the program with faccessat2 (falling back only
            // on ENOSYS and EPERM) and closes fds with close_range.
            let mut allowed = SECCOMP_ALLOWED.to_vec();
            allowed.extend(["close_range", "faccessat2"]);
            b.set(
                "/linux/seccomp",
                serde_json::json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "defaultErrnoRet": errno,
                    "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
                }),
            );
            b.args(&["sh", "-c", "mkdir /tmp/denied; echo mkdir=$?"]);
            let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
            vec![
                format!("noNewPrivileges {nnp}, defaultErrnoRet {errno}"),
                status(&run),
                run.stdout.clone(),
                run.stderr.trim().to_string(),
            ]
        });
    }
}

/// runc's -ENOSYS stub: with a denying default, a system call whose number is
/// above every call the profile names (on an architecture it lists) answers
/// ENOSYS, so C libraries fall back (glibc's threads: clone3, then clone).
/// Calls below that keep the default errno. Profiles: an "old" one (its
/// largest call, rseq, is below clone3), a newer one that names faccessat2
/// (439) but not clone3, Docker's style (clone3 listed with errnoRet ENOSYS),
/// and one without architectures (runc makes no stub then).
#[test]
fn seccomp_unknown_syscalls_answer_enosys() {
    let old: Vec<&str> = SECCOMP_ALLOWED.to_vec();
    let mut newer = old.clone();
    newer.extend(["close_range", "faccessat2"]);
    let archs = serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let cases = [
        (
            "old profile",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": archs,
                "syscalls": [{"names": old, "action": "SCMP_ACT_ALLOW"}]
            }),
        ),
        (
            "newer profile without clone3",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": archs,
                "syscalls": [{"names": newer, "action": "SCMP_ACT_ALLOW"}]
            }),
        ),
        (
            "Docker style: clone3 answers ENOSYS",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": archs,
                "syscalls": [
                    {"names": newer, "action": "SCMP_ACT_ALLOW"},
                    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
                ]
            }),
        ),
        (
            "no architectures",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": old, "action": "SCMP_ACT_ALLOW"}]
            }),
        ),
    ];
    for (what, profile) in cases {
        same("su", |c| {
            let mut b = Bundle::new();
            b.cgroups_path(&c.cg);
            put_sysprobe(&b);
            b.set("/linux/seccomp", profile.clone());
            b.args(&[
                "/bin/sysprobe",
                "1000",
                "500",
                "clone3",
                "thread",
                "mkdir:/tmp/p",
            ]);
            let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
            vec![what.to_string(), status(&run), run.stdout.clone()]
        });
    }
}

// The seccomp user-notification ioctls (<linux/seccomp.h>).
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// `struct seccomp_notif`: filled by the kernel (only `id` and `nr` are read).
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// The state message and the fd of one agent connection (OCI's seccomp agent
/// protocol: one message, the fd by SCM_RIGHTS).
fn receive_state(
    stream: &std::os::unix::net::UnixStream,
) -> (serde_json::Value, std::os::fd::OwnedFd) {
    let (data, fd) = receive_with_fd(stream, 1 << 16);
    assert!(!data.is_empty(), "the agent got an empty message");
    let state = serde_json::from_slice(&data).expect("the state is one JSON message");
    (state, fd)
}

/// Answers the notifications on `fd` until the filter's processes are gone
/// (or 20 s pass): the first with EPROTO, the next with success (0), and so
/// on, reporting each to `tx`.
fn answer_notifications(fd: std::os::fd::OwnedFd, tx: std::sync::mpsc::Sender<String>) {
    use std::os::fd::AsRawFd;
    for n in 0.. {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 20_000) };
        if ready <= 0 || pfd.revents & libc::POLLIN == 0 {
            return;
        }
        let mut req = SeccompNotif::default();
        // SAFETY: the kernel fills `req`, sized as the ioctl says.
        if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            return;
        }
        let (error, said) = if n % 2 == 0 {
            (-libc::EPROTO, "EPROTO")
        } else {
            (0, "success")
        };
        let resp = SeccompNotifResp {
            id: req.id,
            val: 0,
            error,
            flags: 0,
        };
        // SAFETY: a complete response for the request just received.
        let sent = unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        let _ = tx.send(format!(
            "syscall {} answered {said} (sent: {})",
            req.nr,
            sent == 0
        ));
    }
}

/// Where a test's seccomp agent listens.
enum AgentAt {
    Path(std::path::PathBuf),
    /// An abstract socket (`listenerPath` `@name`).
    Abstract(String),
}

/// A seccomp agent: for every connection it reports what the runtime sent
/// (checked against `id`, `bundle` and the metadata, as strings that do not
/// depend on the runtime) and then answers the notifications.
fn start_agent(
    at: &AgentAt,
    id: &str,
    bundle: &std::path::Path,
) -> std::sync::mpsc::Receiver<String> {
    use std::os::linux::net::SocketAddrExt;
    let listener = match at {
        AgentAt::Path(path) => std::os::unix::net::UnixListener::bind(path).unwrap(),
        AgentAt::Abstract(name) => std::os::unix::net::UnixListener::bind_addr(
            &std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap(),
        )
        .unwrap(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let id = id.to_string();
    let bundle = std::fs::canonicalize(bundle).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (state, fd) = receive_state(&stream);
            let pid = state["pid"].as_i64().unwrap_or(0);
            let init = state["state"]["pid"].as_i64().unwrap_or(-1);
            let _ = tx.send(format!(
                "connection: ociVersion {}, fds {}, metadata {}, status {}, id ok {}, bundle ok {}, pid is the init {}, pid alive {}",
                state["ociVersion"].is_string(),
                state["fds"],
                state["metadata"],
                state["state"]["status"],
                state["state"]["id"].as_str() == Some(id.as_str()),
                state["state"]["bundle"].as_str() == bundle.to_str(),
                pid == init,
                process_alive(pid as i32),
            ));
            let tx = tx.clone();
            std::thread::spawn(move || answer_notifications(fd, tx));
        }
    });
    rx
}

fn notify_profile(listener: &str) -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener,
        "listenerMetadata": "runvz-test-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// Everything the agent reported within `wait` after the last report.
fn agent_reports(rx: &std::sync::mpsc::Receiver<String>, wait: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(wait) {
        seen.push(line);
    }
    seen
}

/// `linux.seccomp.listenerPath`: the runtime connects to the agent, sends the
/// container process state and the notify fd, and the agent's answers are
/// what the container's calls return (EPROTO, then a success that made no
/// directory). The path may be absolute, relative (to the bundle: runc
/// connects from inside it) or `@name` (an abstract socket, as Go reads it);
/// runvz failed the last two with "failed seccomp listener". With no agent
/// listening, create fails in runc's words.
#[test]
fn seccomp_agent_answers_notified_syscalls() {
    for form in ["absolute", "relative", "abstract"] {
        same("sa", |c| {
            let dir = TempDir::new("agent");
            let mut b = Bundle::new();
            b.cgroups_path(&c.cg);
            let (listener_path, at) = match form {
                "absolute" => {
                    let path = dir.path().join("agent.sock");
                    (path.display().to_string(), AgentAt::Path(path))
                }
                "relative" => (
                    "agent.sock".to_string(),
                    AgentAt::Path(b.path().join("agent.sock")),
                ),
                _ => {
                    let name = format!("runvz-test-agent-{}", c.id);
                    (format!("@{name}"), AgentAt::Abstract(name))
                }
            };
            let rx = start_agent(&at, &c.id, b.path());
            b.set("/linux/seccomp", notify_profile(&listener_path));
            b.args(&[
                "sh",
                "-c",
                "mkdir /tmp/a; echo a=$?; mkdir /tmp/b; echo b=$?; test -d /tmp/b || echo no-b",
            ]);
            let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
            let mut seen = vec![
                form.to_string(),
                status(&run),
                run.stdout.clone(),
                run.stderr.trim().to_string(),
            ];
            seen.extend(agent_reports(&rx, Duration::from_millis(500)));
            seen
        });
    }
    same("sn", |c| {
        let dir = TempDir::new("agent");
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg);
        let missing = dir.path().join("nobody-listens.sock");
        b.set(
            "/linux/seccomp",
            notify_profile(&missing.display().to_string()),
        );
        b.args(&["true"]);
        let run = c.cmd(&["run", "--bundle", b.path_str(), &c.id]);
        vec![
            status(&run),
            format!(
                "says so: {}",
                run.stderr.contains(
                    "failed to connect with seccomp agent specified in the seccomp profile"
                )
            ),
        ]
    });
}

/// `exec` into a container whose profile has a listener: runc connects to the
/// agent again with the exec'd process's notify fd (state: the container's
/// status and init pid, `pid`: the new process) and the agent answers it.
#[test]
fn seccomp_agent_answers_an_exec() {
    same("sx", |c| {
        let dir = TempDir::new("agent");
        let mut b = Bundle::new();
        b.cgroups_path(&c.cg);
        let path = dir.path().join("agent.sock");
        let rx = start_agent(&AgentAt::Path(path.clone()), &c.id, b.path());
        b.set(
            "/linux/seccomp",
            notify_profile(&path.display().to_string()),
        );
        b.args(&["sleep", "100"]);
        let run = c.cmd(&["run", "--detach", "--bundle", b.path_str(), &c.id]);
        let mut seen = vec![status(&run)];
        seen.extend(agent_reports(&rx, Duration::from_millis(300)));
        let exec = c.cmd(&["exec", &c.id, "sh", "-c", "mkdir /tmp/e; echo e=$?"]);
        seen.extend([
            status(&exec),
            exec.stdout.clone(),
            exec.stderr.trim().to_string(),
        ]);
        seen.extend(agent_reports(&rx, Duration::from_millis(500)));
        seen
    });
}

/// A profile that forbids socket I/O (accept, recvmsg, sendmsg…): runc's init
/// makes none of those calls once the filter is in, so the container runs;
/// runvz's waited for `start` on a socket under the filter and died.
#[test]
fn a_profile_without_socket_calls_still_starts() {
    same("sk", |c| {
        let mut b = Bundle::new();
        b.args(&["echo", "started"]).cgroups_path(&c.cg);
        b.set(
            "/linux/seccomp",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{
                    "names": ["accept", "accept4", "recvmsg", "recvfrom", "sendmsg", "sendto", "connect"],
                    "action": "SCMP_ACT_ERRNO"
                }]
            }),
        );
        let create = c.cmd(&["create", "--bundle", b.path_str(), &c.id]);
        let start = c.cmd(&["start", &c.id]);
        c.rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
        vec![status(&create), status(&start)]
    });
}
