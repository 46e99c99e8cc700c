//! Signal names and numbers as runc accepts them: `9`, `KILL`, `SIGKILL`, `kill`,
//! and real-time signals as `RTMIN+3` / `SIGRTMIN+3` / `37`.

use std::str::FromStr;

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

pub fn parse(raw: &str) -> Result<i32> {
    let raw = raw.trim();
    // runc takes an empty signal for the default one.
    if raw.is_empty() {
        return Ok(libc::SIGTERM);
    }
    if let Ok(n) = raw.parse::<i32>() {
        // 0 checks that the process exists, as kill(2) does.
        // runc hands any number to kill(2); the kernel refuses these.
        if n < 0 || n > libc::SIGRTMAX() {
            bail!("unable to signal init: invalid argument (signal {raw:?})");
        }
        return Ok(n);
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let offset =
            parse_offset(rest, '+').ok_or_else(|| anyhow::anyhow!("unknown signal {raw:?}"))?;
        let n = libc::SIGRTMIN() + offset;
        if n > libc::SIGRTMAX() {
            bail!("invalid signal {raw:?}: beyond SIGRTMAX");
        }
        return Ok(n);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let offset =
            parse_offset(rest, '-').ok_or_else(|| anyhow::anyhow!("unknown signal {raw:?}"))?;
        let n = libc::SIGRTMAX() - offset;
        if n < libc::SIGRTMIN() {
            bail!("invalid signal {raw:?}: below SIGRTMIN");
        }
        return Ok(n);
    }
    match Signal::from_str(&name) {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("unknown signal {raw:?}"),
    }
}

fn parse_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse().ok()
}

/// A handle on one process (a pidfd): a signal sent through it reaches that
/// process or nobody, never one that got its PID after it exited.
impl std::os::fd::AsRawFd for ProcessHandle {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.pidfd.as_raw_fd()
    }
}

pub struct ProcessHandle {
    pidfd: std::os::fd::OwnedFd,
    pub pid: i32,
}

impl ProcessHandle {
    /// Opens the process now holding `pid` and keeps it if `is_ours` still says
    /// so afterwards (checked after opening: a PID recycled before the open
    /// fails the check, one recycled after it is not the process held).
    pub fn open(pid: i32, is_ours: impl FnOnce(i32) -> bool) -> Option<Self> {
        // SAFETY: pidfd_open takes plain integers; the result is a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let pidfd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        is_ours(pid).then_some(Self { pidfd, pid })
    }

    /// Waits (at most `timeout`) until the process has exited; true if it has.
    /// The pidfd turns readable then, whether or not runvz is its parent.
    pub fn wait_exit(&self, timeout: std::time::Duration) -> bool {
        use std::os::fd::AsRawFd;
        let mut poll = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            // SAFETY: one pollfd that lives across the call.
            match unsafe { libc::poll(&mut poll, 1, ms) } {
                -1 if nix::errno::Errno::last() == nix::errno::Errno::EINTR => continue,
                n => return n == 1,
            }
        }
    }

    /// Whether the process has exited (its pidfd is readable).
    pub fn exited(&self) -> bool {
        self.wait_exit(std::time::Duration::ZERO)
    }

    /// Sets one of the process's rlimits. prlimit(2) takes a PID, not a pidfd:
    /// the process is checked to be alive before and after the call, and a PID
    /// is only reused once its process is gone, so the call reached this
    /// process, or it fails with ESRCH.
    pub fn set_rlimit(
        &self,
        resource: libc::__rlimit_resource_t,
        soft: u64,
        hard: u64,
    ) -> std::io::Result<()> {
        let gone = || std::io::Error::from_raw_os_error(libc::ESRCH);
        if self.exited() {
            return Err(gone());
        }
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: prlimit reads the struct we pass and writes nothing back (NULL).
        if unsafe { libc::prlimit(self.pid, resource, &limit, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if self.exited() { Err(gone()) } else { Ok(()) }
    }

    /// Opens the process's namespace `kind` (`/proc/PID/ns/KIND`), checked as
    /// [`Self::set_rlimit`] is to be this process's.
    pub fn open_namespace(&self, kind: &str) -> std::io::Result<std::fs::File> {
        let file = std::fs::File::open(format!("/proc/{}/ns/{kind}", self.pid))?;
        if self.exited() {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(file)
    }

    /// Sends a raw signal number (real-time ones included); ESRCH once it exited.
    pub fn send(&self, signal: i32) -> nix::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal with our fd, a signal number, no siginfo.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(nix::errno::Errno::last())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert!(parse("NOPE").is_err());
        assert_eq!(parse("0").unwrap(), 0);
        assert!(parse("-9").is_err());
        assert!(parse("99").is_err());
    }
}
