//! Escapes: real attacks by a hostile image, config.json or tenant against the
//! host (DESIGN.md, "Trust boundaries").
//!
//! Every attack runs under runc (the reference, when it is installed and is not
//! the runtime under test) and then under the runtime under test. Each test
//! makes a *victim* on the host (a directory in a TempDir holding files of known
//! contents and modes), points the attack at it, and asserts afterwards that
//! the victim is byte-for-byte and mode-for-mode what it was, that no host
//! mount mentions it, and that the container got either a clean error or a
//! contained result (runc is the reference for which of the two; where a test
//! states its expectation, that expectation also holds for runc).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runtime_tests::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// The victim and the runtimes
// ---------------------------------------------------------------------------

const HOST_SECRET: &str = "host-secret-do-not-touch\n";
const HOST_HOSTS: &str = "127.0.0.1 host-only-hosts-file\n";
const HOST_NESTED: &str = "host-nested-do-not-touch\n";

/// A directory on the host that attacks aim at: `secret` (0640), `hosts`
/// (0644), `sub/` (0750) and `sub/nested` (0600), all of known contents.
struct Victim {
    dir: TempDir,
}

impl Victim {
    fn new() -> Victim {
        let dir = TempDir::new("victim");
        let p = dir.path();
        let write = |rel: &str, text: &str, mode: u32| {
            fs::write(p.join(rel), text).unwrap();
            fs::set_permissions(p.join(rel), fs::Permissions::from_mode(mode)).unwrap();
        };
        fs::create_dir(p.join("sub")).unwrap();
        write("secret", HOST_SECRET, 0o640);
        write("hosts", HOST_HOSTS, 0o644);
        write("sub/nested", HOST_NESTED, 0o600);
        fs::set_permissions(p.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        Victim { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 victim path")
    }

    /// The victim's absolute path relative to `/` (no leading slash).
    fn rel(&self) -> &str {
        self.path_str().trim_start_matches('/')
    }

    /// Every entry (the directory itself included): type, mode, owner, size and
    /// contents (or link target).
    fn snapshot(&self) -> BTreeMap<String, String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            let rel = dir
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let md = match fs::symlink_metadata(dir) {
                Ok(m) => m,
                Err(e) => {
                    out.insert(rel, format!("unreadable: {e}"));
                    return;
                }
            };
            let head = format!(
                "mode={:o} uid={} gid={} size={}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.len()
            );
            if md.file_type().is_symlink() {
                let t = fs::read_link(dir).unwrap_or_default();
                out.insert(rel, format!("{head} link->{}", t.display()));
            } else if md.is_dir() {
                out.insert(rel, format!("{head} dir"));
                let mut names: Vec<PathBuf> = fs::read_dir(dir)
                    .map(|rd| rd.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                names.sort();
                for p in names {
                    walk(root, &p, out);
                }
            } else {
                let text = fs::read(dir).unwrap_or_default();
                out.insert(
                    rel,
                    format!("{head} file {:?}", String::from_utf8_lossy(&text)),
                );
            }
        }
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }

    /// Panic unless the victim is exactly `before` and nothing is mounted on
    /// or under it in the host's mount table.
    #[track_caller]
    fn assert_untouched(&self, before: &BTreeMap<String, String>, what: &str) {
        let after = self.snapshot();
        if &after != before {
            let mut diff = Vec::new();
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for k in keys {
                let (b, a) = (before.get(k), after.get(k));
                if b != a {
                    diff.push(format!("  /{k}:\n    before {b:?}\n    after  {a:?}"));
                }
            }
            panic!(
                "{what}: the host victim {} was changed:\n{}",
                self.path().display(),
                diff.join("\n")
            );
        }
        let mounts = host_mounts_matching(self.path_str());
        assert!(
            mounts.is_empty(),
            "{what}: host mounts on the victim {}: {mounts:?}",
            self.path().display()
        );
    }
}

/// The runtimes an attack runs under: runc first (the reference) when it is
/// installed and is not the runtime under test, then the runtime under test.
fn runtimes() -> Vec<Runtime> {
    let mut v = Vec::new();
    if runtime_is_runc() {
        // The runtime under test is runc itself: once is enough.
    } else if let Some(why) = runc_unavailable_reason() {
        report(&format!("runc comparison skipped: {why}"));
    } else {
        v.push(Runtime::runc());
    }
    v.push(Runtime::new());
    v
}

fn label(rt: &Runtime) -> String {
    rt.bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| rt.bin.display().to_string())
}

/// Skip runvz-only tests (beancounters, runvz annotations) under runc.
fn skip_for_runc() -> bool {
    if runtime_reports_runc() {
        skip("runvz-only: runc has no beancounters and ignores runvz.* annotations");
        return true;
    }
    false
}

/// What the container is expected to do with a hostile input.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Start and run to the end (its script exits 0), contained.
    Start,
    /// Refused with a clean error.
    Refuse,
    /// Either of the two.
    Either,
}

/// A clean error: non-zero exit, a message on stderr, no timeout, no crash.
#[track_caller]
fn assert_clean_error(out: &Output, what: &str) {
    assert!(!out.timed_out, "{what}: timed out:\n{out}");
    assert!(
        out.code != 0,
        "{what}: succeeded, expected a refusal:\n{out}"
    );
    // 129..=192: killed by a signal (runc's own errors exit 1 or 255).
    assert!(
        out.code > 0 && !(129..=192).contains(&out.code),
        "{what}: crashed (exit {}), expected a clean error:\n{out}",
        out.code
    );
    assert!(
        !out.stderr.trim().is_empty(),
        "{what}: failed with nothing on stderr:\n{out}"
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{what}: the runtime panicked:\n{out}"
    );
}

#[track_caller]
fn assert_outcome(want: Want, out: &Output, what: &str) {
    match want {
        Want::Start => {
            if !out.success() {
                panic!("{what}: expected the container to start and finish (as runc does):\n{out}");
            }
        }
        Want::Refuse => assert_clean_error(out, what),
        Want::Either => {
            if !out.success() {
                assert_clean_error(out, what);
            }
        }
    }
}

