//! Beancounters set through `runvz.ubc.*` annotations, enforced for real: each
//! test pushes a container past a bound and checks that the kernel refused (and
//! that the bound is where runvz put it). Also the CPU knobs and bad values.

use std::time::Duration;

use runtime_tests::*;

fn skip_for_runc() -> bool {
    if runtime_is_runc() {
        skip("beancounter annotations are runvz's; runc ignores them");
        return true;
    }
    false
}

/// A container with the given annotations running `script` in the foreground.
fn run_with(prefix: &str, annotations: &[(&str, &str)], script: &str) -> (Ctx, Output) {
    let mut c = Ctx::new(prefix, &["sh", "-c", script]);
    for (key, value) in annotations {
        c.bundle.annotation(key, value);
    }
    c.bundle.save();
    let out = c.run_fg(None, Duration::from_secs(60));
    (c, out)
}

#[test]
fn numproc_stops_forks_at_the_limit() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("np", &["sh", "-c", "sleep 100"]);
    c.bundle.annotation("runvz.ubc.numproc", "6");
    c.bundle.save();
    c.run_detached();
    let cg = c.cgroup();
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("6"));
    // 1 (init) + 1 (exec'd shell) + sleeps: the 5th sleep has no room.
    let out = c.cmd(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "n=0; for i in 1 2 3 4 5 6; do sleep 100 & n=$((n+1)); done; echo started=$n",
    ]);
    assert!(
        out.stderr.contains("fork") || out.stdout.contains("fork"),
        "no fork failure past numproc: {out}"
    );
    assert!(
        cg.pids_current() <= 6,
        "pids.current above the limit: {}",
        cg.pids_current()
    );
    let events = cg.read("pids", "pids.events").unwrap_or_default();
    let failcnt: u64 = events
        .split_whitespace()
        .skip_while(|w| *w != "max")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(failcnt > 0, "pids.events shows no refused fork: {events:?}");

    // `runvz beancounters` reads the same failure back, in OpenVZ's table...
    let table = c.cmd(&["beancounters", &c.id]);
    table.ok();
    report(&format!("runvz beancounters {}:\n{}", c.id, table.stdout));
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"Version: 2.5"), "{table}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "uid", "resource", "held", "maxheld", "barrier", "limit", "failcnt"
        ]
    );
    assert_eq!(
        lines.len(),
        2 + 25,
        "one row per resource and dummy: {table}"
    );
    let first: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        first[0],
        format!("{}:", c.id),
        "the first row carries the id"
    );
    assert_eq!(first[1], "kmemsize");
    let row: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&"numproc"))
        .expect("numproc row");
    let num = |i: usize| row[i].parse::<u64>().unwrap_or_else(|_| panic!("{row:?}"));
    let (held, maxheld, barrier, limit, fails) = (num(1), num(2), num(3), num(4), num(5));
    assert_eq!((barrier, limit), (6, 6), "{row:?}");
    assert!(held <= 6 && maxheld >= held, "{row:?}");
    assert!(
        fails >= failcnt,
        "failcnt {fails} below the kernel's {failcnt}: {row:?}"
    );

    // ...and as JSON, with units and what is and is not enforced.
    let json = c.cmd(&["beancounters", "--format", "json", &c.id]).json();
    let rows = json[0]["beancounters"].as_array().expect("rows");
    assert_eq!(rows.len(), 21);
    let numproc = rows.iter().find(|r| r["resource"] == "numproc").unwrap();
    assert_eq!(numproc["unit"], "count");
    assert_eq!(numproc["enforced"], true);
    assert!(numproc["failcnt"].as_u64().unwrap() >= failcnt);
    assert_eq!(numproc["limit"], 6);
    let numiptent = rows.iter().find(|r| r["resource"] == "numiptent").unwrap();
    assert_eq!(numiptent["enforced"], false, "{numiptent}");
    assert!(
        numiptent["failcnt"].is_null(),
        "a failcnt nobody measured: {numiptent}"
    );
    let physpages = rows.iter().find(|r| r["resource"] == "physpages").unwrap();
    assert_eq!(physpages["unit"], "pages");
    assert!(physpages["held"].as_u64().unwrap() > 0, "{physpages}");

    // events --stats keeps runc's schema and adds the rows.
    let event = c.cmd(&["events", "--stats", &c.id]).json();
    assert!(event["data"]["pids"]["current"].is_u64(), "{event}");
    assert_eq!(
        event["data"]["beancounters"].as_array().map(Vec::len),
        Some(21)
    );
}

