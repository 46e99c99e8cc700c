//! fork(2) for runvz's short-lived helpers, checked: a child of a
//! multi-threaded process may inherit a lock (the allocator's, a logger's)
//! that another thread held at the fork, and hang on it. runvz is
//! single-threaded wherever it forks; this makes that a checked fact.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::ForkResult;

/// Forks if runvz has one thread; otherwise refuses (EDEADLK, "resource
/// deadlock avoided") and logs how many it has.
///
/// # Safety
/// As `nix::unistd::fork`: the child may only make async-signal-safe calls
/// before it execs or exits with `_exit`.
pub unsafe fn fork_single_threaded() -> nix::Result<ForkResult> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        tracing::error!("runvz has {threads} threads; a helper cannot be forked safely");
        return Err(Errno::EDEADLK);
    }
    // SAFETY: single-threaded (checked above); the caller keeps the child's
    // side to async-signal-safe calls.
    unsafe { nix::unistd::fork() }
}

/// Reaps the children a failed command leaves (libcontainer's intermediate
/// process after a refused fork in the container), waiting up to `timeout`
/// for those still exiting. Not left to PID 1: a host whose init does not
/// reap would keep them as zombies, each still counted against the
/// container's process limit, so one refused `exec` would refuse the next.
pub fn reap_children(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) => {}
            // ECHILD: none left.
            Err(_) => return,
        }
    }
}