/// Write an executable file into a rootfs.
fn write_exe(rootfs: &Path, rel: &str, text: &str) {
    let p = rootfs.join(rel);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn symlink(target: &str, at: &Path) {
    let _ = fs::remove_file(at);
    std::os::unix::fs::symlink(target, at)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", at.display()));
}

/// What a hostile container does to a path that should be its own mount: write,
/// truncate, chmod, delete and mkdir through it, then report where its mounts
/// are (`MOUNT-AT <point> <type>` for every mount at or under the victim's
/// path as seen inside the container).
fn vandalise(dest: &str, victim: &Victim) -> String {
    // Each step in its own subshell: a failed redirection must not end the script.
    format!(
        "D={dest}; \
         (echo pwned > $D/secret); (echo pwned > $D/hosts); (echo pwned > $D/new); \
         (: > $D/sub/nested); chmod 777 $D/secret $D/sub; rm -f $D/hosts; mkdir -p $D/sub/evil; \
         ls -la $D/ ; \
         awk -v v={v} 'index($2, v) == 1 {{ print \"MOUNT-AT\", $2, $3 }}' /proc/self/mounts; \
         echo attack-done",
        v = victim.path_str()
    )
}

/// Run an attack bundle in the foreground under each runtime, with a fresh
/// victim each time: `setup` makes the bundle hostile, `script` is what the
/// container runs, `check` inspects a started container's output. After each
/// run the victim must be untouched and nothing left behind.
fn attack(
    prefix: &str,
    want: Want,
    setup: impl Fn(&mut Bundle, &Victim),
    script: impl Fn(&Victim) -> String,
    check: impl Fn(&Output, &Victim, &str),
) {
    for rt in runtimes() {
        let name = label(&rt);
        let victim = Victim::new();
        let before = victim.snapshot();
        let mut c = Ctx::with_runtime(rt, prefix, &["true"]);
        setup(&mut c.bundle, &victim);
        c.bundle.args(&["sh", "-c", &script(&victim)]);
        let out = c.run_fg(None, Duration::from_secs(60));
        report(&format!(
            "{prefix} under {name}: exit {} {}",
            out.code,
            if out.success() {
                "(started)".to_string()
            } else {
                format!(
                    "(refused: {})",
                    out.stderr.trim().lines().last().unwrap_or("")
                )
            }
        ));
        assert_outcome(want, &out, &format!("{prefix} under {name}"));
        // The host first: that is the escape; then what the container saw.
        victim.assert_untouched(&before, &format!("{prefix} under {name}"));
        if out.success() {
            check(&out, &victim, &name);
        }
        c.assert_no_leak();
    }
}

/// A started container's mount must be inside it, at the path its symlink
/// names inside the rootfs.
#[track_caller]
fn assert_mount_inside(out: &Output, at: &str, fstype: Option<&str>, what: &str) {
    let hit = out.stdout.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 3 && f[0] == "MOUNT-AT" && f[1] == at && fstype.is_none_or(|t| f[2] == t)
    });
    assert!(
        hit,
        "{what}: no {} mount at {at} inside the container (the mount went elsewhere):\n{out}",
        fstype.unwrap_or("")
    );
}

