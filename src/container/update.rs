//! `update`: a running container's cgroup resources (runc's flags) and its
//! beancounters (one value per parameter, applied as at create: cgroup bounds
//! through the cgroup, rlimits on every process, mount bounds by remount).

use std::collections::HashMap;

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::LinuxResources;

use crate::beancounter::{Settings, live, report};
use crate::cgroups;
use crate::state::{Container, Status};

/// The states `update` acts in (runc's).
const UPDATABLE: [Status; 3] = [Status::Created, Status::Running, Status::Paused];

/// `update --resources`: runc's LinuxResources JSON, read from `path`.
pub fn resources_json(bytes: &[u8], path: &std::path::Path) -> Result<LinuxResources> {
    serde_json::from_slice(bytes)
        .with_context(|| format!("{}: invalid LinuxResources JSON", path.display()))
}

/// Sets cgroup resources as runc's `update` does.
pub fn update_resources(container: &Container, mut resources: LinuxResources) -> Result<()> {
    container.require("update", &UPDATABLE)?;
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    // A swap limit is memory + swap; alone, it applies to the memory limit in force.
    if let Some(mut memory) = *resources.memory()
        && memory.swap().is_some()
        && memory.limit().is_none()
    {
        memory.set_limit(Some(cgroups::memory_limit(&path)));
        resources.set_memory(Some(memory));
    }
    let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
    cgroups::apply_resources(&manager, &path, container.systemd(), &resources)
        .with_context(|| format!("cannot update the resources of container {}", container.id))
}

/// New disk quota limits on the quota made at create (a live tree cannot be
/// tagged safely while the container writes to it, so none is made here).
fn update_disk_quota(container: &Container, settings: &Settings) -> Result<()> {
    let quota = container
        .meta
        .as_ref()
        .and_then(|m| m.disk_quota.as_ref())
        .with_context(|| {
            format!(
                "cannot update the disk quota of container {}: it was created without one (set runvz.diskspace or runvz.diskinodes in its config.json)",
                container.id
            )
        })?;
    let limits = settings.disk_limits().unwrap_or_default();
    crate::quota::set_limits(quota, &limits)
}

/// Applies changed beancounters (annotation key → value) to the container and
/// records them in its state, so `beancounters` shows the new bounds.
pub fn update_beancounters(container: &mut Container, values: &[(String, String)]) -> Result<()> {
    container.require("update", &UPDATABLE)?;
    let changed_annotations: HashMap<String, String> = values.iter().cloned().collect();
    let changed = Settings::from_annotations(&changed_annotations, "update")?;
    let mut annotations = report::annotations(container)?;
    annotations.extend(changed_annotations.clone());
    let settings = Settings::from_annotations(&annotations, "update")?;
    let changes = live::plan(&settings, &changed, "update")?;
    if !changed.disk.is_empty() {
        update_disk_quota(container, &settings)?;
    }
    let path = container
        .cgroup_path()
        .context("container has no cgroup recorded")?;
    let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
    // rlimits first: the step most likely refused (raising a hard limit needs
    // CAP_SYS_RESOURCE), and then nothing else has changed yet.
    live::set_rlimits(&cgroups::members(&manager), &changes.rlimits)?;
    if let Some(init) = container.init_handle() {
        live::remount_in_container(&init, &changes.remounts)?;
    }
    cgroups::apply_resources(&manager, &path, container.systemd(), &changes.resources)
        .with_context(|| {
            format!(
                "cannot update the beancounters of container {}",
                container.id
            )
        })?;
    let meta = container
        .meta
        .as_mut()
        .context("container has no runvz record in its state")?;
    meta.beancounters.extend(changed_annotations);
    container.save()
}
