//! Containers inside a system container, unprivileged (Sysbox's and LXC's
//! nesting): what a system container with a user namespace of its own gets so
//! that Docker, Podman, runc and `unshare` work inside it.
//!
//! - `/proc/sys` writable: the kernel already refuses writes to the sysctls
//!   its user namespace does not own (the host's), and allows those of its own
//!   network namespace, which a nested runtime sets
//!   (`net.ipv4.ping_group_range`, Podman's crun).
//! - An uncovered procfs at `/dev/.lxc/proc` and sysfs at `/dev/.lxc/sys`,
//!   where LXC puts them: the kernel lets a nested user namespace mount
//!   procfs or sysfs only where one is already fully visible, and the
//!   container's own /proc is not (masked paths, read-only binds, the /proc
//!   view's files over it). LXC's path because Podman, runc, containerd and
//!   CRI-O skip `/dev/.lxc` when they walk /dev for `--privileged` (under
//!   any other name they walk the whole procfs and fail on its entries). The
//!   sysfs is writable, as LXC's: a nested runtime mounts sysfs read-write,
//!   which the kernel allows only where a writable one is visible; what the
//!   container's root may write in it is what its user namespace owns (its
//!   network devices), as in its own /sys.
//! - `/dev/fuse` (fuse-overlayfs) and `/dev/net/tun` (slirp4netns), where the
//!   host has them, with their device-cgroup rules.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources, MountBuilder, Spec,
};

/// Where the uncovered procfs and sysfs are mounted inside.
pub const PROC: &str = "/dev/.lxc/proc";
pub const SYS: &str = "/dev/.lxc/sys";

/// The devices nested runtimes use, by path.
const DEVICES: [&str; 2] = ["/dev/fuse", "/dev/net/tun"];

/// Whether the container has a user namespace of its own (runvz's range, or
/// the config's): nesting is given to those only, whose root is not the host's.
pub fn wanted(spec: &Spec, own_range: bool) -> bool {
    own_range || crate::userns::config_user_namespace(spec).is_some_and(|ns| ns.path().is_none())
}

pub fn apply(spec: &mut Spec) -> Result<()> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let flags = |extra: &[&str]| -> Vec<String> {
        ["nosuid", "nodev", "noexec"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    mounts.push(
        MountBuilder::default()
            .destination(PROC)
            .typ("proc")
            .source("proc")
            .options(flags(&[]))
            .build()?,
    );
    mounts.push(
        MountBuilder::default()
            .destination(SYS)
            .typ("sysfs")
            .source("sysfs")
            .options(flags(&[]))
            .build()?,
    );
    spec.set_mounts(Some(mounts));

    let Some(mut linux) = spec.linux().clone() else {
        return Ok(());
    };
    if let Some(paths) = linux.readonly_paths().clone() {
        linux.set_readonly_paths(Some(
            paths.into_iter().filter(|p| p != "/proc/sys").collect(),
        ));
    }
    spec.set_linux(Some(linux));
    Ok(())
}

/// `/dev/fuse` and `/dev/net/tun` for a container with runvz's own ID range:
/// nodes owned by its root (`root`, a host ID), made in its directory of
/// host-side mounts ([`crate::idmap::device_nodes`]) and bound in, with their
/// device-cgroup rules. (The host's nodes, bound as they are, would belong to
/// an ID the container does not map, and are often mode 0600.)
pub fn devices(spec: &mut Spec, dir: &Path, root: u32) -> Result<()> {
    let wanted: Vec<(&str, u64)> = DEVICES
        .iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            meta.file_type()
                .is_char_device()
                .then_some((*path, meta.rdev()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let names: Vec<(String, u64)> = wanted
        .iter()
        .map(|(path, rdev)| (path.trim_start_matches("/dev/").replace('/', "-"), *rdev))
        .collect();
    let nodes = crate::idmap::device_nodes(dir, root, &names)?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(());
    };
    let mut resources = linux
        .resources()
        .clone()
        .unwrap_or_else(LinuxResources::default);
    let mut rules = resources.devices().clone().unwrap_or_default();
    for ((path, rdev), node) in wanted.iter().zip(nodes) {
        if mounts.iter().any(|m| m.destination() == Path::new(path)) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(*path)
                .typ("bind")
                .source(node)
                .options(vec!["bind".to_string()])
                .build()?,
        );
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(libc::major(*rdev) as i64)
                .minor(libc::minor(*rdev) as i64)
                .access("rwm")
                .build()?,
        );
    }
    spec.set_mounts(Some(mounts));
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    Ok(())
}
