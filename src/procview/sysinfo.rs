//! `sysinfo(2)` answered with the container's numbers (busybox `free` and
//! `uptime`, runtimes that size their heaps from it), as Incus's
//! `security.syscalls.intercept.sysinfo`: the container's seccomp profile
//! hands `sysinfo` alone to runvz (`SCMP_ACT_NOTIFY`, the listener the view's
//! supervisor keeps at `/run/runvz/.procview/sysinfo.sock`), which writes the
//! container's memory, swap, uptime, load and thread count into the caller's
//! buffer. A caller in no container the server knows gets the kernel's answer.
//!
//! Without seccomp user notification (kernel before 5.0, libseccomp before
//! 2.5) or with `runvz.sysinfo=host`, sysinfo is the kernel's, as without a
//! view.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libseccomp::{ScmpArch, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder, Spec};

use super::HOME;
use super::load::Load;

/// Where the supervisor listens for the containers' notification fds.
pub fn socket_path() -> PathBuf {
    Path::new(HOME).join("sysinfo.sock")
}

/// libseccomp's API level with SCMP_ACT_NOTIFY and the notify fd.
const NOTIFY_API: u32 = 5;

/// Hands the container's `sysinfo` calls to the server: a rule of its own in
/// the container's seccomp profile (made when it has none), only where the
/// profile lets sysinfo run; `key` names the container to the server. False
/// (with a warning saying why) where it cannot be done.
pub fn intercept(spec: &mut Spec, key: &str) -> Result<bool> {
    if libseccomp::get_api() < NOTIFY_API {
        tracing::warn!(
            "no seccomp user notification here (kernel or libseccomp too old): sysinfo(2) in the container shows the host's memory and load"
        );
        return Ok(false);
    }
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(false);
    };
    let notify = LinuxSyscallBuilder::default()
        .names(vec!["sysinfo".to_string()])
        .action(LinuxSeccompAction::ScmpActNotify)
        .build()?;
    let seccomp = match linux.seccomp().clone() {
        None => LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(vec![notify])
            .build()?,
        Some(profile) => {
            let rules = profile.syscalls().clone().unwrap_or_default();
            let has_agent = profile.listener_path().is_some()
                || rules
                    .iter()
                    .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
            if has_agent {
                tracing::warn!(
                    "the config's seccomp profile has its own agent: sysinfo(2) in the container shows the host's numbers"
                );
                return Ok(false);
            }
            let naming: Vec<_> = rules
                .iter()
                .filter(|r| r.names().iter().any(|n| n == "sysinfo"))
                .collect();
            let allowed = if naming.is_empty() {
                profile.default_action() == LinuxSeccompAction::ScmpActAllow
            } else {
                naming.iter().all(|r| {
                    r.action() == LinuxSeccompAction::ScmpActAllow
                        && r.args().as_ref().is_none_or(|a| a.is_empty())
                })
            };
            if !allowed {
                // The profile refuses sysinfo: it stays refused.
                return Ok(false);
            }
            let mut kept: Vec<_> = rules
                .into_iter()
                .filter_map(|mut rule| {
                    let names: Vec<String> = rule
                        .names()
                        .iter()
                        .filter(|n| *n != "sysinfo")
                        .cloned()
                        .collect();
                    (!names.is_empty()).then(|| {
                        rule.set_names(names);
                        rule
                    })
                })
                .collect();
            kept.push(notify);
            let mut profile = profile;
            profile.set_syscalls(Some(kept));
            profile
        }
    };
    let mut seccomp = seccomp;
    seccomp.set_listener_path(Some(socket_path()));
    seccomp.set_listener_metadata(Some(key.to_string()));
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    Ok(true)
}

/// A notification fd the supervisor answers, and the container it is for.
pub struct Listener {
    pub fd: OwnedFd,
    pub key: String,
}