#[test]
fn update_changes_beancounters_of_a_running_container() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("bcup", &["sleep", "1000"]);
    c.bundle
        .annotation("runvz.ubc.numproc", "4")
        .annotation("runvz.ubc.numfile", "64:128")
        .annotation("runvz.ubc.shmpages", "256");
    c.bundle.save();
    c.run_detached();
    let forks = "for i in 1 2 3 4; do sleep 100 & done; wait";
    let before = c.cmd(&["exec", "-d", &c.id, "sh", "-c", forks]);
    let _ = before;
    std::thread::sleep(Duration::from_millis(500));
    let cg = c.cgroup();
    assert!(
        cg.pids_current() <= 4,
        "numproc 4 let more in: {}",
        cg.pids_current()
    );
    let out = c.cmd(&["exec", &c.id, "true"]);
    out.failed();

    // Raise it live: the next fork goes through.
    c.cmd(&[
        "update",
        "--numproc",
        "50:50",
        "--numfile",
        "100:128",
        "--shmpages",
        "1M",
        &c.id,
    ])
    .ok();
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("50"));
    c.cmd(&["exec", &c.id, "true"]).ok();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", c.pid())).unwrap();
    let nofile: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &nofile[3..5],
        ["100", "128"],
        "init's NOFILE after update: {limits}"
    );
    // ...and a process exec'd after the update starts with it.
    let later = c.cmd(&["exec", &c.id, "sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    later.ok();
    assert_eq!(
        later.stdout.lines().collect::<Vec<_>>(),
        ["100", "128"],
        "NOFILE of a later exec: {later}"
    );
    let mounts = c.cmd(&["exec", &c.id, "cat", "/proc/mounts"]);
    mounts.ok();
    let shm = mounts
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/dev/shm"))
        .unwrap_or_else(|| panic!("no /dev/shm: {mounts}"));
    assert!(
        shm.contains("size=1024k"),
        "/dev/shm not remounted to 1M: {shm}"
    );

    // The new bounds are what `beancounters` reports.
    let json = c.cmd(&["beancounters", "--format", "json", &c.id]).json();
    let row = |name: &str| {
        json[0]["beancounters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            row("numproc")["barrier"].as_u64(),
            row("numproc")["limit"].as_u64()
        ),
        (Some(50), Some(50))
    );
    assert_eq!(
        (
            row("numfile")["barrier"].as_u64(),
            row("numfile")["limit"].as_u64()
        ),
        (Some(100), Some(128))
    );
    assert_eq!(row("shmpages")["limit"].as_u64(), Some(256));

    // A bad bound is refused and changes nothing.
    let out = c.cmd(&["update", "--numproc", "60:50", &c.id]);
    out.failed();
    assert!(out.stderr.contains("numproc"), "{out}");
    assert_eq!(cg.read("pids", "pids.max").as_deref(), Some("50"));
}

#[test]
fn numfile_limits_open_files() {
    if skip_for_runc() {
        return;
    }
    let (_c, out) = run_with(
        "nf",
        &[("runvz.ubc.numfile", "16:24")],
        // A failed `exec N<file` ends the shell, so the last line printed is the
        // last descriptor that could be opened.
        "ulimit -Sn; ulimit -Hn; i=3; while [ $i -lt 40 ]; do eval \"exec $i</dev/null\" && echo opened=$i; i=$((i+1)); done",
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"16"), "soft NOFILE (barrier): {out}");
    assert_eq!(lines.get(1), Some(&"24"), "hard NOFILE (limit): {out}");
    // fds 0..15 are all there is: opening fd 16 fails.
    assert_eq!(
        lines.last(),
        Some(&"opened=15"),
        "opened past numfile: {out}"
    );
    assert_ne!(
        out.code, 0,
        "the shell should have failed to open fd 16: {out}"
    );
}

