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
/// A system container's context: its test holds the /proc view server's
/// lock shared while it lives (see `proc_view_server_lock`).
fn system_ctx(prefix: &str, args: &[&str]) -> Ctx {
    let mut c = Ctx::new(prefix, args);
    c.held.push(proc_view_server_lock(false));
    c
}

fn busybox_init(prefix: &str, out: &Path, annotations: &[(&str, &str)]) -> Ctx {
    // The init's root is an unprivileged host user (runvz.userns=auto, the
    // default): /out is a writable host directory it may write to.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(out, fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = system_ctx(prefix, &["/sbin/init"]);
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
    // The very first read, right after `run -d`, is the container's already
    // (the host may read a container's files in its directory of the view).
    let first = fs::read_to_string(format!(
        "/run/runvz.procview/{}/meminfo",
        runvz_key_name(&runvz_key(&c.rt, &c.id))
    ))
    .unwrap();
    assert!(first.starts_with("MemTotal:         262144 kB"), "{first}");
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

/// `/sys/devices/system/cpu` inside holds the `cpuN` directories of the CPUs
/// the container may use (its cpuset's, the first as many as its CPU quota
/// allows: what glibc's `get_nprocs_conf`, `lscpu` and `htop` count), the
/// host's entries passed through (a CPU's topology, sysfs's symlinks), and
/// the view's `online`; the host's directory is unchanged.
#[test]
fn sys_cpu_directory_shows_only_the_containers_cpus() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let host_cpus: Vec<String> = fs::read_dir("/sys/devices/system/cpu")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.len() > 3 && n.starts_with("cpu") && n[3..].bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    let numbers: Vec<usize> = host_cpus.iter().map(|n| n[3..].parse().unwrap()).collect();
    let (first, last) = (
        *numbers.iter().min().unwrap(),
        *numbers.iter().max().unwrap(),
    );
    // One pinned to the host's last CPU, one capped at one CPU's time.
    let mut pinned = system_ctx("syscpu-a", &["sleep", "1000"]);
    pinned.bundle.annotation("runvz.system", "true");
    pinned
        .bundle
        .set("/linux/resources/cpu", json!({"cpus": last.to_string()}));
    pinned.bundle.save();
    let mut capped = system_ctx("syscpu-b", &["sleep", "1000"]);
    capped.bundle.annotation("runvz.system", "true");
    capped.bundle.annotation("runvz.cpulimit", "100");
    capped.bundle.save();
    pinned.run_detached();
    capped.run_detached();
    let look = "cd /sys/devices/system/cpu && ls | grep -E '^cpu[0-9]+$' | tr '\\n' ' '; echo; \
                cat online; for c in cpu[0-9]*; do cat $c/topology/core_id; readlink $c/subsystem; done; \
                ls cpufreq >/dev/null && cat possible";
    for (c, want) in [(&pinned, last), (&capped, first)] {
        let lines: Vec<String> = c.sh(look).lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0].trim(), format!("cpu{want}"), "{}: {lines:?}", c.id);
        assert_eq!(lines[1], want.to_string(), "online: {lines:?}");
        let host = |f: &str| {
            fs::read_to_string(format!("/sys/devices/system/cpu/cpu{want}/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            lines[2],
            host("topology/core_id"),
            "passed through: {lines:?}"
        );
        let link = fs::read_link(format!("/sys/devices/system/cpu/cpu{want}/subsystem")).unwrap();
        assert_eq!(
            lines[3],
            link.to_string_lossy(),
            "a symlink as it is: {lines:?}"
        );
        assert_eq!(
            lines[4],
            fs::read_to_string("/sys/devices/system/cpu/possible")
                .unwrap()
                .trim()
        );
        // Read-only, as the rest of its sysfs.
        let write = c.cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "echo 1 > /sys/devices/system/cpu/online",
        ]);
        assert!(
            write.code != 0 && write.stderr.contains("Read-only"),
            "{write}"
        );
    }
    // The host's own directory still lists every CPU.
    assert_eq!(
        fs::read_dir("/sys/devices/system/cpu")
            .unwrap()
            .flatten()
            .filter(|e| host_cpus.contains(&e.file_name().to_string_lossy().into_owned()))
            .count(),
        host_cpus.len()
    );
    report(&format!(
        "/sys/devices/system/cpu: host {} CPUs; pinned to cpu{last} sees cpu{last}, cpulimit 100 sees cpu{first}",
        host_cpus.len()
    ));
    for c in [&pinned, &capped] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// A system container has a clock of its own (a time namespace from its