/// Takes one connection's message: the OCI process state (whose metadata is
/// the container's key) with the notification fd.
pub fn receive(stream: &UnixStream) -> Result<Listener> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("cannot receive a seccomp notification fd")?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: SCM_RIGHTS gave this process these new descriptors.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let len = msg.bytes;
    let mut text = buf[..len].to_vec();
    // The rest of the state, if it did not fit in one read.
    let _ = stream.take(1 << 20).read_to_end(&mut text);
    let state: serde_json::Value =
        serde_json::from_slice(&text).context("the seccomp state is not JSON")?;
    let key = state["metadata"]
        .as_str()
        .context("the seccomp state has no metadata")?
        .to_string();
    let fd = fds
        .into_iter()
        .next()
        .context("no seccomp notification fd came")?;
    Ok(Listener { fd, key })
}

/// The container's numbers, as the supervisor knows them now.
pub struct Numbers {
    pub memory: Option<super::render::Memory>,
    pub uptime: Option<f64>,
    pub load: Load,
}

/// Answers one notification on `listener`: the container's sysinfo written
/// into the caller's buffer, or (a caller of another architecture, numbers
/// unknown) the kernel's own.
pub fn answer(listener: &Listener, numbers: impl FnOnce(&str) -> Option<Numbers>) -> Result<()> {
    let fd = listener.fd.as_raw_fd();
    let request = ScmpNotifReq::receive(fd).context("cannot receive a sysinfo notification")?;
    let kernels = || ScmpNotifResp::new_continue(request.id, ScmpNotifRespFlags::empty());
    let native = ScmpArch::native();
    let response = match numbers(&listener.key) {
        Some(numbers) if request.data.arch == native => {
            match write_sysinfo(fd, &request, &numbers) {
                Ok(()) => ScmpNotifResp::new_val(request.id, 0, ScmpNotifRespFlags::empty()),
                Err(errno) => {
                    ScmpNotifResp::new_error(request.id, -errno, ScmpNotifRespFlags::empty())
                }
            }
        }
        _ => kernels(),
    };
    // The caller may be gone already (killed): nothing to answer.
    let _ = response.respond(fd);
    Ok(())
}

/// Writes the container's `struct sysinfo` at the caller's pointer, through
/// its /proc/PID/mem opened before the request is checked still pending (so
/// the PID cannot be another process by then).
fn write_sysinfo(
    fd: RawFd,
    request: &ScmpNotifReq,
    numbers: &Numbers,
) -> std::result::Result<(), i32> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/mem", request.pid))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ESRCH))?;
    libseccomp::notify_id_valid(fd, request.id).map_err(|_| libc::ESRCH)?;
    let info = fill(numbers);
    // SAFETY: `info` is a plain C struct; its bytes are what the kernel writes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&info as *const libc::sysinfo).cast::<u8>(),
            std::mem::size_of::<libc::sysinfo>(),
        )
    };
    mem.write_all_at(bytes, request.data.args[0])
        .map_err(|_| libc::EFAULT)
}

/// The kernel's sysinfo with the container's numbers in place of the host's.
fn fill(numbers: &Numbers) -> libc::sysinfo {
    // SAFETY: sysinfo fills the zeroed struct.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a sysinfo struct.
    unsafe { libc::sysinfo(&mut info) };
    if let Some(memory) = &numbers.memory {
        info.mem_unit = 1024;
        info.totalram = memory.total as _;
        info.freeram = memory.free as _;
        info.sharedram = memory.shmem as _;
        info.bufferram = 0;
        info.totalswap = memory.swap_total as _;
        info.freeswap = (memory.swap_total - memory.swap_used) as _;
        info.totalhigh = 0;
        info.freehigh = 0;
    }
    if let Some(up) = numbers.uptime {
        info.uptime = up as _;
    }
    // The kernel's fixed point: 1.0 is 1 << SI_LOAD_SHIFT (16).
    for (slot, average) in info.loads.iter_mut().zip(numbers.load.averages()) {
        *slot = (average * 65536.0) as _;
    }
    info.procs = numbers.load.threads.min(u16::MAX as usize) as u16;
    info
}

/// Notification fds by container, kept by the supervisor (a worker's death
/// does not lose them; a closed one would make every sysinfo in its
/// container fail with ENOSYS).
pub type Listeners = HashMap<RawFd, Listener>;
