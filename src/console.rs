//! Foreground processes (`run` and `exec` without `--detach`): receiving the pty
//! master when the process has a terminal, copying between it and runvz's own
//! stdio, forwarding signals, and reaping the process without ever missing its exit.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SigSet;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// A listening socket that libcontainer connects to and sends the pty master over,
/// exactly as a caller's `--console-socket` would.
pub struct ConsoleSocket {
    dir: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// The console socket of a process in the foreground: the caller's, or
    /// (`own`: a terminal and none given) one runvz listens on under `parent`
    /// and relays itself. Returns runvz's own socket, if any, and the path to
    /// hand libcontainer.
    pub fn for_foreground(
        own: bool,
        given: Option<PathBuf>,
        parent: &Path,
    ) -> Result<(Option<Self>, Option<PathBuf>)> {
        if !own {
            return Ok((None, given));
        }
        let socket = Self::new(parent)?;
        let path = socket.path();
        Ok((Some(socket), Some(path)))
    }

    pub fn new(parent: &Path) -> Result<Self> {
        std::fs::create_dir_all(parent)?;
        let dir = parent.join(format!("console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let listener =
            UnixListener::bind(dir.join("sock")).context("cannot listen for the console")?;
        Ok(Self { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Accepts libcontainer's connection and takes the pty master from it.
    pub fn receive_master(&self) -> Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        bail!("the container did not send its console");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(err) => return Err(err).context("cannot accept the console connection"),
            }
        };
        stream.set_nonblocking(false)?;
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .context("cannot receive the console")?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c
                && let Some(&fd) = fds.first()
            {
                // SAFETY: the fd was just received via SCM_RIGHTS and is owned by nobody else.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        bail!("the console message carried no file descriptor")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Puts runvz's terminal (if stdin is one) in raw mode for the session; restores it on drop.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        Self { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Copies the caller's window size to the pty.
fn resize(master: &File) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize struct we own.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The signals forwarded to a foreground process (and SIGCHLD, to notice its exit).
fn foreground_sigset() -> SigSet {
    let mut set = SigSet::all();
    // Signals that must keep their default effect on runvz itself.
    for sig in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGTSTP,
    ] {
        set.remove(sig);
    }
    set
}

/// Waits for the foreground process `pid` (a child of runvz), forwarding signals,
/// optionally relaying its terminal, and returns its exit status as a shell would
/// report it (128+N when killed by signal N).
///
/// Signals are blocked *before* the first reap attempt, so a process that exited
/// before we got here is found by the reap and one that exits later wakes sigwait.
pub fn wait_foreground(pid: Pid, master: Option<OwnedFd>) -> Result<u8> {
    let set = foreground_sigset();
    set.thread_block().context("cannot block signals")?;

    let relay = master.map(|fd| {
        let master = File::from(fd);
        let raw = RawMode::enter();
        resize(&master);
        let mut to_pty = master.try_clone().expect("dup pty master");
        // stdin → pty: a detached thread; it ends with the process (write fails).
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut from_pty = master.try_clone().expect("dup pty master");
        let output = std::thread::spawn(move || {
            let mut stdout = std::io::stdout();
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed: the session is over.
            while let Ok(n) = from_pty.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        });
        (master, raw, output)
    });

    let status = loop {
        if let Some(code) = reap(pid)? {
            break code;
        }
        match set.wait().context("sigwait failed")? {
            Signal::SIGCHLD => continue,
            Signal::SIGWINCH => {
                if let Some((master, _, _)) = &relay {
                    resize(master);
                }
            }
            Signal::SIGURG => {} // Go runtimes in the container use it internally
            sig => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    };

    if let Some((master, raw, output)) = relay {
        // Let the output drain, but never hang on a daemon that kept the pty open.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !output.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(master);
        drop(raw);
    }
    Ok(status)
}

/// Reaps every exited child; returns the status of `pid` once it has exited.
fn reap(pid: Pid) -> Result<Option<u8>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Some(code as u8)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as u8)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => bail!("process {pid} is not a child of runvz"),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waitpid failed"),
        }
    }
}