/// creation): its init's and an exec'd process's start times in /proc/PID/stat
/// count from its boot and fall within its uptime, so `ps` shows their real
/// ages, and its /proc/stat's btime is its boot; the host sees the host's.
#[test]
fn processes_start_times_count_from_the_containers_boot() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    if !Path::new("/proc/self/ns/time").exists() {
        skip("container clock: this kernel has no time namespaces");
        return;
    }
    let out = TempDir::new("sys-clock");
    let c = busybox_init("sysclock", out.path(), &[]);
    c.run_detached();
    wait_file(&out.path().join("environ"));
    std::thread::sleep(Duration::from_millis(1200));
    let seen = c.sh(
        "cut -d' ' -f22 /proc/1/stat; cut -d' ' -f22 /proc/self/stat; \
         grep ^btime /proc/stat; readlink /proc/self/ns/time; cat /proc/uptime",
    );
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 5, "{seen}");
    // Read last: every process above started before.
    let uptime: f64 = lines[4].split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let init_start = lines[0].parse::<f64>().unwrap() / hz;
    let exec_start = lines[1].parse::<f64>().unwrap() / hz;
    assert!(
        (1.0..60.0).contains(&uptime) && init_start <= uptime && exec_start <= uptime,
        "uptime {uptime}, init started at {init_start}, the exec at {exec_start}: {seen}"
    );
    assert!(exec_start >= 1.0, "the exec started after the init: {seen}");
    assert_ne!(
        lines[3],
        fs::read_link("/proc/self/ns/time")
            .unwrap()
            .to_string_lossy(),
        "its own time namespace"
    );
    // Its boot, as a wall time: the host's boot plus the host's uptime at its creation.
    let host_stat = fs::read_to_string("/proc/stat").unwrap();
    let host_btime: f64 = host_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let btime: f64 = lines[2].trim_start_matches("btime ").parse().unwrap();
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let want = host_btime + host_up - uptime;
    assert!(
        (btime - want).abs() <= 2.0,
        "btime {btime}, want {want} (host btime {host_btime}, up {host_up}; it is up {uptime})"
    );
    // The host's view of the same init: the host's clock.
    let stat = fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
    let host_start: f64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / hz;
    assert!(
        (host_start - (host_up - uptime)).abs() < 2.0,
        "the host sees its init start at {host_start} s after the host's boot"
    );
    report(&format!(
        "container clock: up {uptime} s, init started at {init_start} s, an exec at {exec_start} s, btime {btime} (host {host_btime})"
    ));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// A meminfo-style `Key: N kB` value.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// The container's CPU time so far, from its cgroup, in seconds.
fn cgroup_cpu_seconds(cg: &str) -> f64 {
    if cgroup_v2() {
        let stat = read_cgroup("", cg, "cpu.stat").unwrap_or_default();
        let usec: f64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        usec / 1e6
    } else {
        let ns: f64 = read_cgroup("cpuacct", cg, "cpuacct.usage")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        ns / 1e9
    }
}

