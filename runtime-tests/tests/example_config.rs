//! `config.json.example` (the README's system container with beancounters) as
//! a person uses it: copied unchanged into a bundle beside a debootstrapped
//! rootfs, `runvz run -d` boots systemd in it, and `runvz beancounters` shows
//! the bounds its annotations set.

use runtime_tests::*;
use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};

/// The file as it is in the tree (compiled in: the cgroup v2 VM carries the
/// test executables, not the tree).
const EXAMPLE: &str = include_str!("../../config.json.example");

fn example() -> Value {
    serde_json::from_str(EXAMPLE)
        .unwrap_or_else(|e| panic!("config.json.example is not valid JSON: {e}"))
}

/// The example's `runvz.*` annotations.
fn runvz_annotations(config: &Value) -> Vec<(String, String)> {
    config["annotations"]
        .as_object()
        .expect("config.json.example has annotations")
        .iter()
        .filter(|(k, _)| k.starts_with("runvz."))
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("annotation {k} is not a string: {v}"));
            (k.clone(), v.to_string())
        })
        .collect()
}

/// One OpenVZ value as runvz reads it: a number, `unlimited`, or (bytes and
/// pages) a number with a K/M/G/T suffix in bytes, counted in 4 KiB pages for
/// `pages`.
fn value(text: &str, unit: &str) -> u64 {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return i64::MAX as u64;
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let number: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("{t:?} is not a number"));
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" => return number,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => panic!("{t:?}: unknown suffix {other:?}"),
    };
    let bytes = number << shift;
    if unit == "pages" {
        bytes.div_ceil(4096)
    } else {
        bytes
    }
}

/// `barrier:limit` (one value sets both) in `unit`.
fn bound(text: &str, unit: &str) -> (u64, u64) {
    let (b, l) = text.split_once(':').unwrap_or((text, text));
    (value(b, unit), value(l, unit))
}

