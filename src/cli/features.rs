//! `runvz features`: the runtime-spec features document.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::beancounter;

#[derive(Args, Debug)]
pub struct FeaturesArgs {}

pub fn run(_args: FeaturesArgs) -> Result<()> {
    let namespaces = [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ];
    let capabilities: Vec<String> = caps_all();
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "org.opencontainers.runc.checkpoint.enabled".into(),
        json!("true"),
    );
    annotations.insert(
        "io.github.runvz.version".into(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    // Each beancounter and knob runvz accepts, its unit, and how (or whether)
    // it is enforced here; then system containers' own annotations.
    for param in beancounter::params::ALL {
        let unit = param.unit().name();
        let how = match param.mechanism() {
            Some(mechanism) => format!("unit={unit}; enforced by {mechanism}"),
            None => format!("unit={unit}; not enforced on this kernel"),
        };
        annotations.insert(param.annotation(), json!(how));
    }
    for knob in beancounter::params::KNOBS {
        let how = match knob.support() {
            Ok(mechanism) => format!("enforced by {mechanism}"),
            Err(why) => format!("not enforced: {why}"),
        };
        annotations.insert(knob.annotation(), json!(how));
    }
    for disk in beancounter::params::DISK {
        annotations.insert(
            disk.annotation(),
            json!(format!(
                "unit={}; {}; create fails where the rootfs's filesystem has neither",
                disk.unit().name(),
                disk.about()
            )),
        );
    }
    for (key, about) in beancounter::settings::SYSTEM_KEYS {
        annotations.insert(key.into(), json!(about));
    }
    // Where a system container finds what runvz gives it inside.
    annotations.insert(
        "io.github.runvz.system.beancounters".into(),
        json!(crate::procview::BEANCOUNTERS),
    );
    annotations.insert(
        "io.github.runvz.system.nesting".into(),
        json!(format!(
            "procfs at {}, sysfs at {}, /dev/fuse and /dev/net/tun (own user namespace)",
            crate::nesting::PROC,
            crate::nesting::SYS
        )),
    );
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
            "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
            "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount",
            "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
            "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
            "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared",
            "silent", "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup",
            "unbindable", "idmap", "ridmap"
        ],
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": annotations,
        // Pod annotations reach runvz only through containerd's pod_annotations;
        // once listed there they are trusted input.
        "potentiallyUnsafeConfigAnnotations": ["runvz."]
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

fn caps_all() -> Vec<String> {
    caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