/// Two system containers read their view at the same time, each its own
/// numbers (a host reader of the same files gets the host's): meminfo, and
/// /proc/stat's CPU time, CPUs and threads, /proc/swaps, /proc/diskstats
/// (its reads, from its cgroup), each compared with the container's cgroup.
#[test]
fn proc_stat_swaps_diskstats_are_each_containers_own() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let (a_out, b_out) = (TempDir::new("sys-a"), TempDir::new("sys-b"));
    let a = busybox_init(
        "sysva",
        a_out.path(),
        &[("runvz.ubc.physpages", "0:128M"), ("runvz.cpulimit", "100")],
    );
    let b = busybox_init("sysvb", b_out.path(), &[("runvz.ubc.physpages", "0:256M")]);
    // A file to read cold, for diskstats.
    fs::write(a.bundle.rootfs_path().join("data"), vec![7u8; 4 << 20]).unwrap();
    a.run_detached();
    b.run_detached();
    wait_file(&a_out.path().join("environ"));
    wait_file(&b_out.path().join("environ"));

    // Both at once, several times: never the other's numbers.
    std::thread::scope(|scope| {
        for (c, total) in [(&a, 128 * 1024), (&b, 256 * 1024)] {
            scope.spawn(move || {
                for _ in 0..5 {
                    let meminfo = c.sh("cat /proc/meminfo");
                    assert_eq!(kb(&meminfo, "MemTotal:"), total, "{}: {meminfo}", c.id);
                }
            });
        }
    });
    // Each container's files are its own on the host too, and the host may read them.
    for (c, total) in [(&a, 128 * 1024), (&b, 256 * 1024)] {
        let dir = format!(
            "/run/runvz.procview/{}",
            runvz_key_name(&runvz_key(&c.rt, &c.id))
        );
        let meminfo = fs::read_to_string(format!("{dir}/meminfo")).unwrap();
        assert_eq!(kb(&meminfo, "MemTotal:"), total, "{dir}/meminfo");
    }

    // /proc/stat after two seconds of a busy loop under cpulimit 100.
    let stat = a.sh("timeout 2 sh -c 'while :; do :; done'; cat /proc/stat");
    let used = cgroup_cpu_seconds(&a.cg);
    let cpu_lines: Vec<&str> = stat.lines().filter(|l| l.starts_with("cpu")).collect();
    assert_eq!(
        cpu_lines.len(),
        2,
        "the total and one CPU under cpulimit 100: {stat}"
    );
    assert!(cpu_lines[1].starts_with("cpu0 "), "{stat}");
    let fields: Vec<f64> = cpu_lines[0]
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    let shown = (fields[0] + fields[2]) / 100.0;
    // The kernel counts user and system time by ticks and the cgroup's total
    // by the scheduler's clock: they differ by a few ticks per second.
    assert!(
        shown >= 0.5 && (shown - used).abs() <= (0.15 * used).max(0.2),
        "/proc/stat user+system {shown} s, the cgroup's {used} s: {stat}"
    );
    assert!(
        stat.lines().any(|l| l.starts_with("procs_running ")),
        "{stat}"
    );

    // /proc/swaps: the header, and at most the container's one device.
    let swaps = a.sh("cat /proc/swaps");
    assert!(swaps.starts_with("Filename"), "{swaps}");
    assert!(swaps.lines().count() <= 2, "{swaps}");

    // /proc/diskstats: what its cgroup counts, read from a cold file.
    let _ = Command::new("sync").status();
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
    let diskstats = a.sh("cat /data > /dev/null; cat /proc/diskstats");
    let io = if cgroup_v2() {
        read_cgroup("", &a.cg, "io.stat").unwrap_or_default()
    } else {
        read_cgroup("blkio", &a.cg, "blkio.throttle.io_serviced").unwrap_or_default()
    };
    let host_disks = fs::read_to_string("/proc/diskstats").unwrap();
    assert_ne!(diskstats, host_disks, "the host's diskstats show through");
    let devices: Vec<String> = io
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|d| d.contains(':'))
        .map(str::to_string)
        .collect();
    for line in diskstats.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let device = format!("{}:{}", fields[0], fields[1]);
        assert!(
            devices.contains(&device),
            "{device} is not the container's: {diskstats} / {io}"
        );
    }
    // Its reads, as its cgroup counts them (v1 `8:0 Read N`, v2 `rios=N`).
    let cgroup_reads: u64 = io
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match fields[..] {
                [_, "Read", n] => n.parse().unwrap_or(0),
                _ => fields
                    .iter()
                    .find_map(|f| f.strip_prefix("rios=")?.parse().ok())
                    .unwrap_or(0),
            }
        })
        .sum();
    let reads: u64 = diskstats
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        reads, cgroup_reads,
        "reads inside vs the cgroup's: {diskstats} / {io}"
    );
    if cgroup_reads == 0 {
        report("diskstats: no read reached a block device here (tmpfs or cached rootfs)");
    } else {
        report(&format!("diskstats inside: {}", diskstats.trim()));
    }
    report(&format!(
        "/proc/stat: {} (cgroup {used:.2} s); meminfo 128M/256M in parallel",
        cpu_lines[0]
    ));
    for c in [&a, &b] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// busybox `free` and `uptime` ask sysinfo(2), which the view's server