fn tmpfs(dest: &str, extra: &[&str]) -> Value {
    let mut options = vec!["nosuid", "nodev", "mode=755"];
    options.extend_from_slice(extra);
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

fn bind(source: &Path, dest: &str) -> Value {
    json!({"destination": dest, "type": "bind", "source": source, "options": ["rbind", "rw"]})
}

// ---------------------------------------------------------------------------
// Symlinks as mount destinations
// ---------------------------------------------------------------------------

#[test]
fn tmpfs_on_absolute_symlink_to_host_dir() {
    attack(
        "esc-tmpfs",
        Want::Start,
        |b, v| {
            symlink(v.path_str(), &b.rootfs_path().join("data"));
            b.add_mount(tmpfs("/data", &[]));
        },
        |v| vandalise("/data", v),
        |out, v, what| assert_mount_inside(out, v.path_str(), Some("tmpfs"), what),
    );
}

#[test]
fn bind_under_absolute_symlink_to_host_dir() {
    let src = TempDir::new("bindsrc");
    fs::write(src.path().join("from-source"), "bound\n").unwrap();
    attack(
        "esc-bind",
        Want::Start,
        |b, v| {
            symlink(v.path_str(), &b.rootfs_path().join("data"));
            // A missing component under the symlink: a runtime that resolved
            // it on the host would mkdir inside the victim.
            b.add_mount(bind(src.path(), "/data/newdir"));
        },
        |_| {
            "ls /data/newdir/from-source && echo pwned > /data/newdir/written-in-source && \
             awk '{print \"MOUNT-AT\", $2, $3}' /proc/self/mounts; echo attack-done"
                .to_string()
        },
        |out, v, what| {
            assert_mount_inside(out, &format!("{}/newdir", v.path_str()), None, what);
        },
    );
}

/// What `podman run --tmpfs /data` sends: a tmpfs with `tmpcopyup`, here on a
/// symlink to a host directory that has no counterpart in the image. runc puts
/// the tmpfs inside the rootfs at the symlink's target; the runtime must too.
#[test]
fn tmpcopyup_tmpfs_on_absolute_symlink_to_host_dir() {
    attack(
        "esc-tcu",
        Want::Start,
        |b, v| {
            symlink(v.path_str(), &b.rootfs_path().join("data"));
            b.add_mount(tmpfs("/data", &["tmpcopyup"]));
        },
        |v| vandalise("/data", v),
        |out, v, what| {
            assert_mount_inside(out, v.path_str(), Some("tmpfs"), what);
            assert!(
                !out.stdout.contains("host-secret") && !out.stdout.contains("host-only-hosts"),
                "{what}: host files were copied up into the container:\n{out}"
            );
        },
    );
}

/// The known truncation bug: the image holds `/data -> <victim>` *and* a
/// directory at `<rootfs>/<victim>` with files of the same names. A tmpcopyup
/// tmpfs on /data must copy the image's files, and the host's must keep their
/// contents.
#[test]
fn tmpcopyup_on_symlink_with_mirrored_dir_keeps_host_files() {
    attack(
        "esc-tcm",
        Want::Start,
        |b, v| {
            let rootfs = b.rootfs_path();
            let mirror = rootfs.join(v.rel());
            fs::create_dir_all(mirror.join("sub")).unwrap();
            fs::write(mirror.join("secret"), "image-secret\n").unwrap();
            fs::write(mirror.join("hosts"), "image-hosts\n").unwrap();
            fs::write(mirror.join("sub/nested"), "image-nested\n").unwrap();
            symlink(v.path_str(), &rootfs.join("data"));
            b.add_mount(tmpfs("/data", &["tmpcopyup"]));
        },
        |v| {
            format!(
                "echo BEFORE; cat /data/secret /data/hosts /data/sub/nested; {}",
                vandalise("/data", v)
            )
        },
        |out, v, what| {
            assert_mount_inside(out, v.path_str(), Some("tmpfs"), what);
            assert!(
                out.stdout.contains("image-secret") && out.stdout.contains("image-nested"),
                "{what}: the image's files were not copied up:\n{out}"
            );
            assert!(
                !out.stdout.contains("host-secret"),
                "{what}: host files reached the container:\n{out}"
            );
        },
    );
}

/// /etc/hosts-style file binds on symlinks to a host file (existing) and to a
/// missing file in the victim directory (a runtime creating the bind target on
/// the host would create it there).
#[test]
fn file_bind_on_symlinked_etc_hosts() {
    let src = TempDir::new("hostsrc");
    let hosts = src.path().join("hosts");
    let resolv = src.path().join("resolv.conf");
    fs::write(&hosts, "10.9.9.9 engine-written\n").unwrap();
    fs::write(&resolv, "nameserver 10.9.9.9\n").unwrap();
    attack(
        "esc-fbind",
        Want::Start,
        |b, v| {
            let etc = b.rootfs_path().join("etc");
            symlink(&format!("{}/hosts", v.path_str()), &etc.join("hosts"));
            symlink(
                &format!("{}/resolv.conf", v.path_str()),
                &etc.join("resolv.conf"),
            );
            b.add_mount(json!({"destination": "/etc/hosts", "type": "bind",
                "source": hosts, "options": ["rbind", "rw"]}));
            b.add_mount(json!({"destination": "/etc/resolv.conf", "type": "bind",
                "source": resolv, "options": ["rbind", "rw"]}));
        },
        |v| {
            format!(
                "cat /etc/hosts /etc/resolv.conf; echo '6.6.6.6 pwned' >> /etc/hosts; \
                 awk -v v={} 'index($2, v) == 1 {{ print \"MOUNT-AT\", $2, $3 }}' /proc/self/mounts; \
                 echo attack-done",
                v.path_str()
            )
        },
        |out, v, what| {
            assert!(
                out.stdout.contains("10.9.9.9 engine-written"),
                "{what}: /etc/hosts is not the engine's file:\n{out}"
            );
            assert!(
                !out.stdout.contains("host-only-hosts"),
                "{what}: the host's victim file reached the container:\n{out}"
            );
            assert_mount_inside(out, &format!("{}/hosts", v.path_str()), None, what);
        },
    );
    // The engine's file took the write: it was the bind source.
    let text = fs::read_to_string(&hosts).unwrap();
    assert!(text.contains("10.9.9.9 engine-written"), "{text}");
}

#[test]
fn relative_dotdot_symlink_as_mount_destination() {
    attack(
        "esc-rel",
        Want::Start,
        |b, v| {
            let up = "../".repeat(24);
            symlink(&format!("{up}{}", v.rel()), &b.rootfs_path().join("data"));
            b.add_mount(tmpfs("/data/deep", &[]));
        },
        |v| vandalise("/data/deep", v),
        |out, v, what| {
            assert_mount_inside(out, &format!("{}/deep", v.path_str()), Some("tmpfs"), what)
        },
    );
}

#[test]
fn symlink_chain_as_mount_destination() {
    attack(
        "esc-chain",
        Want::Start,
        |b, v| {
            let r = b.rootfs_path();
            // /l1 -> l2 -> /l3/.. -> ... : relative, absolute, dot-dot and a
            // final absolute link to the victim.
            fs::create_dir(r.join("l3dir")).unwrap();
            symlink("l2", &r.join("l1"));
            symlink("/l3dir/../l3", &r.join("l2"));
            symlink(&format!("../../../..{}", v.path_str()), &r.join("l3"));
            b.add_mount(tmpfs("/l1/chain", &["tmpcopyup"]));
        },
        |v| vandalise("/l1/chain", v),
        |out, v, what| {
            assert_mount_inside(out, &format!("{}/chain", v.path_str()), Some("tmpfs"), what)
        },
    );
}

/// `/data -> /proc/self/root/<victim>`: on the host, /proc/self/root of the
/// runtime is the host's root. Refusing magic links is fine; mounting on the
/// host is not.
#[test]
fn proc_self_root_symlink_as_mount_destination() {
    attack(
        "esc-psr",
        Want::Either,
        |b, v| {
            symlink(
                &format!("/proc/self/root{}", v.path_str()),
                &b.rootfs_path().join("data"),
            );
            b.add_mount(tmpfs("/data/pr", &["tmpcopyup"]));
        },
        |v| vandalise("/data/pr", v),
        |out, _, what| {
            assert!(out.stdout.contains("attack-done"), "{what}: {out}");
            assert!(
                !out.stdout.contains("host-secret"),
                "{what}: host files reached the container:\n{out}"
            );
        },
    );
}

/// /proc or /sys in the image is a symlink to a host directory: refused (runc:
/// "must be mounted on ordinary directory").
#[test]
fn proc_destination_symlink_is_refused() {
    attack(
        "esc-procl",
        Want::Refuse,
        |b, v| {
            let p = b.rootfs_path().join("proc");
            fs::remove_dir(&p).unwrap();
            symlink(v.path_str(), &p);
        },
        |_| "echo started".to_string(),
        |_, _, _| {},
    );
}

#[test]
fn sys_destination_symlink_is_refused() {
    attack(
        "esc-sysl",
        Want::Refuse,
        |b, v| {
            let p = b.rootfs_path().join("sys");
            fs::remove_dir(&p).unwrap();
            symlink(v.path_str(), &p);
        },
        |_| "echo started".to_string(),
        |_, _, _| {},
    );
}

/// While the runtime creates the container, a second process keeps swapping
/// (RENAME_EXCHANGE) the mount destination between a directory and a symlink
/// to the victim.
#[test]
fn symlink_swapped_in_during_create_does_not_escape() {
    let iterations = if light_mode() { 6 } else { 20 };
    for rt in runtimes() {
        let name = label(&rt);
        let victim = Victim::new();
        let before = victim.snapshot();
        let src = TempDir::new("swapsrc");
        let (mut started, mut refused) = (0, 0);
        for i in 0..iterations {
            let mut c = Ctx::with_runtime(Runtime::with_bin(&rt.bin), "esc-swap", &["true"]);
            let r = c.bundle.rootfs_path();
            fs::create_dir(r.join("data")).unwrap();
            symlink(victim.path_str(), &r.join("data.alt"));
            c.bundle.add_mount(tmpfs("/data", &["tmpcopyup"]));
            c.bundle.add_mount(bind(src.path(), "/data/sub"));
            c.bundle.args(&["sh", "-c", &vandalise("/data", &victim)]);
            let stop = Arc::new(AtomicBool::new(false));
            let swapper = {
                let stop = stop.clone();
                let a = std::ffi::CString::new(r.join("data").as_os_str().as_bytes()).unwrap();
                let b = std::ffi::CString::new(r.join("data.alt").as_os_str().as_bytes()).unwrap();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // SAFETY: renameat2(2) on two NUL-terminated paths.
                        unsafe {
                            libc::syscall(
                                libc::SYS_renameat2,
                                libc::AT_FDCWD,
                                a.as_ptr(),
                                libc::AT_FDCWD,
                                b.as_ptr(),
                                libc::RENAME_EXCHANGE,
                            );
                        }
                        n += 1;
                    }
                    n
                })
            };
            let out = c.run_fg(None, Duration::from_secs(60));
            stop.store(true, Ordering::Relaxed);
            let swaps = swapper.join().unwrap();
            let what = format!("swap race {i} under {name} ({swaps} swaps)");
            assert_outcome(Want::Either, &out, &what);
            if out.success() {
                started += 1;
            } else {
                refused += 1;
            }
            victim.assert_untouched(&before, &what);
            c.assert_no_leak();
        }
        report(&format!(
            "swap race under {name}: {started} started, {refused} refused, victim untouched"
        ));
    }
}

// ---------------------------------------------------------------------------
// Masked and read-only paths, seccomp, capabilities (init and exec)
// ---------------------------------------------------------------------------

/// A container running `sleep 1000` under `rt`, started.
fn sleeper(rt: Runtime, prefix: &str, setup: impl FnOnce(&mut Bundle)) -> Ctx {
    let mut c = Ctx::with_runtime(rt, prefix, &["sleep", "1000"]);
    setup(&mut c.bundle);
    c.create_start();
    c
}

/// Run `script` as the init of a fresh container (foreground) and as an exec'd
/// process of a running one; returns (init's output, exec's output).
fn init_and_exec(
    rt: &Runtime,
    prefix: &str,
    setup: impl Fn(&mut Bundle),
    script: &str,
) -> (Output, Output) {
    let mut c = Ctx::with_runtime(Runtime::with_bin(&rt.bin), prefix, &["true"]);
    setup(&mut c.bundle);
    c.bundle.args(&["sh", "-c", script]);
    let init = c.run_fg(None, Duration::from_secs(60));
    c.assert_no_leak();
    let s = sleeper(Runtime::with_bin(&rt.bin), prefix, setup);
    let exec = s.cmd(&["exec", &s.id, "sh", "-c", script]);
    s.cmd(&["delete", "--force", &s.id]).ok();
    s.assert_no_leak();
    (init, exec)
}

