// runvz: patch 6 — links are made by *at calls through /dev's fd.
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

// runvz: patch 11 — no Syscall here: every link is made by symlinkat through a directory fd.
#[derive(Debug, thiserror::Error)]
pub enum SymlinkError {
    #[error("syscall failed")]
    Syscall {
        source: crate::syscall::SyscallError,
    },
    #[error("failed symlink: {msg}")]
    Other { msg: String },
}

type Result<T> = std::result::Result<T, SymlinkError>;

/// runvz: every link is made through a directory fd resolved inside the
/// rootfs (patches 6 and 11), so no syscall abstraction is kept here.
pub struct Symlink;

impl Default for Symlink {
    fn default() -> Self {
        Self::new()
    }
}

impl Symlink {
    pub fn new() -> Symlink {
        Symlink
    }

    // Create symlinks for subsystems that have been comounted e.g. cpu -> cpu,cpuacct, cpuacct -> cpu,cpuacct
    #[cfg(feature = "v1")]
    // runvz: the links are made in the cgroup tmpfs given by its fd.
    pub fn setup_comount_symlinks(
        &self,
        cgroup_root: &OwnedFd,
        subsystem_name: &str,
    ) -> Result<()> {
        if !subsystem_name.contains(',') {
            return Ok(());
        }

        for comount in subsystem_name.split_terminator(',') {
            symlinkat(subsystem_name, Some(cgroup_root.as_raw_fd()), comount).map_err(|err| {
                tracing::error!("failed to symlink {comount:?} to {subsystem_name:?}");
                SymlinkError::Other {
                    msg: format!("cannot link cgroup {comount} to {subsystem_name}: {err}"),
                }
            })?;
        }

        Ok(())
    }

    // runvz: the links below are made through the rootfs's /dev resolved inside
    // the rootfs (an image's /dev may be a symlink to anywhere on the host).
    pub fn setup_ptmx(&self, rootfs: &Path) -> Result<()> {
        let dev = dev_dir(rootfs)?;
        match unlinkat(Some(dev.as_raw_fd()), "ptmx", UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => {
                return Err(SymlinkError::Other {
                    msg: format!("could not delete /dev/ptmx: {err}"),
                });
            }
        }
        symlink_in(&dev, "pts/ptmx", "ptmx")
    }

    // separating kcore symlink out from setup_default_symlinks for a better way to do the unit test,
    // since not every architecture has /proc/kcore file.
    // runvz: runc's name for it is /dev/core.
    pub fn setup_kcore_symlink(&self, rootfs: &Path) -> Result<()> {
        if Path::new("/proc/kcore").exists() {
            symlink_in(&dev_dir(rootfs)?, "/proc/kcore", "core")?;
        }
        Ok(())
    }

    pub fn setup_default_symlinks(&self, rootfs: &Path) -> Result<()> {
        let defaults = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ];
        let dev = dev_dir(rootfs)?;
        for (src, dst) in defaults {
            symlink_in(&dev, src, dst)?;
        }

        Ok(())
    }
}

/// runvz: the rootfs's /dev, resolved inside the rootfs (an O_PATH handle).
fn dev_dir(rootfs: &Path) -> Result<OwnedFd> {
    let resolve = || -> std::result::Result<OwnedFd, pathrs::error::Error> {
        Ok(pathrs::Root::open(rootfs)?.resolve("/dev")?.into())
    };
    resolve().map_err(|err| SymlinkError::Other {
        msg: format!("cannot open /dev in the rootfs: {err}"),
    })
}

