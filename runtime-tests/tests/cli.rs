//! `spec`, `features`, `--version`, usage errors.

use runtime_tests::*;
use std::fs;

#[test]
fn spec_writes_a_valid_config() {
    let rt = Runtime::new();
    let dir = TempDir::new("spec");
    rt.cmd_in(dir.path(), &["spec"]).ok();
    let text = fs::read_to_string(dir.path().join("config.json")).expect("config.json written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("config.json parses");
    assert!(
        v["ociVersion"].as_str().unwrap_or("").starts_with("1."),
        "ociVersion: {v}"
    );
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(v["process"]["args"].is_array());
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(ns.contains(&want), "namespace {want} missing: {ns:?}");
    }
    assert!(
        !ns.contains(&"user"),
        "no user namespace by default: {ns:?}"
    );

    // A second `spec` refuses to overwrite it.
    fs::write(dir.path().join("config.json"), "keep me").unwrap();
    rt.cmd_in(dir.path(), &["spec"]).failed();
    assert_eq!(
        fs::read_to_string(dir.path().join("config.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn spec_rootless_has_a_user_namespace() {
    let rt = Runtime::new();
    let dir = TempDir::new("specr");
    rt.cmd_in(dir.path(), &["spec", "--rootless"]).ok();
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(ns.contains(&"user"), "{ns:?}");
    assert!(
        v["linux"]["uidMappings"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "uidMappings: {v}"
    );
    assert!(
        v["linux"]["gidMappings"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "gidMappings: {v}"
    );
}

#[test]
fn spec_bundle_flag() {
    let rt = Runtime::new();
    let dir = TempDir::new("specb");
    rt.cmd(&["spec", "--bundle", dir.path().to_str().unwrap()])
        .ok();
    assert!(dir.path().join("config.json").exists());
}

/// Scripts run `spec` and then `create --console-socket`: runc's spec has
/// `terminal: true`; runvz writes the same file byte for byte, with and without
/// `--rootless`, and refuses to overwrite one in runc's words.
#[test]
fn spec_is_runcs_byte_for_byte() {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("spec comparison: {why}"));
        return;
    }
    for flags in [&["spec"][..], &["spec", "--rootless"][..]] {
        let (ours, theirs) = (TempDir::new("specs"), TempDir::new("specs"));
        Runtime::new().cmd_in(ours.path(), flags).ok();
        Runtime::runc().cmd_in(theirs.path(), flags).ok();
        let read = |d: &TempDir| fs::read(d.path().join("config.json")).expect("config.json");
        assert_eq!(
            String::from_utf8_lossy(&read(&ours)),
            String::from_utf8_lossy(&read(&theirs)),
            "{flags:?}"
        );
        let v: serde_json::Value = serde_json::from_slice(&read(&ours)).unwrap();
        assert_eq!(v["process"]["terminal"], true, "{flags:?}");
        let again = Runtime::new().cmd_in(ours.path(), flags);
        again.failed();
        assert!(
            again
                .stderr
                .contains("File config.json exists. Remove it first"),
            "{again}"
        );
    }
}

#[test]
fn features_is_json_with_version_range() {
    let rt = Runtime::new();
    let o = rt.cmd(&["features"]);
    o.ok();
    let v = o.json();
    for k in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            v[k].as_str().is_some_and(|s| s.starts_with("1.")),
            "{k} missing or not 1.x: {v}"
        );
    }
    assert!(v["hooks"].is_array(), "hooks: {v}");
    assert!(v["mountOptions"].is_array(), "mountOptions: {v}");
    let ns = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    assert!(ns.iter().any(|n| n == "pid"), "{v}");
}

#[test]
fn version_mentions_spec() {
    let rt = Runtime::new();
    for flag in ["--version", "-v"] {
        let o = rt.cmd(&[flag]);
        o.ok();
        let first = o.stdout.lines().next().unwrap_or("");
        assert!(first.contains(" version "), "first line: {first:?}");
        assert!(
            o.stdout.lines().any(|l| l.starts_with("spec: 1.")),
            "no `spec: 1.` line:\n{o}"
        );
    }
}

#[test]
fn unknown_subcommand_fails() {
    let rt = Runtime::new();
    rt.cmd(&["frobnicate"]).failed();
}

#[test]
fn unknown_flag_fails() {
    let rt = Runtime::new();
    rt.cmd(&["list", "--bogus-flag"]).failed();
    rt.cmd(&["--bogus-global", "list"]).failed();
}

#[test]
fn missing_container_id_fails() {
    let rt = Runtime::new();
    let b = Bundle::new();
    for args in [
        vec!["create", "--bundle", b.path_str()],
        vec!["start"],
        vec!["state"],
        vec!["kill"],
        vec!["delete"],
    ] {
        rt.cmd(&args).failed();
    }
}

#[test]
fn global_flags_callers_pass_are_accepted() {
    // containerd's shim and conmon put these before every command.
    let rt = Runtime::new();
    let log = TempDir::new("log");
    let logf = log.path().join("log.json");
    let o = rt.cmd(&[
        "--log",
        logf.to_str().unwrap(),
        "--log-format",
        "json",
        "list",
        "-q",
    ]);
    o.ok();
    // An error goes to the log as a JSON line with level=error.
    let o = rt.cmd(&[
        "--log",
        logf.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &unique_id("nolog"),
    ]);
    // Failure on stderr too (runc prints the bare message there).
    o.failed();
    let text = fs::read_to_string(&logf).expect("log file written");
    let last_error = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no level=error JSON line in the log: {text:?}"));
    assert!(
        last_error["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{last_error}"
    );
}

#[test]
fn root_directory_is_created_on_demand() {
    // Podman uses the default root, which may not exist yet; containerd's
    // `<Root>/<namespace>` is new for a new namespace.
    let c = Ctx::new("cr", &["sh", "-c", "exit 0"]);
    fs::remove_dir(&c.rt.root).unwrap();
    c.cmd(&["state", &c.id]).failed();
    c.run_fg(None, DEFAULT_TIMEOUT).ok();
    assert!(
        c.rt.root.is_dir(),
        "root {} not created",
        c.rt.root.display()
    );
    c.assert_no_leak();
}