#[test]
fn numpty_limits_ptys() {
    if skip_for_runc() {
        return;
    }
    let (_c, out) = run_with(
        "pt",
        &[("runvz.ubc.numpty", "2")],
        "exec 3<>/dev/ptmx && echo pty1; exec 4<>/dev/ptmx && echo pty2; exec 5<>/dev/ptmx && echo pty3; echo done",
    );
    assert!(
        out.stdout.contains("pty1") && out.stdout.contains("pty2"),
        "first two ptys: {out}"
    );
    assert!(
        !out.stdout.contains("pty3"),
        "a third pty opened past numpty=2: {out}"
    );
    assert!(
        out.stderr.contains("No space left on device"),
        "no ENOSPC: {out}"
    );
}

#[test]
fn shmpages_bounds_dev_shm() {
    if skip_for_runc() {
        return;
    }
    let (_c, out) = run_with(
        "sh",
        &[("runvz.ubc.shmpages", "256")],
        "dd if=/dev/zero of=/dev/shm/fill bs=64k count=64 2>&1; ls -l /dev/shm/fill; \
         echo shmall=$(cat /proc/sys/kernel/shmall) shmmax=$(cat /proc/sys/kernel/shmmax)",
    );
    // System V shared memory gets the same bound in the IPC namespace.
    assert!(
        out.stdout.contains("shmall=256 shmmax=1048576"),
        "kernel.shmall/shmmax not bounded: {out}"
    );
    assert!(
        out.stdout.contains("No space left on device"),
        "filled /dev/shm past shmpages: {out}"
    );
    let size: u64 = out
        .stdout
        .lines()
        .find(|l| l.starts_with('-') && l.contains("/dev/shm/fill"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        size <= 256 * 4096,
        "file in /dev/shm is {size} bytes, bound is 1 MiB: {out}"
    );
}

#[test]
fn lockedpages_sets_the_memlock_limit() {
    if skip_for_runc() {
        return;
    }
    // 16:32 pages = 64:128 KiB; `ulimit -l` reports KiB.
    let (_c, out) = run_with(
        "lp",
        &[("runvz.ubc.lockedpages", "16:32")],
        "ulimit -Sl; ulimit -Hl",
    );
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["64", "128"],
        "{out}"
    );
}

#[test]
fn physpages_holds_memory_within_the_limit() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("pp", &["sleep", "100"]);
    c.bundle.annotation("runvz.ubc.physpages", "0:8192"); // 32 MiB
    c.bundle.save();
    c.run_detached();
    let cg = c.cgroup();
    let limit_file = if cgroup_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(cg.read("memory", limit_file).as_deref(), Some("33554432"));
    // `sort` holds its input in memory: a 96 MiB line cannot fit in 32 MiB.
    let out = c.rt.cmd_timeout(
        &[
            "exec",
            &c.id,
            "sh",
            "-c",
            "head -c 100663296 /dev/zero | sort >/dev/null && echo survived",
        ],
        Duration::from_secs(60),
    );
    assert!(
        !out.stdout.contains("survived") || out.code != 0,
        "allocated past physpages: {out}"
    );
    let failures = if cgroup_v2() {
        let events = cg.read("memory", "memory.events").unwrap_or_default();
        events
            .lines()
            .filter(|l| l.starts_with("max ") || l.starts_with("oom "))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>()
    } else {
        cg.read("memory", "memory.failcnt")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    assert!(failures > 0, "the memory cgroup counted no failure");
    let peak_file = if cgroup_v2() {
        "memory.peak"
    } else {
        "memory.max_usage_in_bytes"
    };
    if let Some(peak) = cg
        .read("memory", peak_file)
        .and_then(|s| s.parse::<u64>().ok())
    {
        assert!(
            peak <= 33554432,
            "memory peaked at {peak}, above the 32 MiB bound"
        );
    }
}

#[test]
fn cpuunits_and_cpulimit_reach_the_cpu_controller() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("cu", &["sleep", "100"]);
    c.bundle
        .annotation("runvz.cpuunits", "2000")
        .annotation("runvz.cpulimit", "50");
    c.bundle.save();
    c.run_detached();
    let cg = c.cgroup();
    if cgroup_v2() {
        // OpenVZ's v2 mapping: weight = cpuunits / 10.
        assert_eq!(cg.read("cpu", "cpu.weight").as_deref(), Some("200"));
    } else {
        cg.assert(&Setting::CpuShares(Some(2048)));
    }
    cg.assert(&Setting::CpuMax {
        quota: Some(50_000),
        period: 100_000,
    });
}

