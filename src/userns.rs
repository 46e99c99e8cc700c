//! User-namespace isolation for system containers (`runvz.userns=auto`, the
//! default for a system container whose config has no user namespace).
//!
//! Each such container gets its own range of 65536 host IDs (or a multiple,
//! `runvz.userns=auto:size=N`, for containers inside that want subordinate
//! IDs of their own) that no other container holds, from an allocator under the default state root
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

/// IDs per container, as OpenVZ and LXC give; ranges are whole slots of it.
pub const RANGE: u32 = 65536;
/// The most a container may ask for (256 slots: room for Debian's default
/// subordinate ranges of many users inside).
const MAX_SIZE: u32 = 256 * RANGE;
/// Ranges start here, far above the host's users and their /etc/subuid ranges.
const BASE: u32 = 1 << 30;
const SLOTS: u32 = 16383;

const RANGES: Registry = Registry::new("/run/runvz/.userns", "ranges.json");

/// A range held: its first host ID, and its size when larger than [`RANGE`]
/// (a bare number, as every range was before sizes).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Held {
    Start(u32),
    Sized { start: u32, size: u32 },
}

impl Held {
    fn new(start: u32, size: u32) -> Self {
        if size == RANGE {
            Held::Start(start)
        } else {
            Held::Sized { start, size }
        }
    }

    fn start(self) -> u32 {
        match self {
            Held::Start(start) | Held::Sized { start, .. } => start,
        }
    }

    fn slots(self) -> std::ops::Range<u32> {
        let (start, size) = match self {
            Held::Start(start) => (start, RANGE),
            Held::Sized { start, size } => (start, size),
        };
        let first = (start - BASE) / RANGE;
        first..first + size / RANGE
    }
}

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

/// The first host ID of the container's range of `size` IDs (whole slots,
/// side by side), allocating one if it has none.
pub fn allocate(key: &str, size: u32) -> Result<u32> {
    RANGES.change(|ranges: &mut BTreeMap<String, Held>| {
        if let Some(held) = ranges.get(key) {
            return Ok((held.start(), false));
        }
        let taken: std::collections::HashSet<u32> =
            ranges.values().flat_map(|held| held.slots()).collect();
        let wanted = size / RANGE;
        let first = (0..SLOTS.saturating_sub(wanted - 1))
            .find(|slot| (*slot..slot + wanted).all(|s| !taken.contains(&s)))
            .context("every user-namespace range is taken")?;
        let start = BASE + first * RANGE;
        ranges.insert(key.to_string(), Held::new(start, size));
        Ok((start, true))
    })
}

/// Gives the container's range back (nothing when it had none).
pub fn release(key: &str) -> Result<()> {
    RANGES.remove::<Held>(key)
}

/// The user namespace the config itself asks for (a new one, or one to
/// join by path), if any.
pub fn config_user_namespace(
    spec: &oci_spec::runtime::Spec,
) -> Option<&oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
}

/// The size of the range a system container gets, if it gets one:
/// `runvz.userns=auto` (the default; `auto:size=N` for more IDs) when its
/// config has no user namespace; `host` runs it without one.
pub fn wanted(spec: &oci_spec::runtime::Spec, where_: &str) -> Result<Option<u32>> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let has_userns = config_user_namespace(spec).is_some();
    let value = annotations.get("runvz.userns").map(|v| v.trim());
    let size = match value {
        Some("host") => return Ok(None),
        None | Some("auto") => RANGE,
        Some(other) => match other.strip_prefix("auto:size=").map(str::parse::<u32>) {
            Some(Ok(size)) if size % RANGE == 0 && (RANGE..=MAX_SIZE).contains(&size) => size,
            Some(_) => bail!(
                "{where_}: runvz.userns: {other:?}: the size must be a multiple of {RANGE} from {RANGE} to {MAX_SIZE}"
            ),
            None => bail!("{where_}: runvz.userns: {other:?} is not auto, auto:size=N or host"),
        },
    };
    Ok((!has_userns).then_some(size))
}

/// A user namespace mapping 0…size−1 onto `start`…, in the spec, and `root`
/// (the idmapped rootfs) as its root.
pub fn apply_to_spec(spec: &mut Spec, start: u32, size: u32, root: &Path) {
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
        .size(size)
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
