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
    // Each beancounter runvz accepts, its unit, and how (or whether) it is enforced.
    for param in beancounter::params::ALL {
        let how = match beancounter::spec::mechanism(param) {
            Some(mechanism) => format!("unit={}; enforced by {mechanism}", param.unit().name()),
            None => format!("unit={}; not enforced on this kernel", param.unit().name()),
        };
        annotations.insert(format!("runvz.ubc.{}", param.name()), json!(how));
    }
    for (key, support) in beancounter::io::knob_support() {
        let how = match support {
            Ok(mechanism) => format!("enforced by {mechanism}"),
            Err(why) => format!("not enforced: {why}"),
        };
        annotations.insert(key.into(), json!(how));
    }
    // System containers' own annotations.
    annotations.insert(
        "runvz.system".into(),
        json!("true|false; default: true when the process is an init (/sbin/init, systemd)"),
    );
    annotations.insert(
        "runvz.haltsignal".into(),
        json!("signal kill's SIGTERM becomes for a system container; default SIGRTMIN+3 (systemd), SIGUSR2 (busybox init)"),
    );
    annotations.insert(
        "runvz.userns".into(),
        json!("auto (default for a system container without a user namespace): a 65536-ID range of its own, idmapped rootfs and read-only binds | host: none"),
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