const BUSY_LOOP: &str = "while :; do :; done";

/// OpenVZ's promise for cpuunits: busy containers share a CPU in proportion.
/// Two busy loops pinned to CPU 0 (runvz.cpus=1), 1000 vs 4000 units.
#[test]
fn cpuunits_share_one_cpu_in_proportion() {
    if skip_for_runc() {
        return;
    }
    let make = |prefix: &str, units: &str| {
        let mut c = Ctx::new(prefix, &["sh", "-c", BUSY_LOOP]);
        c.bundle
            .annotation("runvz.cpuunits", units)
            .annotation("runvz.cpus", "1");
        c.bundle.save();
        c.run_detached();
        c
    };
    let small = make("cu1k", "1000");
    let big = make("cu4k", "4000");
    std::thread::sleep(Duration::from_millis(500));
    let (s0, b0) = (
        small.cgroup().cpu_usage_usec(),
        big.cgroup().cpu_usage_usec(),
    );
    std::thread::sleep(Duration::from_secs(4));
    let (s1, b1) = (
        small.cgroup().cpu_usage_usec(),
        big.cgroup().cpu_usage_usec(),
    );
    let (s, b) = ((s1 - s0) as f64, (b1 - b0) as f64);
    assert!(s > 0.0, "the 1000-unit container got no CPU at all");
    let ratio = b / s;
    report(&format!(
        "cpuunits 4000 vs 1000 on one CPU over 4 s: {:.0} ms vs {:.0} ms, ratio {ratio:.2}",
        b / 1000.0,
        s / 1000.0
    ));
    assert!(
        (2.5..=6.0).contains(&ratio),
        "CPU time ratio {ratio:.2}, expected about 4"
    );
    for c in [&small, &big] {
        c.cmd(&["delete", "--force", &c.id]).ok();
        c.assert_no_leak();
    }
}

/// cpulimit 50 caps a busy loop near half a CPU.
#[test]
fn cpulimit_caps_a_busy_loop_near_half_a_cpu() {
    if skip_for_runc() {
        return;
    }
    let mut c = Ctx::new("cl50", &["sh", "-c", BUSY_LOOP]);
    c.bundle.annotation("runvz.cpulimit", "50");
    c.bundle.save();
    c.run_detached();
    std::thread::sleep(Duration::from_millis(500));
    let cg = c.cgroup();
    let (u0, t0) = (cg.cpu_usage_usec(), std::time::Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (u1, wall) = (cg.cpu_usage_usec(), t0.elapsed());
    let share = (u1 - u0) as f64 / wall.as_micros() as f64;
    report(&format!(
        "cpulimit 50: a busy loop used {:.0}% of a CPU over {wall:?}",
        share * 100.0
    ));
    // Above: the cap (plus one period's slack); below: it did run.
    assert!(
        share <= 0.56,
        "cpulimit 50 let it use {:.0}% of a CPU",
        share * 100.0
    );
    assert!(
        share >= 0.25,
        "the capped loop hardly ran: {:.0}%",
        share * 100.0
    );
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}

/// Each bad value is one clear error naming the key, and nothing is left behind.
#[test]
fn bad_beancounter_values_are_refused_before_anything_is_created() {
    if skip_for_runc() {
        return;
    }
    for (key, value, says) in [
        ("runvz.ubc.numproc", "abc", "\"abc\" is not a number"),
        (
            "runvz.ubc.numproc",
            "300:200",
            "barrier 300 is above limit 200",
        ),
        ("runvz.ubc.nosuch", "1", "unknown beancounter \"nosuch\""),
        ("runvz.ubc.numpty", "4K", "takes no size suffix"),
        ("runvz.cpuunits", "1", "outside 8…500000"),
        ("runvz.bogus", "1", "unknown runvz annotation"),
        ("runvz.ubc.numfile", "1000000000", "RLIMIT_NOFILE"),
        (
            "runvz.diskspace",
            "2G:1G",
            "barrier 2097152 is above limit 1048576",
        ),
        ("runvz.diskinodes", "1K", "takes no size suffix"),
        // Knobs runvz does not enforce yet are refused, never ignored.
        ("runvz.cpumask", "0-1", "not supported: CPU masks"),
    ] {
        let mut c = Ctx::new("bv", &["true"]);
        c.bundle.annotation(key, value);
        c.bundle.save();
        let out = c.cmd(&["create", "--bundle", c.bundle.path_str(), &c.id]);
        out.failed();
        let line = out.stderr.trim();
        assert_eq!(line.lines().count(), 1, "more than one error line: {out}");
        assert!(
            line.contains(key) && line.contains(says),
            "{key}={value}: {line}"
        );
        c.assert_no_leak();
    }
}

/// iolimit throttles the container's disk writes (direct I/O, so the page
/// cache cannot hide it), measured against the same write unthrottled.
#[test]
fn iolimit_throttles_disk_writes() {
    if skip_for_runc() {
        return;
    }
    let features = Runtime::new().cmd(&["features"]).json();
    let how = features["annotations"]["runvz.iolimit"]
        .as_str()
        .unwrap_or("missing")
        .to_string();
    if !how.starts_with("enforced") {
        skip(&format!("iolimit on this host: {how}"));
        return;
    }
    let data = TempDir::new("iolimit");
    if std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(data.path()).unwrap()) >> 8 == 0 {
        skip("iolimit: the test directory is not on a disk (tmpfs?)");
        return;
    }
    let write = |prefix: &str, iolimit: Option<&str>| {
        let mut c = Ctx::new(
            prefix,
            &[
                "dd",
                "if=/dev/zero",
                "of=/data/f",
                "bs=256k",
                "count=24",
                "oflag=direct",
            ],
        );
        if let Some(limit) = iolimit {
            c.bundle.annotation("runvz.iolimit", limit);
        }
        c.bundle.add_mount(serde_json::json!({
            "destination": "/data", "type": "bind",
            "source": data.path().to_str().unwrap(), "options": ["rbind", "rw"]
        }));
        c.bundle.save();
        let out = c.run_fg(None, Duration::from_secs(60));
        assert_eq!(out.code, 0, "dd failed: {out}");
        c.assert_no_leak();
        out.elapsed
    };
    let free = write("iofree", None);
    if free > Duration::from_millis(1500) {
        skip(&format!(
            "iolimit: 6 MiB unthrottled took {free:?}; the disk is too slow to tell"
        ));
        return;
    }
    let throttled = write("io2m", Some("2M"));
    report(&format!(
        "6 MiB direct write: {free:?} unthrottled, {throttled:?} with iolimit 2M ({how})"
    ));
    assert!(
        throttled >= Duration::from_millis(2400),
        "iolimit 2M let 6 MiB through in {throttled:?}"
    );
}