fn symlink_in(dir: &OwnedFd, target: &str, name: &str) -> Result<()> {
    symlinkat(target, Some(dir.as_raw_fd()), name).map_err(|err| {
        tracing::error!(?err, "failed to symlink /dev/{name} to {target}");
        SymlinkError::Other {
            msg: format!("cannot create /dev/{name}: {err}"),
        }
    })
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "v1")]
    use std::fs;
    use std::path::PathBuf;

    #[cfg(feature = "v1")]
    use anyhow::{Context, Result};
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;

    use super::*;
    #[cfg(feature = "v1")]
    use crate::syscall::linux::LinuxSyscall;
    use crate::syscall::test::TestHelperSyscall;

    #[test]
    fn test_setup_ptmx() {
        {
            let tmp_dir = tempfile::tempdir().unwrap();
            let symlink = Symlink::new();
            assert!(symlink.setup_ptmx(tmp_dir.path()).is_ok());
            let want = (PathBuf::from("pts/ptmx"), tmp_dir.path().join("dev/ptmx"));
            let got = &symlink
                .syscall
                .as_any()
                .downcast_ref::<TestHelperSyscall>()
                .unwrap()
                .get_symlink_args()[0];
            assert_eq!(want, *got)
        }
        // make remove_file goes into the bail! path
        {
            let tmp_dir = tempfile::tempdir().unwrap();
            open(
                &tmp_dir.path().join("dev"),
                OFlag::O_RDWR | OFlag::O_CREAT,
                Mode::from_bits_truncate(0o644),
            )
            .unwrap();

            let symlink = Symlink::new();
            assert!(symlink.setup_ptmx(tmp_dir.path()).is_err());
            assert_eq!(
                0,
                symlink
                    .syscall
                    .as_any()
                    .downcast_ref::<TestHelperSyscall>()
                    .unwrap()
                    .get_symlink_args()
                    .len()
            );
        }
    }

    #[test]
    fn test_setup_default_symlinks() {
        let tmp_dir = tempfile::tempdir().unwrap();
        let symlink = Symlink::new();
        assert!(symlink.setup_default_symlinks(tmp_dir.path()).is_ok());
        let want = vec![
            (
                PathBuf::from("/proc/self/fd"),
                tmp_dir.path().join("dev/fd"),
            ),
            (
                PathBuf::from("/proc/self/fd/0"),
                tmp_dir.path().join("dev/stdin"),
            ),
            (
                PathBuf::from("/proc/self/fd/1"),
                tmp_dir.path().join("dev/stdout"),
            ),
            (
                PathBuf::from("/proc/self/fd/2"),
                tmp_dir.path().join("dev/stderr"),
            ),
        ];
        let got = symlink
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_symlink_args();
        assert_eq!(want, got)
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_success() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        let cpu = tmp.path().join("cpu");
        let cpuacct = tmp.path().join("cpuacct");
        let cpu_cpuacct = tmp.path().join("cpu,cpuacct");
        fs::create_dir_all(cpu_cpuacct)?;
        let symlink = Symlink::with_syscall(Box::new(LinuxSyscall));

        // act
        symlink
            .setup_comount_symlinks(tmp.path(), "cpu,cpuacct")
            .context("failed to setup symlinks")?;

        // assert
        assert!(cpu.exists(), "cpu symlink does not exist");
        assert!(cpuacct.exists(), "cpuacct symlink does not exist");

        assert!(
            fs::symlink_metadata(&cpu)?.file_type().is_symlink(),
            "cpu is not a symlink"
        );
        assert!(
            fs::symlink_metadata(&cpuacct)?.file_type().is_symlink(),
            "cpuacct is not a symlink"
        );

        assert_eq!(
            fs::read_link(cpu)?,
            PathBuf::from("cpu,cpuacct"),
            "cpu does not link to cpu,cpuacct"
        );
        assert_eq!(
            fs::read_link(cpuacct)?,
            PathBuf::from("cpu,cpuacct"),
            "cpuacct does not link to cpu,cpuacct"
        );

        Ok(())
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_no_comounts() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        let symlink = Symlink::with_syscall(Box::new(LinuxSyscall));

        // act
        let result = symlink
            .setup_comount_symlinks(tmp.path(), "memory,task")
            .context("failed to setup symlinks");

        // assert
        assert!(result.is_ok());
        Ok(())
    }
}