/// answers: the container's memory, uptime and load. `runvz.sysinfo=host`
/// leaves the kernel's answer; a seccomp profile that refuses sysinfo keeps
/// refusing it.
#[test]
fn sysinfo_answers_with_the_containers_numbers() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-si");
    let c = busybox_init("syssi", out.path(), &[("runvz.ubc.physpages", "0:192M")]);
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let free = c.sh("free");
    let mem: Vec<&str> = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("{free}"))
        .split_whitespace()
        .collect();
    assert_eq!(mem[1], (192 * 1024).to_string(), "free's total: {free}");
    let used: u64 = mem[2].parse().unwrap();
    assert!(used < 192 * 1024, "{free}");
    let uptime = c.sh("uptime");
    assert!(
        uptime.contains("up 0 min"),
        "a container started just now: {uptime}"
    );
    report(&format!(
        "busybox free inside: {}",
        free.lines().nth(1).unwrap_or("").trim()
    ));

    // The kernel's answer, asked for.
    let host_out = TempDir::new("sys-sih");
    let h = busybox_init(
        "syssih",
        host_out.path(),
        &[("runvz.ubc.physpages", "0:192M"), ("runvz.sysinfo", "host")],
    );
    h.run_detached();
    wait_file(&host_out.path().join("environ"));
    let free = h.sh("free | grep ^Mem:");
    let host_total = kb(&fs::read_to_string("/proc/meminfo").unwrap(), "MemTotal:");
    assert_eq!(
        free.split_whitespace().nth(1),
        Some(host_total.to_string().as_str()),
        "runvz.sysinfo=host: {free}"
    );

    // A profile that refuses sysinfo.
    let deny_out = TempDir::new("sys-sid");
    let mut d = busybox_init("syssid", deny_out.path(), &[]);
    d.bundle.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sysinfo"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        }),
    );
    d.bundle.save();
    d.run_detached();
    wait_file(&deny_out.path().join("environ"));
    // The profile reaches the container as it was: no agent, sysinfo refused.
    let built: serde_json::Value =
        serde_json::from_slice(&fs::read(d.rt.state_dir(&d.id).join("config.json")).unwrap())
            .unwrap();
    let seccomp = &built["linux"]["seccomp"];
    assert!(seccomp["listenerPath"].is_null(), "{seccomp}");
    assert_eq!(
        seccomp["syscalls"][0]["action"], "SCMP_ACT_ERRNO",
        "{seccomp}"
    );
    // busybox free ignores sysinfo's error and prints what its buffer held:
    // never the container's 192 MiB.
    let denied = d.sh("free | grep ^Mem:");
    assert_ne!(
        denied.split_whitespace().nth(1),
        Some((192 * 1024).to_string().as_str()),
        "{denied}"
    );
    for c in [&c, &h, &d] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// The container's own beancounters inside, at /dev/.runvz/user_beancounters:
/// OpenVZ's `Version: 2.5` table of its rows, live (numproc follows its
/// forks), with a failcnt once it hits numproc.
#[test]
fn beancounters_inside_are_live_and_count_failures() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-ubc");
    let c = busybox_init("sysubc", out.path(), &[("runvz.ubc.numproc", "12:12")]);
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let numproc = |table: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == "numproc"))
            .unwrap_or_else(|| panic!("no numproc row: {table}"))
            .split_whitespace()
            .skip_while(|w| *w != "numproc")
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    // Where `runvz features` says it is.
    let features = c.rt.cmd(&["features"]).json();
    let path = features["annotations"]["io.github.runvz.system.beancounters"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(path, "/dev/.runvz/user_beancounters");
    let table = c.sh(&format!("cat {path}"));
    assert!(table.starts_with("Version: 2.5\n"), "{table}");
    assert!(
        table.contains(&format!("{}:", c.id)),
        "its own rows: {table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(':')).count(),
        2,
        "one container's rows: {table}"
    );
    let before: u64 = numproc(&table)[0].parse().unwrap();
    for _ in 0..3 {
        c.cmd(&["exec", "-d", &c.id, "sleep", "1000"]).ok();
    }
    let table = c.sh("cat /dev/.runvz/user_beancounters");
    let after: u64 = numproc(&table)[0].parse().unwrap();
    assert!(
        after >= before + 3,
        "numproc held {before} → {after}: {table}"
    );
    // Past the limit: forks fail, and the table inside counts them.
    let _ = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; exit 0",
    ]);
    // Once the sleeps are gone, a process fits again.
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = c.cmd(&["exec", &c.id, "cat", "/dev/.runvz/user_beancounters"]);
            let ok = out.success();
            last = Some(out);
            ok
        }),
        "{}",
        last.as_ref().unwrap()
    );
    let table = last.unwrap().stdout;
    let row = numproc(&table);
    assert_eq!(row[2], "12", "barrier: {table}");
    let failcnt: u64 = row[4].parse().unwrap_or(0);
    assert!(failcnt >= 1, "no failcnt after hitting numproc: {table}");
    report(&format!(
        "numproc inside: held {before} → {after}, failcnt {failcnt} at the limit"
    ));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// The /proc view server's processes: (supervisor PIDs, worker PIDs).
