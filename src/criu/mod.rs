//! Checkpoint and restore through CRIU, driven over its RPC interface (rust-criu).
//!
//! runvz does both itself instead of using libcontainer's checkpoint: that one
//! points CRIU's root at the bundle and deletes the container through its own
//! delete, and libcontainer has no restore at all.
//!
//! - `dump` saves a running container's process tree to an image directory (plus
//!   runc's `descriptors.json`: what the init's stdio were), then tears the
//!   container down unless `--leave-running`.
//! - `restore` rebuilds a container from such images: the same create path as
//!   `runvz create` (lock, checks, runvz's meta), then CRIU instead of
//!   libcontainer brings the processes back, inside the container's cgroup.

mod dump;
mod restore;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use dump::{DumpOptions, dump};
pub use restore::{RestoreOptions, Target, parse_descriptors, restore};

/// runc's name for the file that records the init's stdio at checkpoint time.
const DESCRIPTORS_FILE: &str = "descriptors.json";
/// Where restore binds the rootfs for CRIU, in runvz's directory of the container.
pub const CRIU_ROOT: &str = "criu-root";
/// The `--external` key of a network namespace the container joined by path.
const EXTERNAL_NETNS_KEY: &str = "extRootNetNS";

/// Asks CRIU whether it can dump and restore on this kernel; its own reason is
/// passed on when it cannot.
pub fn check_usable(criu: &Path) -> Result<()> {
    let output = std::process::Command::new(criu)
        .arg("check")
        .output()
        .map_err(|err| {
            anyhow!(
                "CRIU binary {} cannot be run ({err}); install criu",
                criu.display()
            )
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    let reason = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error") || l.contains("error"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no reason given");
    bail!(
        "CRIU cannot work on this host: `{} check` failed: {reason}",
        criu.display()
    )
}

/// runc's `--manage-cgroups-mode` values.
pub fn parse_cgroups_mode(mode: &str) -> Result<rust_criu::CgMode> {
    Ok(match mode {
        "soft" => rust_criu::CgMode::SOFT,
        "full" => rust_criu::CgMode::FULL,
        "strict" => rust_criu::CgMode::STRICT,
        "ignore" => rust_criu::CgMode::IGNORE,
        other => bail!("Invalid manage cgroups mode {other:?}: use soft, full, strict or ignore"),
    })
}

/// runc's `--parent-path`: relative to the image path, naming an existing
/// directory there (the previous pre-dump).
pub fn parent_images(image_path: &Path, parent: &Path) -> Result<PathBuf> {
    if parent.is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = image_path.join(parent);
    match fs::metadata(&real) {
        Ok(meta) if meta.is_dir() => Ok(parent.to_path_buf()),
        Ok(_) => bail!(
            "invalid --parent-path: stat {}: not a directory",
            real.display()
        ),
        Err(err) => bail!("invalid --parent-path: stat {}: {err}", real.display()),
    }
}

/// runc's `--page-server ADDRESS:PORT`.
pub fn parse_page_server(value: &str) -> Result<(String, i32)> {
    let usage = || anyhow!("Use --page-server ADDRESS:PORT to specify page server");
    let (address, port) = value.rsplit_once(':').ok_or_else(usage)?;
    let port = port.parse::<u16>().map_err(|_| usage())?;
    if address.is_empty() {
        return Err(usage());
    }
    Ok((address.to_string(), i32::from(port)))
}

/// Bind mounts of the spec as (destination, source): CRIU cannot dump what lies
/// outside the container's root, so they are "external" mounts, named by their
/// destination in the images and given their source again on restore.
fn bind_mounts(spec: &Spec) -> Vec<(PathBuf, PathBuf)> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|m| Some((m.destination().clone(), m.source().clone()?)))
        .collect()
}

/// The network namespace the container joined by path (an engine's), if any:
/// CRIU leaves it out of the images and is handed it again on restore.
fn joined_netns(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network)?
        .path()
        .clone()
}

/// `net[<inode>]:extRootNetNS`, CRIU's name for a joined network namespace.
fn external_netns(path: &Path) -> Result<String> {
    let inode = fs::metadata(path)
        .map_err(|err| anyhow!("network namespace {}: {err}", path.display()))?
        .ino();
    Ok(format!("net[{inode}]:{EXTERNAL_NETNS_KEY}"))
}

/// CRIU's RPC error says little ("errno 0"); its log says what went wrong. The
/// message names the log and quotes its last error line.
fn criu_failure(what: &str, err: rust_criu::CriuError, log: &Path) -> anyhow::Error {
    let last_error = fs::read_to_string(log).ok().and_then(|text| {
        text.lines()
            .rev()
            .find(|l| l.contains("Error (") && !l.contains("FAILED"))
            .map(|l| l.trim().to_string())
    });
    match last_error {
        Some(line) => anyhow!("{what} failed: {line} (CRIU log: {})", log.display()),
        None => anyhow!("{what} failed: {err} (CRIU log: {})", log.display()),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

fn criu_client(criu: &Path) -> Result<rust_criu::Criu> {
    rust_criu::Criu::new_with_criu_path(criu.to_string_lossy().into_owned())
        .map_err(|err| anyhow!("cannot start CRIU {}: {err}", criu.display()))
}
