//! `runvz internal-hook create-container …`: the steps runvz adds to a container
//! as its first createContainer hook, where libcontainer's behaviour differs from
//! runc's. The hook runs in the container's namespaces after its mounts are made
//! and before pivot_root, so the rootfs is still at its host path. Not for
//! people: runvz writes this hook into the generated config.json itself.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

#[derive(Args, Debug)]
pub struct InternalHookArgs {
    #[command(subcommand)]
    pub hook: InternalHook,
}

#[derive(Subcommand, Debug)]
pub enum InternalHook {
    /// fix-ups inside the container before pivot_root
    CreateContainer(CreateContainerArgs),
}

#[derive(Args, Debug)]
pub struct CreateContainerArgs {
    /// the container's rootfs, at its host path
    #[arg(long)]
    pub rootfs: PathBuf,
    /// link /dev/core to /proc/kcore (libcontainer makes /dev/kcore)
    #[arg(long = "dev-core")]
    pub dev_core: bool,
    /// bring up `lo` in the container's new network namespace
    #[arg(long)]
    pub loopback: bool,
    /// tmpfs mounts (container paths) to fill with what the image has there (runc's `tmpcopyup`)
    #[arg(long = "tmpcopyup")]
    pub tmpcopyup: Vec<PathBuf>,
}

pub fn run(args: InternalHookArgs) -> Result<()> {
    let InternalHook::CreateContainer(args) = args.hook;
    if args.dev_core {
        dev_core(&args.rootfs)?;
    }
    if args.loopback {
        loopback_up().context("cannot bring up lo")?;
    }
    for dest in &args.tmpcopyup {
        tmpcopyup(&args.rootfs, dest)
            .with_context(|| format!("tmpcopyup of {}", dest.display()))?;
    }
    Ok(())
}

fn dev_core(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    let kcore = dev.join("kcore");
    if kcore
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        fs::remove_file(&kcore).with_context(|| format!("cannot remove {}", kcore.display()))?;
    }
    let core = dev.join("core");
    if core.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("/proc/kcore", &core)
            .with_context(|| format!("cannot create {}", core.display()))?;
    }
    Ok(())
}

/// SIOCGIFFLAGS/SIOCSIFFLAGS on `lo`, as runc's init does for a new netns.
fn loopback_up() -> Result<()> {
    // SAFETY: a plain socket used only for the interface ioctls below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: ifreq is plain data; the name is NUL-terminated; both ioctls read
    // and write only that struct.
    let result = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(sock) };
    Ok(result?)
}

/// Copies what the image holds at `dest` into the tmpfs now mounted over it. The
/// image's files are reached through a non-recursive bind of the rootfs, which
/// does not carry the tmpfs.
fn tmpcopyup(rootfs: &Path, dest: &Path) -> Result<()> {
    let rel = dest.strip_prefix("/").unwrap_or(dest);
    let target = rootfs.join(rel);
    let view = std::env::temp_dir().join(format!("runvz-copyup-{}", std::process::id()));
    fs::create_dir_all(&view)?;
    mount(
        Some(rootfs),
        &view,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("cannot bind {}", rootfs.display()))?;
    let copied = copy_tree(&view.join(rel), &target);
    let _ = umount2(&view, MntFlags::MNT_DETACH);
    let _ = fs::remove_dir(&view);
    copied
}

/// Copies a directory's contents (files, directories, symlinks) keeping modes and
/// owners. A source that is missing or not a directory has nothing to copy.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode()))?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            bail!("{} is not a file, directory or symlink", src.display());
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}
