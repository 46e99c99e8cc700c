//! fork(2) for runvz's short-lived helpers, checked: a child of a
//! multi-threaded process may inherit a lock (the allocator's, a logger's)
//! that another thread held at the fork, and hang on it. runvz is
//! single-threaded wherever it forks; this makes that a checked fact.

use nix::errno::Errno;
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