#[test]
fn masked_paths_unreadable_by_init_and_exec() {
    // What the kernel here has of the default maskedPaths.
    let masked: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    assert!(!masked.is_empty(), "no maskable /proc files on this host");
    let script = format!(
        "for p in {}; do n=$(head -c 4096 $p 2>/dev/null | wc -c); echo \"READ $p $n\"; \
         umount $p 2>/dev/null && echo \"UNMOUNTED $p\"; done; \
         echo \"FIRMWARE $(ls -A /sys/firmware | wc -l)\"; \
         touch /sys/firmware/x 2>/dev/null && echo WROTE-FIRMWARE; \
         awk '{{print \"MNT\", $5}}' /proc/self/mountinfo; echo checked",
        masked.join(" ")
    );
    for rt in runtimes() {
        let name = label(&rt);
        let (init, exec) = init_and_exec(&rt, "esc-mask", |_| {}, &script);
        for (who, out) in [("init", &init), ("exec", &exec)] {
            let what = format!("{who} under {name}");
            out.ok();
            assert!(out.stdout.contains("checked"), "{what}: {out}");
            for p in &masked {
                assert!(
                    out.stdout.contains(&format!("READ {p} 0\n")),
                    "{what}: masked {p} is readable:\n{out}"
                );
                assert!(
                    out.stdout.contains(&format!("MNT {p}\n")),
                    "{what}: masked {p} has no mask mounted on it:\n{out}"
                );
                assert!(
                    !out.stdout.contains(&format!("UNMOUNTED {p}")),
                    "{what}: unmounted the mask of {p}:\n{out}"
                );
            }
            assert!(
                out.stdout.contains("FIRMWARE 0\n") && !out.stdout.contains("WROTE-FIRMWARE"),
                "{what}: /sys/firmware not masked:\n{out}"
            );
        }
    }
}

#[test]
fn readonly_paths_unwritable_by_init_and_exec() {
    // Opening for writing (append, nothing written) is the attack: a
    // successful open means a container root can rewrite host-global sysctls
    // such as kernel.core_pattern. Nothing is ever written.
    let targets: Vec<&str> = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/vm/drop_caches",
        "/proc/sysrq-trigger",
        "/proc/irq/default_smp_affinity",
        "/proc/sys/kernel/modprobe",
        "/sys/kernel/uevent_helper",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    let script = format!(
        "(exec 3>>/dev/shm/control) && echo CONTROL-WRITABLE; \
         for f in {}; do (exec 3>>$f) 2>/dev/null && echo \"WRITABLE $f\"; done; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED; \
         mount -o remount,rw /sys 2>/dev/null && echo REMOUNTED; \
         mkdir /sys/fs/cgroup/escape-probe 2>/dev/null && echo MKDIR-CGROUP; \
         echo checked",
        targets.join(" ")
    );
    for rt in runtimes() {
        let name = label(&rt);
        let (init, exec) = init_and_exec(&rt, "esc-ro", |_| {}, &script);
        for (who, out) in [("init", &init), ("exec", &exec)] {
            let what = format!("{who} under {name}");
            out.ok();
            assert!(
                out.stdout.contains("CONTROL-WRITABLE") && out.stdout.contains("checked"),
                "{what}: the probe itself does not work:\n{out}"
            );
            for bad in ["WRITABLE /", "REMOUNTED", "MKDIR-CGROUP"] {
                assert!(
                    !out.stdout.contains(bad),
                    "{what}: a read-only path is writable ({bad}):\n{out}"
                );
            }
        }
    }
    // Nothing reached the host's cgroup tree.
    for h in cgroup_hierarchies() {
        assert!(
            !h.join("escape-probe").exists(),
            "{} created on the host",
            h.join("escape-probe").display()
        );
    }
}

/// A profile that denies mkdir/mkdirat with EPERM holds for the init and for
/// every exec'd process (which must show `Seccomp: 2`).
#[test]
fn seccomp_profile_applies_to_init_and_exec() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    });
    let script = "mkdir /dev/shm/escape-dir 2>&1 && echo MKDIR-ALLOWED; \
                  hostname pwned 2>&1 && echo SETHOSTNAME-ALLOWED; \
                  touch /dev/shm/control && echo CONTROL-OK; \
                  grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    for rt in runtimes() {
        let name = label(&rt);
        let (init, exec) = init_and_exec(
            &rt,
            "esc-sec",
            |b| {
                b.set("/linux/seccomp", profile.clone());
                // With CAP_SYS_ADMIN only seccomp stands in sethostname's way.
                for set in ["bounding", "effective", "permitted"] {
                    b.patch(|c| {
                        c["process"]["capabilities"][set]
                            .as_array_mut()
                            .unwrap()
                            .push(json!("CAP_SYS_ADMIN"))
                    });
                }
            },
            script,
        );
        for (who, out) in [("init", &init), ("exec", &exec)] {
            let what = format!("{who} under {name}");
            out.ok();
            assert!(out.stdout.contains("CONTROL-OK"), "{what}: {out}");
            assert!(
                out.stdout.contains("Seccomp:\t2"),
                "{what}: the process runs without the seccomp filter:\n{out}"
            );
            assert!(
                !out.stdout.contains("MKDIR-ALLOWED")
                    && !out.stdout.contains("SETHOSTNAME-ALLOWED"),
                "{what}: a syscall the profile denies went through:\n{out}"
            );
            assert!(
                out.stdout.contains("Operation not permitted"),
                "{what}: not the profile's EPERM:\n{out}"
            );
        }
    }
}

/// An exec'd process gets exactly the config's capabilities and no_new_privs
/// (none of the runtime's own), the same as the init.
#[test]
fn exec_gets_configured_capabilities_and_no_new_privs() {
    let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
    let want = [
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000021",
        "CapEff:\t0000000000000021",
        "CapBnd:\t0000000000000021",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
    ];
    let script = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status";
    for rt in runtimes() {
        let name = label(&rt);
        let (init, exec) = init_and_exec(
            &rt,
            "esc-caps",
            |b| {
                for set in ["bounding", "effective", "permitted"] {
                    b.set(&format!("/process/capabilities/{set}"), caps.clone());
                }
                b.set("/process/capabilities/ambient", json!([]));
                b.set("/process/noNewPrivileges", json!(true));
            },
            script,
        );
        for (who, out) in [("init", &init), ("exec", &exec)] {
            out.ok();
            let got: Vec<&str> = out.stdout.lines().collect();
            assert_eq!(got, want, "{who} under {name}:\n{out}");
        }
    }
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// A host block device (major:minor), preferring a real disk over loop/zram.
fn host_block_device() -> Option<(String, String)> {
    let mut devs: Vec<(String, String)> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = fs::read_to_string(e.path().join("dev")).ok()?;
            Some((name, dev.trim().to_string()))
        })
        .collect();
    devs.sort_by_key(|(n, _)| {
        (
            n.starts_with("loop") || n.starts_with("zram") || n.starts_with("ram"),
            n.clone(),
        )
    });
    devs.into_iter().next()
}