/// ioprio becomes a block-I/O weight where the host has one; where it has none,
/// the container still runs and the report says the knob is not enforced and why.
#[test]
fn ioprio_sets_the_io_weight_or_says_why_not() {
    if skip_for_runc() {
        return;
    }
    let start = |prefix: &str, prio: &str| {
        let mut c = Ctx::new(prefix, &["sleep", "100"]);
        c.bundle.annotation("runvz.ioprio", prio);
        c.bundle.save();
        c.run_detached();
        c
    };
    let low = start("iop0", "0");
    let json = low
        .cmd(&["beancounters", "--format", "json", &low.id])
        .json();
    let knob = &json[0]["knobs"]["ioprio"];
    assert_eq!(knob["value"], 0, "{knob}");
    if knob["enforced"] == false {
        let why = knob["mechanism"].as_str().unwrap_or("");
        assert!(why.starts_with("not enforced: "), "{knob}");
        skip(&format!("ioprio on this host: {why}"));
        return;
    }
    let high = start("iop7", "7");
    let weight = |c: &Ctx| -> u64 {
        let cg = c.cgroup();
        let text = cg
            .read("blkio", "io.bfq.weight")
            .or_else(|| cg.read("blkio", "io.weight"))
            .or_else(|| cg.read("blkio", "blkio.weight"))
            .or_else(|| cg.read("blkio", "blkio.bfq.weight"))
            .expect("no weight file");
        // "default 100" (v2) or "100" (v1)
        text.split_whitespace()
            .last()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("weight {text:?}"))
    };
    let (w0, w7) = (weight(&low), weight(&high));
    report(&format!("ioprio 0 → weight {w0}, ioprio 7 → weight {w7}"));
    assert!(
        w7 > w0 * 3 / 2,
        "ioprio 7 ({w7}) not well above ioprio 0 ({w0})"
    );
}
