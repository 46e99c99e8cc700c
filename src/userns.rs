//! User-namespace isolation for system containers (`runvz.userns=auto`, the
//! default for a system container whose config has no user namespace).
//!
//! Each such container gets its own range of 65536 host IDs that no other
//! container holds, from an allocator under the default state root
//! (`/run/runvz/.userns/ranges.json`, changed under its `lock`; one for the whole
//! host, whatever `--root` each engine uses, so ranges never overlap), released
//! on delete. Its root is an unprivileged host ID; its rootfs is made usable
//! through an idmapped mount ([`crate::idmap`]), and its cgroup is delegated to
//! its root, as systemd delegates to a unit.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use crate::files::Registry;

/// IDs per container, as OpenVZ and LXC give.
pub const RANGE: u32 = 65536;
/// Ranges start here, far above the host's users and their /etc/subuid ranges.
const BASE: u32 = 1 << 30;
const SLOTS: u32 = 16383;

const RANGES: Registry = Registry::new("/run/runvz/.userns", "ranges.json");

/// The key a container's range is held under: its state root and ID, as the
/// same ID may exist under several roots.
pub fn key(store_root: &Path, id: &str) -> String {
    format!("{}/{id}", store_root.display())
}

/// A key as a file name (keys can be longer than a name may be): its FNV-1a
/// hash, stable across runvz builds, unlike std's hasher.
pub fn key_name(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The first host ID of the container's range, allocating one if it has none.
pub fn allocate(key: &str) -> Result<u32> {
    RANGES.change(|ranges: &mut BTreeMap<String, u32>| {
        if let Some(&start) = ranges.get(key) {
            return Ok((start, false));
        }
        let taken: std::collections::HashSet<u32> = ranges.values().copied().collect();
        let start = (0..SLOTS)
            .map(|slot| BASE + slot * RANGE)
            .find(|start| !taken.contains(start))
            .context("every user-namespace range is taken")?;
        ranges.insert(key.to_string(), start);
        Ok((start, true))
    })
}

/// Gives the container's range back (nothing when it had none).
pub fn release(key: &str) -> Result<()> {
    RANGES.remove::<u32>(key)
}

/// Whether a system container gets a range of its own: `runvz.userns=auto`
/// (the default) when its config has no user namespace; `host` runs it
/// without one.
pub fn wanted(spec: &oci_spec::runtime::Spec, where_: &str) -> Result<bool> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let has_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    match annotations.get("runvz.userns").map(|v| v.trim()) {
        Some("host") => Ok(false),
        None | Some("auto") => Ok(!has_userns),
        Some(other) => bail!("{where_}: runvz.userns: {other:?} is not auto or host"),
    }
}

/// A user namespace mapping 0…65535 onto `start`…, in the spec, and `root`
/// (the idmapped rootfs) as its root.
pub fn apply_to_spec(spec: &mut Spec, start: u32, root: &Path) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .expect("a type is all it needs"),
    );
    linux.set_namespaces(Some(namespaces));
    let mapping = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(start)
        .size(RANGE)
        .build()
        .expect("every field is set");
    linux.set_uid_mappings(Some(vec![mapping]));
    linux.set_gid_mappings(Some(vec![mapping]));
    spec.set_linux(Some(linux));
    let mut spec_root = spec.root().clone().unwrap_or_default();
    spec_root.set_path(root.to_path_buf());
    spec.set_root(Some(spec_root));
}

/// Hands the container's cgroup to its root (host ID `start`): the directory
/// and the files a delegate writes, in every hierarchy, as systemd does for a
/// delegated unit. systemd inside then builds its own tree there.
pub fn delegate_cgroup(cgroup_path: &Path, start: u32) -> Result<()> {
    // Resolved in each hierarchy without following anything (a cgroupsPath with
    // `..` is refused) and chowned by fd: what is handed to the container's
    // root is its own cgroup, never what a path leads to.
    let relative = crate::safepath::plain_relative(cgroup_path, "cgroupsPath")?;
    for top in crate::cgroups::host().roots() {
        let Ok(root) = crate::safepath::strict_root(&top) else {
            continue;
        };
        let dir = top.join(&relative);
        let handle = match root.resolve(&relative) {
            Ok(handle) => handle,
            Err(err) if crate::safepath::is_not_found(&err) => continue,
            Err(err) => return Err(anyhow::anyhow!("cannot delegate {}: {err}", dir.display())),
        };
        if crate::safepath::file_type(handle.as_fd()).ok() != Some(libc::S_IFDIR) {
            continue;
        }
        crate::safepath::fchown(&handle, start, start)
            .with_context(|| format!("cannot delegate {}", dir.display()))?;
        for file in [
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
            "tasks",
        ] {
            let path = dir.join(file);
            match root.resolve(relative.join(file)) {
                Ok(file) => crate::safepath::fchown(&file, start, start)
                    .with_context(|| format!("cannot delegate {}", path.display()))?,
                Err(err) if crate::safepath::is_not_found(&err) => {}
                Err(err) => {
                    return Err(anyhow::anyhow!("cannot delegate {}: {err}", path.display()));
                }
            }
        }
    }
    Ok(())
}