#[test]
fn the_example_is_a_system_container_with_only_known_runvz_keys() {
    if runtime_is_runc() {
        skip("config.json.example: runvz.* annotations are runvz's own");
        return;
    }
    let config = example();
    assert_eq!(config["ociVersion"], "1.0.2");
    assert_eq!(config["process"]["args"], serde_json::json!(["/sbin/init"]));
    assert_eq!(config["process"]["terminal"], false);
    assert_eq!(config["root"]["path"], "rootfs");
    assert!(config["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    let mut namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .map(|n| n["type"].as_str().expect("namespace type"))
        .collect();
    namespaces.sort();
    // No user namespace: runvz gives a system container one of its own.
    assert_eq!(
        namespaces,
        ["cgroup", "ipc", "mount", "network", "pid", "uts"]
    );

    let annotations = runvz_annotations(&config);
    assert!(
        annotations
            .iter()
            .any(|(k, v)| k == "runvz.system" && v == "true"),
        "runvz.system is not \"true\""
    );
    // Every key is one runvz knows: `features` lists them all (runvz would
    // refuse the config otherwise, naming the key).
    let features = Runtime::new().cmd(&["features"]);
    features.ok();
    let features = features.json();
    let known = features["annotations"]
        .as_object()
        .expect("features lists annotations");
    let unknown: Vec<&str> = annotations
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known.contains_key(*k))
        .collect();
    assert!(unknown.is_empty(), "unknown runvz annotations: {unknown:?}");
    for needed in ["runvz.ubc.numproc", "runvz.ubc.physpages"] {
        assert!(
            annotations.iter().any(|(k, _)| k == needed),
            "the example sets no {needed}"
        );
    }
}

/// `run -d` of the bundle, then systemd's state once it is up (running or
/// degraded) or after 120 s, and how long that took.
fn run_until_booted(rt: &Runtime, bundle: &std::path::Path, id: &str) -> (String, Duration) {
    let started = Instant::now();
    rt.cmd(&["run", "-d", "-b", bundle.to_str().unwrap(), id])
        .ok();
    let mut state = String::new();
    wait_until(Duration::from_secs(120), || {
        let out = rt.cmd(&["exec", id, "systemctl", "is-system-running"]);
        state = out.stdout.trim().to_string();
        state == "running" || state == "degraded"
    });
    (state, started.elapsed())
}

/// systemd's failed units inside, for a failure message.
fn failed_units(rt: &Runtime, id: &str) -> String {
    rt.cmd(&[
        "exec",
        id,
        "systemctl",
        "--failed",
        "--no-legend",
        "--no-pager",
    ])
    .stdout
}

#[test]
fn the_example_boots_systemd_within_its_beancounters() {
    if runtime_is_runc() {
        skip("config.json.example boot: beancounters and system containers are runvz's own");
        return;
    }
    let lower = match systemd_rootfs() {
        Ok(dir) => dir,
        Err(why) => {
            skip(&format!("config.json.example boot: {why}"));
            return;
        }
    };
    let config = example();
    let annotations = runvz_annotations(&config);
    // No cgroupsPath in the example: runvz's default.
    assert!(config["linux"]["cgroupsPath"].is_null());
    let rt = Runtime::new();
    let id = unique_id("example");
    let cg = format!("/runvz/{id}");

    // The bundle as the README makes it: config.json is the file as it is;
    // rootfs an overlay of the debootstrapped tree, so the boot leaves it as it was.
    let bundle = TempDir::new("example-bundle");
    fs::write(bundle.path().join("config.json"), EXAMPLE).unwrap();
    let rootfs = bundle.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    let overlay = Overlay::at(&lower, &rootfs);
    // Dropped first: deletes the container before the overlay and bundle go.
    let _guard = rt.guard(&id, Some(&cg));

    let (state, took) = run_until_booted(&rt, bundle.path(), &id);
    report(&format!(
        "config.json.example: systemd reached {state:?} in {took:?}"
    ));
    if state != "running" && state != "degraded" {
        panic!(
            "systemd is {state:?} (container {:?}); failed units:\n{}",
            rt.status(&id),
            failed_units(&rt, &id)
        );
    }
    // Its own user namespace (runvz's default): root inside, not outside.
    let map = fs::read_to_string(format!("/proc/{}/uid_map", rt.pid(&id))).unwrap();
    let map: Vec<u64> = map.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let size: u64 = config["annotations"]["runvz.userns"]
        .as_str()
        .and_then(|v| v.strip_prefix("auto:size="))
        .map_or(65536, |n| n.parse().expect("runvz.userns size"));
    assert!(
        map[0] == 0 && map[1] >= 1 << 30 && map[2] == size,
        "the init's uid_map: {map:?}"
    );
    let hostname = rt.cmd(&["exec", &id, "hostname"]);
    hostname.ok();
    assert_eq!(hostname.stdout.trim(), config["hostname"], "{hostname}");

    // Every beancounter and knob the example sets, as `beancounters` reports it.
    let out = rt.cmd(&["beancounters", "--format", "json", &id]);
    out.ok();
    let shown = out.json();
    let entry = shown
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} is not in the report:\n{out}"));
    let rows = entry["beancounters"].as_array().expect("beancounter rows");
    let mut bounds = std::collections::HashMap::new();
    for (key, text) in &annotations {
        if let Some(name) = key.strip_prefix("runvz.ubc.") {
            let row = rows
                .iter()
                .find(|r| r["resource"] == name)
                .unwrap_or_else(|| panic!("no {name} row:\n{out}"));
            let want = bound(text, row["unit"].as_str().expect("unit"));
            let got = (row["barrier"].as_u64(), row["limit"].as_u64());
            assert_eq!(
                got,
                (Some(want.0), Some(want.1)),
                "{name} (the example says {text:?}):\n{row}"
            );
            bounds.insert(name.to_string(), want);
        } else if let Some(knob) = entry["knobs"].get(key.trim_start_matches("runvz.")) {
            assert_eq!(
                knob["value"].as_u64(),
                Some(value(text, "bytes")),
                "{key} (the example says {text:?}):\n{knob}"
            );
        }
    }
    let (numproc, physpages) = (bounds["numproc"], bounds["physpages"]);
    report(&format!(
        "config.json.example: numproc {}:{}, physpages {}:{} pages, {} parameters checked",
        numproc.0,
        numproc.1,
        physpages.0,
        physpages.1,
        bounds.len()
    ));
    // And the kernel holds them: pids.max, the memory limit.
    Cgroup::new(&cg).assert_all(&[
        Setting::PidsLimit(Some(numproc.1)),
        Setting::MemoryLimit(Some(physpages.1 * 4096)),
    ]);

    // `kill` halts systemd (SIGRTMIN+3); delete leaves nothing behind.
    let asked = Instant::now();
    rt.cmd(&["kill", &id]).ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(60));
    report(&format!(
        "config.json.example: systemd halted in {:?}",
        asked.elapsed()
    ));
    rt.cmd(&["delete", &id]).ok();
    assert_no_leak(&rt, &id, &cg);
    assert!(!rt.state_dir(&id).exists(), "the state dir is left");
    let ranges = fs::read_to_string("/run/runvz/.userns/ranges.json").unwrap_or_default();
    assert!(
        !ranges.contains(&format!("/{id}\"")),
        "user-namespace range kept: {ranges}"
    );
    drop(overlay);
}