fn view_server() -> (Vec<i32>, Vec<i32>) {
    let mut supervisors = Vec::new();
    let mut workers = Vec::new();
    for line in processes_matching(Some("internal-procview"), None) {
        let Some(pid) = line.split(':').next().and_then(|p| p.trim().parse().ok()) else {
            continue;
        };
        if line.contains("--worker") {
            workers.push(pid);
        } else {
            supervisors.push(pid);
        }
    }
    (supervisors, workers)
}

/// Whether the container's view (as a host process reads it, through its
/// init's root) answers: a dead server's files fail with "Transport endpoint
/// is not connected".
fn view_answers(init: i32) -> Result<usize, String> {
    fs::read_to_string(format!("/proc/{init}/root/proc/meminfo"))
        .map(|t| t.len())
        .map_err(|e| e.to_string())
}

/// The /proc view server killed (as the OOM killer or a stray `kill -9`
/// would). Its worker killed: the supervisor starts another and binds its
/// files into the container again, with no runvz command, and sysinfo still
/// answers (the supervisor keeps the notification fds). The supervisor
/// killed too: the files fail until the next `state` (or `exec`), which
/// starts the server again.
#[test]
fn a_killed_proc_view_server_is_restarted_and_readers_recover() {
    if skip_for_runc() || skip_without_fuse() {
        return;
    }
    let out = TempDir::new("sys-out");
    let c = busybox_init(
        "sysrevive",
        out.path(),
        &[("runvz.ubc.physpages", "0:256M")],
    );
    // No other test makes or reads a system container while the server is
    // killed: its shared hold on the server's lock becomes an exclusive one.
    hold_alone(&c.held[0]);
    // A process of the init's own (not an exec): `free` whenever /out/ask appears.
    fs::write(
        c.bundle.rootfs_path().join("etc/inittab"),
        "::sysinit:/bin/sh -c 'tr \"\\0\" \"\\n\" < /proc/1/environ > /out/environ'\n\
         ::respawn:/bin/sh -c 'while :; do if [ -e /out/ask ]; then free > /out/free 2>&1; rm /out/ask; fi; sleep 0.1; done'\n",
    )
    .unwrap();
    let ask_init = || -> String {
        let _ = fs::remove_file(out.path().join("free"));
        fs::write(out.path().join("ask"), "").unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || !out.path().join("ask").exists()),
            "the init's process did not answer"
        );
        fs::read_to_string(out.path().join("free")).unwrap_or_default()
    };
    let mem_of = |free: &str| -> String {
        free.lines()
            .find(|l| l.starts_with("Mem:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string()
    };
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let mem_total = || c.sh("grep ^MemTotal: /proc/meminfo | tr -s ' ' | cut -d' ' -f2");
    let free_total = || c.sh("free | grep ^Mem: | tr -s ' ' | cut -d' ' -f2");
    assert_eq!(mem_total().trim(), "262144");
    assert_eq!(free_total().trim(), "262144", "busybox free (sysinfo)");
    let init = c.pid();

    // 1. The worker alone.
    let (supervisors, workers) = view_server();
    assert!(
        supervisors.len() == 1 && workers.len() == 1,
        "one supervisor and one worker: {supervisors:?} {workers:?}"
    );
    let killed = Instant::now();
    // SAFETY: kill(2) with a PID and a signal.
    unsafe { libc::kill(workers[0], libc::SIGKILL) };
    let mut seen = Err(String::new());
    let recovered = wait_until(Duration::from_secs(10), || {
        let (_, now) = view_server();
        seen = view_answers(init);
        now.len() == 1 && now != workers && seen.is_ok()
    });
    assert!(
        recovered,
        "the worker was not replaced: {seen:?}, {:?}",
        view_server()
    );
    report(&format!(
        "worker killed: a new one serves the container again after {:?}, no runvz command",
        killed.elapsed()
    ));
    assert_eq!(view_server().0, supervisors, "the supervisor stays");
    assert_eq!(mem_total().trim(), "262144");
    // The init's own filter (a process it started, not an exec) still reaches
    // the supervisor.
    let by_init = ask_init();
    assert_eq!(
        mem_of(&by_init),
        "262144",
        "the init's free after the worker's restart: {by_init}"
    );
    assert_eq!(
        free_total().trim(),
        "262144",
        "sysinfo after the worker's restart"
    );

    // 2. The supervisor (its worker dies with it).
    let (supervisors, _) = view_server();
    // SAFETY: kill(2) with a PID and a signal.
    unsafe { libc::kill(supervisors[0], libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(5), || view_server() == (vec![], vec![])),
        "the server's processes stay: {:?}",
        view_server()
    );
    let dead = view_answers(init);
    report(&format!(
        "server killed: the container's /proc/meminfo reads {dead:?}"
    ));
    assert!(dead.is_err(), "a dead server's files answered: {dead:?}");
    let state = c.cmd(&["state", &c.id]);
    state.ok();
    assert!(
        view_answers(init).is_ok(),
        "after state (which said {:?}): {:?}",
        state.stderr,
        view_answers(init)
    );
    let (supervisors, workers) = view_server();
    assert!(
        supervisors.len() == 1 && workers.len() == 1,
        "{supervisors:?} {workers:?}"
    );
    assert_eq!(mem_total().trim(), "262144", "the view after state");
    // A process exec'd now loads the filter afresh: the new supervisor answers.
    assert_eq!(free_total().trim(), "262144", "sysinfo of a new exec");
    // The init's filter lost its listener with the supervisor: the kernel
    // answers its processes' sysinfo with ENOSYS from now on (README).
    report(&format!(
        "after the supervisor's death, the init's own free says {:?}",
        ask_init().trim()
    ));
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
    let mut c = system_ctx("sysram", &["/sbin/init"]);
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
/// A system container's capabilities, config.json.example's: Podman's and
/// CAP_NET_ADMIN, which a network sysctl wants in its namespace's owner.
fn system_caps(c: &mut Ctx) {
    let mut caps = podman_caps();
    caps.as_array_mut().unwrap().push(json!("CAP_NET_ADMIN"));
    for set in ["bounding", "effective", "permitted"] {
        c.bundle
            .set(&format!("/process/capabilities/{set}"), caps.clone());
    }
    c.bundle.save();
}

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
    let mut c = system_ctx("sysd", &["/sbin/init"]);
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
        let mut c = system_ctx(prefix, &["/sbin/init"]);
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

/// Containers inside a system container with its own user namespace: a
/// nested user and PID namespace with its own procfs (`unshare -Urpf
/// --mount-proc`, what rootless Podman and runc with a user namespace do;
/// "Mount too revealing" without an uncovered procfs) and its own read-write
/// sysfs, /proc/sys writable for
/// what its own namespaces own (Podman's crun sets ping_group_range) while the
/// host's sysctls stay refused, and /dev/fuse and /dev/net/tun its root can
/// open (fuse-overlayfs, slirp4netns).
#[test]
fn nested_namespaces_sysctls_and_devices_work_inside() {
    if skip_for_runc() {
        return;
    }
    let out = TempDir::new("sys-nest");
    let mut c = busybox_init("sysnest", out.path(), &[]);
    // A system container's capabilities (the test bundle's default set is
    // runc's minimal one, without CAP_SETUID/SETGID for the nested ID maps).
    system_caps(&mut c);
    c.bundle.save();
    c.run_detached();
    wait_file(&out.path().join("environ"));
    let nested = c.cmd(&[
        "exec",
        &c.id,
        "unshare",
        "-Urpf",
        "--mount-proc",
        "sh",
        "-c",
        "ps; cat /proc/self/uid_map",
    ]);
    nested.ok();
    assert!(
        nested
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("1 ")),
        "the nested PID namespace's own procfs: {nested}"
    );
    // A read-write sysfs of a nested network namespace, as crun mounts it
    // (refused as too revealing where only a read-only one is visible).
    let sysfs = c.sh("mkdir -p /tmp/sys && unshare -Urnm sh -c 'mount -t sysfs sysfs /tmp/sys && ls /tmp/sys/class/net'");
    assert_eq!(
        sysfs.trim(),
        "lo",
        "the nested namespace's own devices: {sysfs}"
    );
    let mounts = c.sh("cat /proc/mounts");
    // Where LXC has them (engines skip /dev/.lxc when they walk /dev).
    for (dest, kind) in [("/dev/.lxc/proc", "proc"), ("/dev/.lxc/sys", "sysfs")] {
        assert!(
            mounts
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(dest)
                    && l.split_whitespace().nth(2) == Some(kind)),
            "no {kind} at {dest}:\n{mounts}"
        );
    }
    // Its own network namespace's sysctl: writable.
    let own = c.sh(
        "echo '0 0' > /proc/sys/net/ipv4/ping_group_range && cat /proc/sys/net/ipv4/ping_group_range",
    );
    assert_eq!(
        own.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "{own}"
    );
    // The host's: refused, and unchanged.
    let host_before = fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap();
    let global = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "echo 42 > /proc/sys/kernel/printk_ratelimit",
    ]);
    assert!(!global.success(), "a host sysctl was writable: {global}");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap(),
        host_before
    );
    for dev in ["/dev/fuse", "/dev/net/tun"] {
        if !Path::new(dev).exists() {
            // The rest of the test ran: not a skip.
            report(&format!(
                "{dev}: the host has none, so neither has the container"
            ));
            continue;
        }
        let node = c.sh(&format!(
            "stat -c '%F %u:%g %a' {dev}; exec 3<>{dev} && echo opened"
        ));
        assert_eq!(
            node.lines().collect::<Vec<_>>(),
            ["character special file 0:0 666", "opened"],
            "{dev} inside"
        );
    }
    report(&format!(
        "nested: {}",
        nested.stdout.lines().next().unwrap_or("").trim()
    ));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// `runvz.userns=auto:size=N`: a larger range of whole 65536-ID slots (room