/// With CAP_MKNOD (Docker's default set has it) a container can make a node
/// for the host's disk, and a hostile image can carry one: the device cgroup
/// must still refuse to open it. (Only ever opened for reading.)
#[test]
fn device_cgroup_blocks_host_block_device() {
    let Some((name, majmin)) = host_block_device() else {
        skip("no block device in /sys/block");
        return;
    };
    let (maj, min) = majmin.split_once(':').expect("major:minor");
    let script = format!(
        "mknod /dev/escape-blk b {maj} {min} 2>&1 && echo MKNOD-OK; \
         head -c 512 /dev/escape-blk >/dev/null 2>&1 && echo READ-MKNOD; \
         head -c 512 /image-blk >/dev/null 2>&1 && echo READ-IMAGE; \
         head -c 16 /dev/zero | wc -c; echo checked"
    );
    for rt in runtimes() {
        let what = format!("{name} ({majmin}) under {}", label(&rt));
        let mut c = Ctx::with_runtime(rt, "esc-dev", &["sh", "-c", &script]);
        let node = c.bundle.rootfs_path().join("image-blk");
        let cpath = std::ffi::CString::new(node.as_os_str().as_bytes()).unwrap();
        let dev = libc::makedev(maj.parse().unwrap(), min.parse().unwrap());
        // SAFETY: mknod(2) on a NUL-terminated path inside our bundle.
        let rc = unsafe { libc::mknod(cpath.as_ptr(), libc::S_IFBLK | 0o666, dev) };
        assert_eq!(
            rc,
            0,
            "mknod in the bundle: {}",
            std::io::Error::last_os_error()
        );
        c.bundle.patch(|cfg| {
            for set in ["bounding", "effective", "permitted"] {
                cfg["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_MKNOD"));
            }
        });
        let out = c.run_fg(None, Duration::from_secs(60));
        out.ok();
        assert!(
            out.stdout.contains("checked") && out.stdout.contains("16\n"),
            "{what}: the probe does not work:\n{out}"
        );
        assert!(
            !out.stdout.contains("READ-MKNOD") && !out.stdout.contains("READ-IMAGE"),
            "{what}: the container read the host's disk:\n{out}"
        );
        c.assert_no_leak();
    }
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe
// ---------------------------------------------------------------------------

/// Runs in the container: for `$1` seconds, every process whose binary is not
/// busybox (the runtime entering the container, or the runtime re-executed
/// through `#!/proc/self/exe`) is opened read-only through /proc/PID/exe and
/// the fd is then reopened for writing through /proc/self/fd until it works
/// or 5 s pass. Writes a log to /report.
const WATCHER: &str = r#"#!/bin/sh
end=$(( $(date +%s) + $1 ))
log=/report/watch.log
tried=" $$ "
while [ "$(date +%s)" -lt "$end" ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$tried" in *" $p "*) continue ;; esac
    t=$(readlink "$d/exe" 2>/dev/null) || continue
    case "$t" in */busybox|"") continue ;; esac
    tried="$tried $p "
    echo "saw $p $t" >>$log
    ( exec 4<"$d/exe" || exit 0
      echo "held $p" >>$log
      i=0
      while [ $i -lt 100 ]; do
        if ( exec 5>>/proc/self/fd/4 ) 2>/dev/null; then
          echo "PWNED-OPEN $p" >>$log
          echo PWNED >>/proc/self/fd/4 && echo "PWNED-WROTE $p" >>$log
          exit 0
        fi
        sleep 0.05
        i=$((i+1))
      done
      echo "denied $p" >>$log ) 2>/dev/null &
  done
done
wait
echo watcher-done >>$log
"#;

/// `#!/proc/self/exe`: whoever execs this runs the binary it is itself running.
const EVIL: &str = "#!/proc/self/exe\n";

/// A copy of the runtime binary in a temp dir, so a successful attack damages
/// only the copy.
struct RuntimeCopy {
    _dir: TempDir,
    path: PathBuf,
    original: Vec<u8>,
}

impl RuntimeCopy {
    fn of(bin: &Path) -> RuntimeCopy {
        let dir = TempDir::new("rtcopy");
        let path = dir.path().join(bin.file_name().unwrap());
        fs::copy(bin, &path).expect("copy the runtime");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let original = fs::read(&path).unwrap();
        RuntimeCopy {
            _dir: dir,
            path,
            original,
        }
    }

    #[track_caller]
    fn assert_unchanged(&self, what: &str, log: &str) {
        let now = fs::read(&self.path).expect("read the runtime copy");
        let mode = fs::metadata(&self.path).unwrap().mode();
        assert!(
            now == self.original && mode & 0o7777 == 0o755,
            "{what}: the runtime binary was overwritten from inside the container \
             ({} -> {} bytes, mode {mode:o}); watcher log:\n{log}",
            self.original.len(),
            now.len()
        );
        assert!(
            !log.contains("PWNED"),
            "{what}: the container reopened the runtime binary for writing:\n{log}"
        );
    }
}

/// The watcher container: runs WATCHER for `secs` with /report bound from `report`.
fn watcher(rt: Runtime, report_dir: &Path, secs: u32) -> Ctx {
    let mut c = Ctx::with_runtime(rt, "esc-5736", &["/watch.sh", &secs.to_string()]);
    write_exe(&c.bundle.rootfs_path(), "watch.sh", WATCHER);
    write_exe(&c.bundle.rootfs_path(), "evil", EVIL);
    fs::create_dir(c.bundle.rootfs_path().join("report")).unwrap();
    c.bundle.add_mount(bind(report_dir, "/report"));
    c.create_start();
    c
}

fn finish_watcher(c: &Ctx, report_dir: &Path) -> String {
    let _ = wait_until(Duration::from_secs(30), || {
        c.status().as_deref() == Some("stopped")
    });
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
    fs::read_to_string(report_dir.join("watch.log")).unwrap_or_default()
}

fn summarise(log: &str) -> String {
    let saw = log.lines().filter(|l| l.starts_with("saw ")).count();
    let held = log.lines().filter(|l| l.starts_with("held ")).count();
    let denied = log.lines().filter(|l| l.starts_with("denied ")).count();
    format!("watcher saw {saw} runtime processes, held {held} exe fds, denied {denied} reopens")
}