/// Containers inside the example, as a new user runs them (#16): the example
/// unchanged, booted from a debootstrap with Debian's `docker.io` and
/// `podman`; Docker (overlay2, a bridge with `-p`, limits), Podman (its
/// default crun, native overlay, `--uidmap`) and rootless Podman each run a
/// container inside it and clean up. The image is the tests' busybox rootfs
/// imported as a tarball (no registry here).
#[test]
fn docker_and_podman_run_containers_inside_the_example() {
    if runtime_is_runc() {
        skip("containers inside config.json.example: system containers are runvz's own");
        return;
    }
    let lower = match nesting_rootfs() {
        Ok(dir) => dir,
        Err(why) => {
            skip(&format!("containers inside config.json.example: {why}"));
            return;
        }
    };
    let rt = Runtime::new();
    let id = unique_id("nest");
    let cg = format!("/runvz/{id}");
    // A plain copy of the tree, as the README makes a bundle: Docker's
    // overlay2 and Podman's overlay refuse an overlayfs under them.
    let bundle = TempDir::new("nest-bundle");
    fs::write(bundle.path().join("config.json"), EXAMPLE).unwrap();
    let rootfs = bundle.path().join("rootfs");
    run_command(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&lower)
            .arg(&rootfs),
        None,
        Duration::from_secs(300),
    )
    .ok();
    let srv = rootfs.join("srv");
    fs::create_dir_all(srv.join("www")).unwrap();
    fs::write(srv.join("www/index.html"), "hello from inside\n").unwrap();
    run_command(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(runtime_tests::rootfs())
            .arg("-cf")
            .arg(srv.join("busybox.tar"))
            .arg("."),
        None,
        Duration::from_secs(60),
    )
    .ok();
    let _guard = rt.guard(&id, Some(&cg));

    let (state, took) = run_until_booted(&rt, bundle.path(), &id);
    assert_eq!(
        state,
        "running",
        "failed units:\n{}",
        failed_units(&rt, &id)
    );
    report(&format!(
        "nesting: systemd with dockerd and containerd running in {took:?}"
    ));
    // (what, script, what its output holds)
    let steps: [(&str, &str, &str); 8] = [
        (
            "docker's storage and cgroups",
            "docker info --format '{{.Driver}}'",
            "overlay2",
        ),
        (
            "docker run",
            "docker import /srv/busybox.tar bb >/dev/null && docker run --rm bb echo docker-ran",
            "docker-ran",
        ),
        (
            "docker -p through its bridge",
            "docker run -d --name web -p 8080:80 -v /srv/www:/www bb httpd -f -p 80 -h /www >/dev/null; \
             for i in $(seq 100); do curl -fsS 127.0.0.1:8080/ && break; sleep 0.1; done; docker rm -f web >/dev/null",
            "hello from inside",
        ),
        (
            "docker --memory and --pids-limit",
            "docker run --rm --memory 64m --pids-limit 50 bb sh -c \
             'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'",
            "67108864",
        ),
        (
            "podman with its default runtime",
            "podman import /srv/busybox.tar bb >/dev/null && podman run --rm bb true && \
             podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}} rootless={{.Host.Security.Rootless}}'",
            "crun overlay rootless=false",
        ),
        (
            "podman --uidmap",
            "podman run --rm --uidmap 0:100000:65536 bb cat /proc/self/uid_map | tr -s ' '",
            " 0 100000 65536",
        ),
        (
            "rootless podman",
            "useradd -m u1 && for f in /etc/subuid /etc/subgid; do grep -q ^u1: $f || echo u1:100000:65536 >> $f; done && \
             runuser -l u1 -c 'podman import /srv/busybox.tar bb >/dev/null && podman run --rm bb cat /proc/self/uid_map' | tr -s ' ' | tr '\\n' ';'",
            " 0 1000 1; 1 100000 65536;",
        ),
        (
            "nothing left running",
            "echo docker=$(docker ps -aq | wc -l) podman=$(podman ps -aq | wc -l) u1=$(runuser -l u1 -c 'podman ps -aq' | wc -l)",
            "docker=0 podman=0 u1=0",
        ),
    ];
    for (what, script, want) in steps {
        let at = Instant::now();
        let out = rt.cmd_timeout(&["exec", &id, "sh", "-c", script], Duration::from_secs(180));
        assert!(
            out.code == 0 && out.stdout.contains(want),
            "{what}: want {want:?} in its output\n{out}"
        );
        report(&format!("nesting: {what}: {:?}", at.elapsed()));
    }

    let asked = Instant::now();
    rt.cmd(&["kill", &id]).ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(120));
    report(&format!("nesting: halted in {:?}", asked.elapsed()));
    rt.cmd(&["delete", &id]).ok();
    assert_no_leak(&rt, &id, &cg);
}