/// for the subordinate IDs a container inside wants, Debian's default
/// `100000:65536` among them), disjoint from every other; a size that is not
/// whole slots is refused with one line and nothing left.
#[test]
fn userns_auto_size_gives_a_larger_disjoint_range() {
    if skip_for_runc() {
        return;
    }
    let (big_out, small_out) = (TempDir::new("sys-big"), TempDir::new("sys-small"));
    let mut big = busybox_init(
        "sysbig",
        big_out.path(),
        &[("runvz.userns", "auto:size=1048576")],
    );
    let mut small = busybox_init("syssmall", small_out.path(), &[]);
    // CAP_CHOWN, as a system container has.
    system_caps(&mut big);
    system_caps(&mut small);
    big.run_detached();
    small.run_detached();
    wait_file(&big_out.path().join("environ"));
    wait_file(&small_out.path().join("environ"));
    let map = |c: &Ctx| -> (u64, u64) {
        let text = fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        (fields[1], fields[2])
    };
    let ((big_start, big_size), (small_start, small_size)) = (map(&big), map(&small));
    assert_eq!((big_size, small_size), (1_048_576, 65_536));
    assert!(
        small_start + small_size <= big_start || big_start + big_size <= small_start,
        "ranges overlap: {big_start}+{big_size} and {small_start}+{small_size}"
    );
    // An ID above 65535 exists in the large one only.
    let chown = "touch /tmp/f && chown 200000:200000 /tmp/f && stat -c %u /tmp/f";
    assert_eq!(big.sh(chown).trim(), "200000");
    let refused = small.cmd(&["exec", &small.id, "sh", "-c", chown]);
    assert!(
        !refused.success(),
        "ID 200000 in a 65536-ID range: {refused}"
    );
    for c in [&big, &small] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }

    let bad_out = TempDir::new("sys-bad");
    let bad = busybox_init(
        "sysbadsz",
        bad_out.path(),
        &[("runvz.userns", "auto:size=1000")],
    );
    let out = bad.cmd(&["create", "--bundle", bad.bundle.path_str(), &bad.id]);
    out.failed();
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(out.stderr.contains("multiple of 65536"), "{out}");
    bad.assert_no_leak();
}