#[test]
fn runtime_binary_not_writable_via_proc_exe_during_exec() {
    for rt in runtimes() {
        let name = label(&rt);
        let copy = RuntimeCopy::of(&rt.bin);
        let report_dir = TempDir::new("report5736");
        fs::set_permissions(report_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let c = watcher(Runtime::with_bin(&copy.path), report_dir.path(), 8);
        for _ in 0..10 {
            // The runtime execs `#!/proc/self/exe` inside the container: the
            // process becomes the runtime binary, in the container's reach.
            let _ = c.cmd(&["exec", &c.id, "/evil"]);
            // And the runtime entering the container is in reach too.
            let _ = c.cmd(&["exec", &c.id, "sh", "-c", "exec 3>>/proc/self/exe"]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = finish_watcher(&c, report_dir.path());
        report(&format!("exec under {name}: {}", summarise(&log)));
        copy.assert_unchanged(&format!("exec under {name}"), &log);
    }
}

/// The runtime's own process inside the container, caught deterministically: a
/// startContainer hook runs inside the container (its caps, its uid) while
/// the container's init is still the runtime, before it execs the program.
/// The hook keeps `/proc/1/exe` open if it can and, once the runtime is gone
/// (`start` has returned), reopens it for writing: CVE-2019-5736. runc's init
/// runs from a sealed copy; runvz's processes are not dumpable, so the link
/// cannot be opened at all.
#[test]
fn runtime_process_in_the_container_does_not_expose_its_binary() {
    const PROBE: &str = "#!/bin/sh\n\
        exe=$(readlink /proc/1/exe 2>&1); echo \"exe=$exe\" >>/report/probe.log\n\
        ( exec 3</proc/1/exe || exit 0\n\
          echo held >>/report/probe.log\n\
          sleep 1\n\
          if ( exec 4>>/proc/self/fd/3 ) 2>>/report/probe.log; then\n\
            echo PWNED-OPEN >>/report/probe.log; echo PWNED >>/proc/self/fd/3\n\
          fi\n\
          echo done >>/report/probe.log ) 2>>/report/probe.log &\n\
        exit 0\n";
    for rt in runtimes() {
        let name = label(&rt);
        let copy = RuntimeCopy::of(&rt.bin);
        let report_dir = TempDir::new("probe5736");
        fs::set_permissions(report_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let mut c = Ctx::with_runtime(Runtime::with_bin(&copy.path), "esc-hook", &["sleep", "3"]);
        write_exe(&c.bundle.rootfs_path(), "probe.sh", PROBE);
        fs::create_dir(c.bundle.rootfs_path().join("report")).unwrap();
        c.bundle.add_mount(bind(report_dir.path(), "/report"));
        c.bundle
            .set("/hooks/startContainer", json!([{"path": "/probe.sh"}]));
        c.create_start();
        let log_path = report_dir.path().join("probe.log");
        let _ = wait_until(Duration::from_secs(10), || {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            log.contains("done") || (log.starts_with("exe=") && !log.contains("held"))
        });
        std::thread::sleep(Duration::from_millis(200));
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        report(&format!(
            "{name}: the hook saw {:?}",
            log.lines().collect::<Vec<_>>()
        ));
        assert!(
            log.starts_with("exe="),
            "{name}: the hook did not run:\n{log}"
        );
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
        copy.assert_unchanged(&format!("startContainer hook under {name}"), &log);
    }
}

/// The same during `run`: the new container's init is `#!/proc/self/exe` and
/// it joins the watcher's PID namespace, so the watcher sees the runtime
/// process that execs it.
#[test]
fn runtime_binary_not_writable_via_proc_exe_during_run() {
    for rt in runtimes() {
        let name = label(&rt);
        let copy = RuntimeCopy::of(&rt.bin);
        let report_dir = TempDir::new("report5736");
        fs::set_permissions(report_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let w = watcher(Runtime::with_bin(&copy.path), report_dir.path(), 8);
        let pidns = format!("/proc/{}/ns/pid", w.pid());
        let mut results = Vec::new();
        for _ in 0..5 {
            let mut c = Ctx::with_runtime(Runtime::with_bin(&copy.path), "esc-5736r", &["/evil"]);
            write_exe(&c.bundle.rootfs_path(), "evil", EVIL);
            c.bundle.patch(|cfg| {
                for ns in cfg["linux"]["namespaces"].as_array_mut().unwrap() {
                    if ns["type"] == "pid" {
                        ns["path"] = json!(pidns);
                    }
                }
            });
            let out = c.run_fg(None, Duration::from_secs(30));
            results.push(out.code);
            c.assert_no_leak();
        }
        let log = finish_watcher(&w, report_dir.path());
        report(&format!(
            "run under {name}: exits {results:?}, {}",
            summarise(&log)
        ));
        copy.assert_unchanged(&format!("run under {name}"), &log);
    }
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked host fds as cwd, fds in the container
// ---------------------------------------------------------------------------

fn escape_via_cwd_script(victim: &Victim) -> String {
    let up = "../".repeat(24);
    format!(
        "echo CWD $(pwd); cat {up}{r}/secret; echo pwned > {up}{r}/secret; \
         echo pwned > {up}{r}/new; ls {up}{r}; ls {up}; echo tried",
        r = victim.rel()
    )
}

#[test]
fn leaked_fd_as_process_cwd_does_not_reach_the_host() {
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        attack(
            &format!("esc-cwd{n}"),
            Want::Either,
            |b, _| {
                b.cwd(&cwd);
            },
            escape_via_cwd_script,
            |out, _, what| {
                assert!(
                    !out.stdout.contains("host-secret"),
                    "{what}: cwd {cwd} read the host's file:\n{out}"
                );
                assert!(
                    !out.stdout.contains("runvz-test-"),
                    "{what}: cwd {cwd} lists the host's /tmp:\n{out}"
                );
            },
        );
    }
}

#[test]
fn leaked_fd_as_exec_cwd_does_not_reach_the_host() {
    for rt in runtimes() {
        let name = label(&rt);
        let victim = Victim::new();
        let before = victim.snapshot();
        let c = sleeper(rt, "esc-xcwd", |_| {});
        for n in 3..10 {
            let cwd = format!("/proc/self/fd/{n}");
            let out = c.cmd(&[
                "exec",
                "--cwd",
                &cwd,
                &c.id,
                "sh",
                "-c",
                &escape_via_cwd_script(&victim),
            ]);
            let what = format!("exec --cwd {cwd} under {name}");
            assert_outcome(Want::Either, &out, &what);
            assert!(
                !out.stdout.contains("host-secret") && !out.stdout.contains("runvz-test-"),
                "{what}: reached the host:\n{out}"
            );
            victim.assert_untouched(&before, &what);
        }
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// The fds of the shell that is the init, and of an exec'd one: only stdio
/// (listed by a child `ls`, so the shell opens nothing to list them).
#[test]
fn no_host_fds_leak_into_init_or_exec() {
    let script = "ls -l /proc/$$/fd/; echo listed";
    for rt in runtimes() {
        let name = label(&rt);
        let (init, exec) = init_and_exec(&rt, "esc-fds", |_| {}, script);
        for (who, out) in [("init", &init), ("exec", &exec)] {
            let what = format!("{who} under {name}");
            out.ok();
            assert!(out.stdout.contains("listed"), "{what}: {out}");
            let fds: Vec<(String, String)> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let (left, target) = l.split_once(" -> ")?;
                    let n = left.split_whitespace().last()?;
                    Some((n.to_string(), target.to_string()))
                })
                .collect();
            assert!(fds.len() >= 3, "{what}: no fd listing:\n{out}");
            let extra: Vec<&(String, String)> = fds
                .iter()
                .filter(|(n, _)| !["0", "1", "2"].contains(&n.as_str()))
                .collect();
            assert!(
                extra.is_empty(),
                "{what}: fds beyond stdio leaked into the container: {extra:?}\n{out}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Hostile config: cgroupsPath, container IDs, annotations
// ---------------------------------------------------------------------------

/// Every cgroup directory named by `path` and its parents up to the first
/// component, removed deepest first.
fn remove_cgroup_chain(path: &str) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    for depth in (1..=parts.len()).rev() {
        let p = format!("/{}", parts[..depth].join("/"));
        remove_cgroup(&p);
    }
}

#[test]
fn cgroups_path_traversal_stays_in_the_cgroup_tree() {
    for rt in runtimes() {
        let name = label(&rt);
        let victim = Victim::new();
        let before = victim.snapshot();
        let up = "../".repeat(16);
        let cg = format!("/{up}{}/x/y", victim.rel());
        // Where a runtime confining it (as runc does) puts it.
        let confined = format!("{}/x/y", victim.path_str());
        let id = unique_id("esc-cgp");
        let mut b = Bundle::new();
        b.args(&["true"]).cgroups_path(&cg);
        let _g = rt.guard(&id, Some(&confined));
        let out = rt.cmd_timeout(
            &["run", "--bundle", b.path_str(), &id],
            Duration::from_secs(60),
        );
        let what = format!("cgroupsPath {cg} under {name}");
        report(&format!("{what}: exit {}", out.code));
        assert_outcome(Want::Either, &out, &what);
        let host = victim.path().join("x");
        let made = host.exists();
        // The guard removes the confined cgroup; take its parents too.
        rt.cmd(&["delete", "--force", &id]);
        kill_cgroup(&confined);
        remove_cgroup_chain(&confined);
        assert!(!made, "{what}: created {} on the host", host.display());
        victim.assert_untouched(&before, &what);
        assert_no_leak(&rt, &id, &confined);
    }
}

#[test]
fn container_id_with_path_separators_is_refused() {
    for rt in runtimes() {
        let name = label(&rt);
        let victim = Victim::new();
        let before = victim.snapshot();
        let up = "../".repeat(16);
        let bad_ids = [
            "..".to_string(),
            "../escape".to_string(),
            "a/../../b".to_string(),
            format!("{up}{}/pwned", victim.rel()),
            format!("{}/pwned", victim.path_str()),
        ];
        for bad in &bad_ids {
            let mut b = Bundle::new();
            let cg = cgroups_path_for(&unique_id("esc-id"));
            b.args(&["sleep", "100"]).cgroups_path(&cg);
            let what = format!("id {bad:?} under {name}");
            let out = rt.cmd(&["create", "--bundle", b.path_str(), bad]);
            if out.success() {
                let _ = rt.cmd(&["delete", "--force", bad]);
                kill_cgroup(&cg);
                remove_cgroup(&cg);
            }
            assert_clean_error(&out, &what);
            assert!(
                root_entries(&rt).is_empty(),
                "{what}: left {:?} in the root",
                root_entries(&rt)
            );
            // Nothing beside the root either (`--root` is `<tempdir>/state`).
            let beside = entries_beside_root(&rt);
            assert!(
                beside.is_empty(),
                "{what}: created {beside:?} beside the root"
            );
            assert!(cgroup_dirs_present(&cg).is_empty(), "{what}: cgroup left");
            victim.assert_untouched(&before, &what);
        }
    }
}

/// runvz.* annotation values that are paths (traversals to the victim): each is
/// refused with a clean error by `create` and `run`, leaving nothing behind.
/// `runvz.haltsignal` and `runvz.userns` apply to system containers, so they
/// are tried with `runvz.system=true`.
#[test]
fn annotation_values_with_path_separators_are_refused() {
    if skip_for_runc() {
        return;
    }
    let victim = Victim::new();
    let before = victim.snapshot();
    let evil = format!("../../../../../../..{}/x", victim.path_str());
    let system = ("runvz.system", "true".to_string());
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("runvz.ubc.numproc", evil.clone())],
        vec![("runvz.ubc.physpages", evil.clone())],
        vec![("runvz.ubc.numfile", "../../x".to_string())],
        vec![("runvz.cpulimit", evil.clone())],
        vec![("runvz.iolimit", evil.clone())],
        vec![("runvz.system", "../x".to_string())],
        vec![system.clone(), ("runvz.haltsignal", evil.clone())],
        vec![system.clone(), ("runvz.userns", evil.clone())],
        // Not a system container: checked all the same, never silently ignored.
        vec![("runvz.haltsignal", evil.clone())],
        vec![("runvz.userns", evil.clone())],
    ];
    let mut accepted = Vec::new();
    for annotations in cases {
        let mut c = Ctx::new("esc-ann", &["sleep", "100"]);
        for (k, v) in &annotations {
            c.bundle.annotation(k, v);
        }
        let what = format!("annotations {annotations:?}");
        for verb in ["create", "run"] {
            let out = c.cmd(&[verb, "--bundle", c.bundle.path_str(), &c.id]);
            if out.code == 0 {
                let _ = c.cmd(&["delete", "--force", &c.id]);
                accepted.push(format!("{verb} accepted {annotations:?}"));
            } else {
                assert_clean_error(&out, &format!("{verb} with {what}"));
            }
            c.assert_no_leak();
            assert!(
                root_entries(&c.rt).is_empty(),
                "{what}: left {:?} in the root",
                root_entries(&c.rt)
            );
        }
        victim.assert_untouched(&before, &what);
    }
    assert!(
        accepted.is_empty(),
        "path-like annotation values were accepted:\n  {}",
        accepted.join("\n  ")
    );
}

/// The config mounts the cgroup tree read-only: a tenant (root in its
/// container, default capabilities) cannot lift its own pids and memory
/// limits by writing its cgroup files, from the init or from an exec'd process.
#[test]
fn tenant_cannot_raise_its_own_cgroup_limits() {
    const MEM: u64 = 64 << 20;
    let attack = "for f in /sys/fs/cgroup/pids.max /sys/fs/cgroup/*/pids.max \
                    /sys/fs/cgroup/memory.max /sys/fs/cgroup/*/memory.max; do \
                    [ -f $f ] && (echo max > $f) 2>/dev/null && echo \"RAISED $f\"; done; \
                  for f in /sys/fs/cgroup/*/memory.limit_in_bytes; do \
                    [ -f $f ] && (echo -1 > $f) 2>/dev/null && echo \"RAISED $f\"; done; \
                  (mkdir /sys/fs/cgroup/escape-sub || mkdir /sys/fs/cgroup/pids/escape-sub) 2>/dev/null && echo MKDIR; \
                  echo attacked";
    for rt in runtimes() {
        let name = label(&rt);
        let mut c = Ctx::with_runtime(
            rt,
            "esc-cglim",
            &[
                "sh",
                "-c",
                &format!("{{ {attack}; }} > /dev/shm/init.log 2>&1; exec sleep 1000"),
            ],
        );
        c.bundle.resources(json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "pids": {"limit": 50},
            "memory": {"limit": MEM}
        }));
        c.create_start();
        let cg = c.cgroup();
        let mem_file = if cgroup_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let check = |who: &str, log: &str| {
            let what = format!("{who} under {name}");
            assert!(
                log.contains("attacked"),
                "{what}: the attack did not run: {log}"
            );
            assert_eq!(
                cg.read("pids", "pids.max").as_deref(),
                Some("50"),
                "{what} raised its own pids.max: {log}"
            );
            assert_eq!(
                cg.read("memory", mem_file),
                Some(MEM.to_string()),
                "{what} raised its own memory limit: {log}"
            );
            assert!(
                !log.contains("RAISED") && !log.contains("MKDIR"),
                "{what}: wrote to the read-only cgroup tree: {log}"
            );
        };
        let mut init_log = String::new();
        wait_until(Duration::from_secs(10), || {
            init_log = c.cmd(&["exec", &c.id, "cat", "/dev/shm/init.log"]).stdout;
            init_log.contains("attacked")
        });
        check("init", &init_log);
        let out = c.cmd(&["exec", &c.id, "sh", "-c", attack]);
        check("exec", &format!("{}{}", out.stdout, out.stderr));
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

// ---------------------------------------------------------------------------
// Beancounters: one tenant cannot starve a neighbour
// ---------------------------------------------------------------------------

/// `exec NEIGHBOUR true` answers within a second, `times` times over.
#[track_caller]
fn assert_neighbour_answers(n: &Ctx, times: usize, what: &str) {
    for i in 0..times {
        let t = Instant::now();
        let out =
            n.rt.cmd_timeout(&["exec", &n.id, "true"], Duration::from_secs(20));
        let took = t.elapsed();
        out.ok();
        // An emulated VM (light mode) is about ten times slower.
        let bound = Duration::from_secs(if light_mode() { 10 } else { 1 });
        assert!(
            took < bound,
            "{what}: the neighbour's exec #{i} took {took:?} (bound {bound:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A neighbour (`sleep`) and a tenant held by one beancounter, both running.
fn tenant_beside_a_neighbour(prefix: &str, mut tenant: Ctx, bound: (&str, &str)) -> (Ctx, Ctx) {
    let neighbour = sleeper(Runtime::new(), prefix, |_| {});
    tenant.bundle.annotation(bound.0, bound.1);
    tenant.bundle.save();
    tenant.create_start();
    (neighbour, tenant)
}

/// Deletes both and checks that neither left anything behind.
fn remove_both(tenant: &Ctx, neighbour: &Ctx) {
    for c in [tenant, neighbour] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

#[test]
fn numproc_fork_bomb_cannot_starve_a_neighbour() {
    if skip_for_runc() {
        return;
    }
    let (neighbour, tenant) = tenant_beside_a_neighbour(
        "esc-nb",
        Ctx::new(
            "esc-bomb",
            &[
                "sh",
                "-c",
                // Respawn the bomb whenever a fork failure ends it.
                "while :; do sh -c 'while :; do sleep 1000 & done' 2>/dev/null; done",
            ],
        ),
        ("runvz.ubc.numproc", "32"),
    );
    let cg = tenant.cgroup();
    assert!(
        wait_until(Duration::from_secs(10), || cg.pids_current() >= 30),
        "the bomb did not reach the bound: pids.current {}",
        cg.pids_current()
    );
    assert_neighbour_answers(&neighbour, 5, "fork bomb");
    assert!(
        cg.pids_current() <= 32,
        "numproc 32 let {} in",
        cg.pids_current()
    );
    // The host can still fork, and the tenant goes away whole.
    run_command(
        &mut std::process::Command::new("true"),
        None,
        Duration::from_secs(5),
    )
    .ok();
    remove_both(&tenant, &neighbour);
}

#[test]
fn physpages_memory_hog_cannot_starve_a_neighbour() {
    if skip_for_runc() {
        return;
    }
    let (neighbour, tenant) = tenant_beside_a_neighbour(
        "esc-mn",
        Ctx::new(
            "esc-hog",
            &[
                "sh",
                "-c",
                "while :; do head -c 400000000 /dev/zero | sort >/dev/null; done",
            ],
        ),
        ("runvz.ubc.physpages", "0:8192"),
    ); // 32 MiB
    std::thread::sleep(Duration::from_secs(2));
    assert_neighbour_answers(&neighbour, 5, "memory hog");
    let cg = tenant.cgroup();
    let (peak_file, events) = if cgroup_v2() {
        ("memory.peak", "memory.events")
    } else {
        ("memory.max_usage_in_bytes", "memory.failcnt")
    };
    if let Some(peak) = cg
        .read("memory", peak_file)
        .and_then(|s| s.parse::<u64>().ok())
    {
        assert!(
            peak <= 32 << 20,
            "the hog peaked at {peak} bytes past physpages 32 MiB"
        );
    }
    let ev = cg.read("memory", events).unwrap_or_default();
    report(&format!("memory hog: {events}: {ev:?}"));
    remove_both(&tenant, &neighbour);
}

#[test]
fn numfile_flood_cannot_starve_a_neighbour() {
    if skip_for_runc() {
        return;
    }
    let (neighbour, tenant) = tenant_beside_a_neighbour(
        "esc-fn",
        Ctx::new("esc-flood", &["sleep", "1000"]),
        ("runvz.ubc.numfile", "64:64"),
    );
    // Every flooder opens descriptors until refused and reports the last.
    let flood = "i=3; while [ $i -lt 5000 ]; do eval \"exec $i</dev/null\" && echo opened=$i; i=$((i+1)); done";
    let mut last = Vec::new();
    for _ in 0..4 {
        let out = tenant.rt.cmd_timeout(
            &["exec", &tenant.id, "sh", "-c", flood],
            Duration::from_secs(60),
        );
        assert_ne!(out.code, 0, "the flood was never refused: {out}");
        let top = out
            .stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("opened="))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        assert!(top < 64, "opened fd {top} past numfile 64: {out}");
        last.push(top);
        assert_neighbour_answers(&neighbour, 1, "file flood");
    }
    report(&format!("file flood stopped at fds {last:?}"));
    remove_both(&tenant, &neighbour);
}

#[test]
fn numpty_flood_cannot_starve_a_neighbour() {
    if skip_for_runc() {
        return;
    }
    let (neighbour, tenant) = tenant_beside_a_neighbour(
        "esc-pn",
        Ctx::new("esc-pty", &["sleep", "1000"]),
        ("runvz.ubc.numpty", "4"),
    );
    // Each open of /dev/ptmx makes a pty in the container's devpts; the
    // flooder keeps them all open until one is refused (which ends its shell).
    let flood = "i=3; while [ $i -lt 200 ]; do eval \"exec $i<>/dev/ptmx\" && echo opened; i=$((i+1)); done";
    let out = tenant.rt.cmd_timeout(
        &["exec", &tenant.id, "sh", "-c", flood],
        Duration::from_secs(60),
    );
    let got = out.stdout.lines().filter(|l| *l == "opened").count();
    assert!(got <= 4, "numpty 4 let the tenant open {got} ptys: {out}");
    assert!(got >= 1, "the tenant could not open a single pty: {out}");
    assert!(
        out.code != 0 && out.stderr.contains("No space left on device"),
        "the pty past the bound was not refused with ENOSPC: {out}"
    );
    assert_neighbour_answers(&neighbour, 1, "pty flood");
    // The host can still make a pty.
    let host = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ptmx");
    assert!(host.is_ok(), "the host cannot open /dev/ptmx: {host:?}");
    report(&format!("pty flood stopped at {got} ptys"));
    remove_both(&tenant, &neighbour);
}

#[test]
fn shmpages_flood_cannot_starve_a_neighbour() {
    if skip_for_runc() {
        return;
    }
    let (neighbour, tenant) = tenant_beside_a_neighbour(
        "esc-sn",
        Ctx::new("esc-shm", &["sleep", "1000"]),
        ("runvz.ubc.shmpages", "256"),
    ); // 1 MiB
    let flood = "for n in 1 2 3 4; do head -c 4000000 /dev/zero > /dev/shm/flood$n; done; \
                 cat /dev/shm/flood* | wc -c";
    let out = tenant.rt.cmd_timeout(
        &["exec", &tenant.id, "sh", "-c", flood],
        Duration::from_secs(60),
    );
    let held: u64 = out
        .stdout
        .lines()
        .last()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        held <= 1 << 20,
        "shmpages 256 (1 MiB) let the tenant keep {held} bytes in /dev/shm: {out}"
    );
    assert!(
        !out.stderr.trim().is_empty(),
        "the writes past the bound were not refused: {out}"
    );
    assert_neighbour_answers(&neighbour, 1, "shm flood");
    report(&format!("shm flood held {held} bytes"));
    remove_both(&tenant, &neighbour);
}
