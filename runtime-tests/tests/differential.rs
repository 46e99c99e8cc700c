//! What the container sees, compared between runc and the runtime under test:
//! the same bundle is run in the foreground under both and the outputs are
//! compared. Skipped when the runtime under test is runc itself.

use runtime_tests::*;
use serde_json::json;

fn sh(b: &mut Bundle, script: &str) {
    b.args(&["sh", "-c", script]);
}

#[track_caller]
fn both_ok(prefix: &str, setup: impl Fn(&mut Bundle)) -> Option<(String, String)> {
    let (a, b) = run_both(prefix, setup)?;
    a.ok();
    b.ok();
    Some((a.stdout, b.stdout))
}

#[test]
fn capabilities_and_no_new_privs_match() {
    let Some((runc, ours)) = both_ok("dc", |b| {
        sh(
            b,
            "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status",
        )
    }) else {
        return;
    };
    assert!(runc.contains("CapEff:"), "runc output: {runc}");
    assert_eq!(ours, runc);
}

#[test]
fn capabilities_match_with_more_caps_and_no_nnp() {
    let Some((runc, ours)) = both_ok("dd", |b| {
        sh(
            b,
            "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status",
        );
        let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_RAW"]);
        b.set("/process/capabilities/bounding", caps.clone());
        b.set("/process/capabilities/effective", caps.clone());
        b.set("/process/capabilities/permitted", caps.clone());
        b.set("/process/capabilities/ambient", json!([]));
        b.set("/process/capabilities/inheritable", json!(["CAP_CHOWN"]));
        b.set("/process/noNewPrivileges", json!(false));
    }) else {
        return;
    };
    assert!(runc.contains("NoNewPrivs:\t0"), "runc output: {runc}");
    assert_eq!(ours, runc);
}

#[test]
fn hostname_and_id_match() {
    let Some((runc, ours)) = both_ok("dh", |b| {
        b.hostname("diff-host");
        sh(b, "hostname; id; cat /proc/sys/kernel/hostname");
    }) else {
        return;
    };
    assert!(
        runc.starts_with("diff-host\nuid=0(root) gid=0(root)"),
        "{runc}"
    );
    assert_eq!(ours, runc);

    let Some((runc, ours)) = both_ok("du", |b| {
        b.user(65534, 65534);
        sh(b, "id; echo $HOME");
    }) else {
        return;
    };
    assert!(
        runc.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{runc}"
    );
    assert_eq!(ours, runc);
}

#[test]
fn nofile_limit_matches() {
    let Some((runc, ours)) = both_ok("dl", |b| {
        b.rlimits(json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}]));
        sh(b, "grep 'Max open files' /proc/self/limits");
    }) else {
        return;
    };
    assert!(runc.contains("512") && runc.contains("768"), "{runc}");
    assert_eq!(ours, runc);
}

#[test]
fn mount_points_and_types_match() {
    let Some((runc, ours)) = both_ok("dm", |b| sh(b, "cat /proc/self/mounts")) else {
        return;
    };
    // Compare mount point and fstype (columns 2 and 3), in order.
    let cols = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", f.get(1).unwrap_or(&""), f.get(2).unwrap_or(&""))
            })
            .collect()
    };
    let (r, o) = (cols(&runc), cols(&ours));
    assert!(r.iter().any(|l| l == "/proc proc"), "{runc}");
    assert_eq!(
        o,
        r,
        "mounts differ\n--- runc\n{}\n--- runtime\n{}",
        r.join("\n"),
        o.join("\n")
    );
}

#[test]
fn mount_options_match_for_default_mounts() {
    // Options of the spec's own mounts (not the rootfs: its device varies).
    let Some((runc, ours)) = both_ok("dn", |b| {
        sh(
            b,
            "grep -E ' /(proc|dev|dev/pts|dev/shm|dev/mqueue|sys) ' /proc/self/mounts",
        )
    }) else {
        return;
    };
    assert_eq!(ours, runc);
}

#[test]
fn readonly_root_makes_writes_fail() {
    let Some((runc, ours)) = run_both("dr", |b| {
        b.readonly(true);
        sh(
            b,
            "touch /x && echo wrote; echo rc=$?; touch /tmp/y 2>&1 >/dev/null; echo tmp=$?",
        );
    }) else {
        return;
    };
    runc.ok();
    ours.ok();
    assert!(runc.stdout.contains("rc=1"), "runc: {runc}");
    assert!(!runc.stdout.contains("wrote"));
    assert_eq!(ours.stdout, runc.stdout);
    assert!(ours.stderr.contains("Read-only file system"), "{ours}");
}

#[test]
fn environment_matches() {
    let Some((runc, ours)) = both_ok("dv", |b| {
        b.add_env("EXTRA=1");
        sh(b, "env | sort");
    }) else {
        return;
    };
    assert!(runc.contains("HOME=/root"), "{runc}");
    assert_eq!(ours, runc);
}

#[test]
fn dev_contents_match() {
    let Some((runc, ours)) = both_ok("dx", |b| sh(b, "ls -la /dev | awk '{print $1, $NF}'")) else {
        return;
    };
    assert!(runc.contains("null"), "{runc}");
    assert_eq!(ours, runc);
}

#[test]
fn masked_and_readonly_paths_match() {
    let Some((runc, ours)) = both_ok("dp", |b| {
        sh(
            b,
            "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; \
             echo 1 > /proc/sys/kernel/hostname 2>/dev/null; echo sys=$?",
        )
    }) else {
        return;
    };
    assert!(runc.ends_with("sys=1\n"), "{runc}");
    assert_eq!(ours, runc);
}
