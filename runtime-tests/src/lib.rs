//! Shared helpers for the integration tests.
//!
//! Every test runs the runtime under test ([`runtime_bin`]: `$RUNTIME`, or
//! `<workspace>/target/release/runvz`) against a fresh bundle ([`Bundle`]) made
//! from a cached busybox rootfs ([`rootfs`]), with a fresh state directory
//! ([`Runtime`]). Every command has a timeout, so a broken runtime fails the
//! suite quickly instead of hanging it. [`ContainerGuard`] removes containers
//! even when a test panics.
//!
//! The suite is written to pass against runc (`RUNTIME=/usr/sbin/runc`): runvz
//! must behave as runc does.
//!
//! The same sources run on a cgroup v1 (hybrid) host and on a pure cgroup v2
//! host (a VM): tests read cgroup files through [`Cgroup`] and state what they
//! expect as a [`Setting`], which knows the files and values of each
//! [`CgroupVersion`]. What a minimal VM may lack (runc, util-linux `script`,
//! python3, procps `ps`) is detected ([`runc_available`], [`tool_available`],
//! [`ps_table_usable`]) and the test says `skipped: <why>`; [`light_mode`]
//! (`RUNVZ_TEST_LIGHT=1`) scales the heavy tests down for an emulated VM.

mod cgroup;
pub use cgroup::*;

use serde_json::{Value, json};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default time limit for one runtime command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The parent cgroup (relative to each v1 hierarchy, or to the v2 root) that
/// tests put their containers under: `cgroupsPath` = `/runvz-test/<id>`.
pub const CGROUP_PARENT: &str = "/runvz-test";

/// Where cgroups are mounted: the v1 hierarchies' parent, or the cgroup2 root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// The cargo workspace (the parent of this crate's manifest directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime-tests has a parent directory")
        .to_path_buf()
}

/// The runtime under test: `$RUNTIME` if set, else `<workspace>/target/release/runvz`.
pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("RUNTIME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_dir().join("target/release/runvz"),
    }
}

/// The reference runtime.
pub fn runc_bin() -> PathBuf {
    PathBuf::from("/usr/sbin/runc")
}

/// True when the reference runc exists and answers `--version` (a minimal VM
/// may not ship it). Checked once per test process.
pub fn runc_available() -> bool {
    runc_unavailable_reason().is_none()
}

/// Why runc cannot be used as the reference, or None when it can.
pub fn runc_unavailable_reason() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let bin = runc_bin();
        if !bin.exists() {
            return Some(format!(
                "the reference runc ({}) is not installed",
                bin.display()
            ));
        }
        match try_run_command(
            Command::new(&bin).arg("--version"),
            None,
            Duration::from_secs(10),
        ) {
            Ok(out) if out.success() && out.stdout.starts_with("runc ") => None,
            Ok(out) => Some(format!(
                "the reference runc ({}) does not answer --version:\n{out}",
                bin.display()
            )),
            Err(e) => Some(format!("cannot run {}: {e}", bin.display())),
        }
    })
    .as_deref()
}

/// True when `program args…` runs, exits 0 and prints `needle` (on stdout or
/// stderr) within 10 s: e.g. `tool_available("script", &["--version"],
/// "util-linux")`. Not cached.
pub fn tool_available(program: &str, args: &[&str], needle: &str) -> bool {
    match try_run_command(
        Command::new(program).args(args),
        None,
        Duration::from_secs(10),
    ) {
        Ok(out) => out.success() && (out.stdout.contains(needle) || out.stderr.contains(needle)),
        Err(_) => false,
    }
}

/// util-linux `script` (busybox has no compatible applet).
pub fn script_available() -> bool {
    tool_available("script", &["--version"], "util-linux")
}

/// A working `python3`.
pub fn python3_available() -> bool {
    tool_available("python3", &["--version"], "Python 3")
}

/// True when `ps --version` says procps (GNU/Linux `ps`; busybox's differs).
pub fn ps_is_procps() -> bool {
    tool_available("ps", &["--version"], "procps")
}

/// Whether the host `ps` can back the runtime's `ps` table (the runtime runs
/// `ps -ef` and keeps the header and the rows whose PID column is the
/// container's): Ok with a description of the `ps` found, or Err with why not.
/// procps and busybox both qualify (busybox ignores `-ef` and prints
/// `PID USER COMMAND`).
pub fn ps_table_usable() -> Result<String, String> {
    let out = try_run_command(Command::new("ps").arg("-ef"), None, Duration::from_secs(10))
        .map_err(|e| format!("cannot run the host's ps: {e}"))?;
    if !out.success() {
        return Err(format!("the host's `ps -ef` fails:\n{out}"));
    }
    let header = out.stdout.lines().next().unwrap_or("");
    if !header.split_whitespace().any(|h| h == "PID") {
        return Err(format!(
            "the host's `ps -ef` prints no PID column: {header:?}"
        ));
    }
    Ok(if ps_is_procps() {
        "procps ps".to_string()
    } else {
        format!("non-procps ps (header {header:?})")
    })
}

/// True when `RUNVZ_TEST_LIGHT=1`: heavy tests (stress) scale down, for the
/// emulated (TCG, about 10x slower) cgroup v2 VM.
pub fn light_mode() -> bool {
    std::env::var("RUNVZ_TEST_LIGHT").is_ok_and(|v| v == "1")
}

/// True when the runtime under test *is* the reference runc binary (same file),
/// so comparing the two would compare runc with itself.
pub fn runtime_is_runc() -> bool {
    static IS: OnceLock<bool> = OnceLock::new();
    *IS.get_or_init(|| {
        let a = fs::canonicalize(runtime_bin());
        let b = fs::canonicalize(runc_bin());
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    })
}

/// True when the runtime under test reports itself as runc (`--version`), even
/// when it is a copy of runc at another path. Used only to tolerate runc's
/// known bugs (documented where used).
pub fn runtime_reports_runc() -> bool {
    static IS: OnceLock<bool> = OnceLock::new();
    *IS.get_or_init(|| {
        try_run_command(
            Command::new(runtime_bin()).arg("--version"),
            None,
            Duration::from_secs(10),
        )
        .is_ok_and(|out| out.stdout.starts_with("runc "))
    })
}

/// Print the standard skip line. The test should `return` right after. With
/// `RUNVZ_SKIP_LOG` set (`make test` sets it), the test and the reason are
/// also recorded there, so the closing count says it was skipped, not passed.
pub fn skip(reason: &str) {
    report(&format!("skipped: {reason}"));
    if let Some(log) = std::env::var_os("RUNVZ_SKIP_LOG") {
        let line = format!("{}\t{}\n", current_test_name(), reason.replace('\n', " "));
        // O_APPEND: one write per line, whole, from parallel test processes.
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// The running test's name: libtest names the thread after it; nextest runs
/// one test per process and passes its name on the command line.
fn current_test_name() -> String {
    let exe = std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a).file_name().map(|n| {
                n.to_string_lossy()
                    .split('-')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
        })
        .unwrap_or_default();
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .unwrap_or_else(|| "?".to_string()),
    };
    format!("{exe}::{test}")
}

/// Print a line that stays visible in `cargo test` output (written straight to
/// stderr: the test harness captures `println!`/`eprintln!` of passing tests).
pub fn report(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// Panic early with a helpful message when the runtime binary is missing, or
/// when it does not even answer `--version` within 10 s (checked once per test
/// process, so a hung runtime fails every test at once instead of each test
/// waiting out its own timeouts).
pub fn require_runtime() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECK.get_or_init(|| {
        let bin = runtime_bin();
        if !bin.exists() {
            return Err(format!(
                "runtime under test {} does not exist: build it (cargo build --release) \
                 or set RUNTIME=/path/to/runtime",
                bin.display()
            ));
        }
        let out = run_command(
            Command::new(&bin).arg("--version"),
            None,
            Duration::from_secs(10),
        );
        if !out.success() {
            return Err(format!(
                "runtime under test {} does not answer --version:\n{out}",
                bin.display()
            ));
        }
        Ok(())
    });
    if let Err(e) = res {
        panic!("{e}");
    }
}

/// Set once any runtime command timed out: cleanup then uses short timeouts.
static SAW_TIMEOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

// ---------------------------------------------------------------------------
// Unique names and temporary directories
// ---------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A short container ID, unique across threads, processes and runs:
/// `<prefix>-<pid hex>-<counter>-<4 hex of time>`.
pub fn unique_id(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = (nanos() >> 10) & 0xffff;
    format!("{prefix}-{:x}-{n}-{t:04x}", std::process::id())
}

/// The `cgroupsPath` the tests use for a container ID.
pub fn cgroups_path_for(id: &str) -> String {
    format!("{CGROUP_PARENT}/{id}")
}

/// A directory under the temporary directory ($TMPDIR, else /tmp) removed
/// (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "runvz-test-{prefix}-{}-{n}-{:x}",
                std::process::id(),
                nanos() & 0xffffff
            ));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Running commands with a timeout
// ---------------------------------------------------------------------------

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code; 128+N when the command was killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Panic unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Output {
        if !self.success() {
            panic!("command failed, expected exit 0:\n{self}");
        }
        self
    }

    /// Panic unless the command failed the way errors must fail: a non-zero
    /// exit and something on stderr.
    #[track_caller]
    pub fn failed(&self) -> &Output {
        if self.code == 0 {
            panic!("command succeeded, expected a failure:\n{self}");
        }
        if self.stderr.trim().is_empty() {
            panic!("command failed but printed nothing on stderr:\n{self}");
        }
        self
    }

    /// Panic unless the exit code is `code`.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Output {
        if self.code != code {
            panic!("expected exit code {code}:\n{self}");
        }
        self
    }

    /// Parse stdout as JSON, panicking with the output on error.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(self.stdout.trim()) {
            Ok(v) => v,
            Err(e) => panic!("stdout is not JSON ({e}):\n{self}"),
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  $ {}\n  exit: {}{} after {:?}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmdline,
            self.code,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.elapsed,
            truncate(&self.stdout, 4000),
            truncate(&self.stderr, 4000)
        )
    }
}

fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// An anonymous (already unlinked) file to collect a child's output. A file,
/// not a pipe: a container started by `create`/`run -d` inherits the runtime's
/// stdio and may hold it open for as long as it lives, so waiting for EOF on a
/// pipe could hang, and a closed pipe would SIGPIPE the container later.
fn anon_file() -> std::io::Result<File> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        ".runvz-test-out-{}-{n}-{:x}",
        std::process::id(),
        nanos()
    ));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let _ = fs::remove_file(&path);
    Ok(f)
}

fn read_all(mut f: File) -> String {
    let mut buf = Vec::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Run `cmd` with `stdin` (or /dev/null) and a time limit. On timeout the
/// whole process group is killed and `timed_out` is set (no panic for that;
/// panics only when the command cannot be started at all).
pub fn run_command(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let cmdline = describe(cmd);
    try_run_command(cmd, stdin, timeout).unwrap_or_else(|e| panic!("cannot run `{cmdline}`: {e}"))
}

/// [`run_command`] that never panics (for cleanup code in `Drop`).
pub fn try_run_command(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Output> {
    let cmdline = describe(cmd);
    let out = anon_file()?;
    let err = anon_file()?;
    cmd.stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let start = Instant::now();
    let spawned = cmd.spawn();
    // Drop our copies of the handles given to the child.
    cmd.stdout(Stdio::null());
    cmd.stderr(Stdio::null());
    let mut child = spawned?;
    let pid = child.id() as libc::pid_t;
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
            // `w` dropped here: the reader sees EOF.
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(st) => (st, false),
        Err(_) => {
            // SAFETY: plain kill(2) on the child's process group and pid.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            (
                rx.recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| Err(std::io::Error::other("child did not die"))),
                true,
            )
        }
    };
    let elapsed = start.elapsed();
    if timed_out {
        SAW_TIMEOUT.store(true, Ordering::Relaxed);
    }
    let code = match status {
        Ok(st) => st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)),
        Err(_) => -1,
    };
    Ok(Output {
        cmdline,
        code,
        stdout: read_all(out),
        stderr: read_all(err),
        timed_out,
        elapsed,
    })
}

// ---------------------------------------------------------------------------
// The cached rootfs
// ---------------------------------------------------------------------------

/// A busybox rootfs, built once per test run into `<workspace>/target/test-rootfs`
/// by `hack/mkrootfs.sh` (which exits at once when it is current). Guarded by a
/// `OnceLock` within the process and an exclusive `flock` across processes.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let ws = workspace_dir();
        let target = ws.join("target");
        fs::create_dir_all(&target).expect("create target dir");
        let dir = target.join("test-rootfs");
        let lock = File::create(target.join("test-rootfs.lock")).expect("create rootfs lock");
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            panic!("flock: {}", std::io::Error::last_os_error());
        }
        let out = run_command(
            Command::new("sh")
                .arg(ws.join("hack/mkrootfs.sh"))
                .arg(&dir),
            None,
            Duration::from_secs(120),
        );
        // Unlocked when `lock` is closed.
        drop(lock);
        if !out.success() {
            panic!("hack/mkrootfs.sh failed:\n{out}");
        }
        dir
    })
}

/// The host's one /proc view server, shared by every test's system
/// containers: tests that make them hold this lock shared, the test that
/// kills the server holds it alone (a container made or read while it is
/// dead would fail). Released when the returned file is dropped.
pub fn proc_view_server_lock(exclusive: bool) -> File {
    let target = workspace_dir().join("target");
    fs::create_dir_all(&target).expect("create target dir");
    let lock = File::create(target.join("procview-server.lock")).expect("create the view lock");
    let how = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), how) } != 0 {
        panic!("flock: {}", std::io::Error::last_os_error());
    }
    lock
}

/// Turns a shared hold of [`proc_view_server_lock`] into an exclusive one
/// (waiting for the others to let go).
pub fn hold_alone(lock: &File) {
    // SAFETY: flock on an fd the caller owns.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        panic!("flock: {}", std::io::Error::last_os_error());
    }
}

/// Makes the busybox `rootfs` (a copy the caller owns) boot busybox's init:
/// `/sbin/init` links to busybox, and an `inittab` when one is given.
pub fn link_busybox_init(rootfs: &Path, inittab: Option<&str>) {
    fs::create_dir_all(rootfs.join("sbin")).unwrap();
    let _ = fs::remove_file(rootfs.join("sbin/init"));
    std::os::unix::fs::symlink("/bin/busybox", rootfs.join("sbin/init")).unwrap();
    if let Some(inittab) = inittab {
        fs::write(rootfs.join("etc/inittab"), inittab).unwrap();
    }
}

/// The Debian bookworm rootfs with systemd the system-container tests boot
/// (`hack/mkrootfs-systemd.sh`, cached in `<workspace>/target/systemd-rootfs`),
/// or why there is none here (the caller then calls [`skip`] with it).
pub fn systemd_rootfs() -> Result<PathBuf, String> {
    debootstrapped("systemd-rootfs", None)
}

/// The same with Docker and Podman installed (`mkrootfs-systemd.sh DIR
/// nesting`, in `<workspace>/target/nesting-rootfs`), for the nesting tests.
pub fn nesting_rootfs() -> Result<PathBuf, String> {
    debootstrapped("nesting-rootfs", Some("nesting"))
}

/// `target/<name>`, made by `mkrootfs-systemd.sh` (with `variant`) under an
/// exclusive `flock`, as test executables may ask for it at once.
fn debootstrapped(name: &str, variant: Option<&str>) -> Result<PathBuf, String> {
    let ws = workspace_dir();
    let target = ws.join("target");
    let dir = target.join(name);
    if !dir.exists() && !tool_available("debootstrap", &["--version"], "debootstrap") {
        return Err("debootstrap is not installed and no rootfs was made before".to_string());
    }
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let lock = File::create(target.join(format!("{name}.lock")))
        .map_err(|e| format!("cannot create the {name} lock: {e}"))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!("flock: {}", std::io::Error::last_os_error()));
    }
    let mut script = Command::new("sh");
    script.arg(ws.join("hack/mkrootfs-systemd.sh")).arg(&dir);
    if let Some(variant) = variant {
        script.arg(variant);
    }
    let out = run_command(&mut script, None, Duration::from_secs(900));
    // Unlocked when `lock` is closed.
    drop(lock);
    if out.success() {
        Ok(dir)
    } else {
        Err(format!("no {name}: {}", out.stderr.trim()))
    }
}

/// An overlay of a cached rootfs (`lower`), so a boot can write without
/// changing it; unmounted on drop.
pub struct Overlay {
    _dir: TempDir,
    pub merged: PathBuf,
}

impl Overlay {
    /// Mounted at `merged` in a temporary directory of its own.
    pub fn new(lower: &Path) -> Overlay {
        let dir = TempDir::new("sys-overlay");
        let merged = dir.path().join("merged");
        fs::create_dir_all(&merged).unwrap();
        Self::mount(dir, lower, merged)
    }

    /// Mounted at `merged` (an existing empty directory, e.g. a bundle's
    /// `rootfs`); the upper and work directories are temporary. Drop it before
    /// the directory holding `merged`.
    pub fn at(lower: &Path, merged: &Path) -> Overlay {
        Self::mount(TempDir::new("sys-overlay"), lower, merged.to_path_buf())
    }

    fn mount(dir: TempDir, lower: &Path, merged: PathBuf) -> Overlay {
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        for d in [&upper, &work] {
            fs::create_dir_all(d).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let out = run_command(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(&merged),
            None,
            Duration::from_secs(30),
        );
        assert!(out.success(), "overlay mount failed: {out}");
        Overlay { _dir: dir, merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
    }
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// Exactly what `runc spec` (runc 1.1.5) writes by default.
pub fn default_spec() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}
            ],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}]
            },
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Set the value at a JSON pointer (`/process/args`), creating objects on the way.
pub fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    assert!(pointer.starts_with('/'), "JSON pointer must start with /");
    let mut cur = root;
    let parts: Vec<String> = pointer[1..]
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if let Value::Array(arr) = cur {
            let idx: usize = part.parse().expect("array index in JSON pointer");
            if last {
                arr[idx] = value;
                return;
            }
            cur = &mut arr[idx];
            continue;
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().unwrap();
        if last {
            obj.insert(part.clone(), value);
            return;
        }
        cur = obj.entry(part.clone()).or_insert_with(|| json!({}));
    }
}

/// A bundle: a fresh directory under $TMPDIR (/tmp) with `rootfs/` (a `cp -a` copy of the
/// cached rootfs) and `config.json`. Every setter rewrites config.json. Removed
/// on drop.
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// `runc spec`'s default config, except `process.terminal = false` (tests
    /// have no console socket). The process is `sh` until [`Bundle::args`].
    pub fn new() -> Bundle {
        let dir = TempDir::new("bundle");
        let src = rootfs();
        let out = run_command(
            Command::new("cp")
                .arg("-a")
                .arg(src)
                .arg(dir.path().join("rootfs")),
            None,
            Duration::from_secs(60),
        );
        if !out.success() {
            panic!("copying the rootfs failed:\n{out}");
        }
        let mut b = Bundle {
            dir,
            config: default_spec(),
        };
        b.terminal(false);
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 bundle path")
    }

    pub fn rootfs_path(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Write `self.config` to config.json.
    pub fn save(&self) {
        let s = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.config_path(), s).expect("write config.json");
    }

    /// Set any value by JSON pointer, e.g. `set("/process/cwd", json!("/tmp"))`.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        set_pointer(&mut self.config, pointer, value);
        self.save();
        self
    }

    /// Arbitrary change to the config.
    pub fn patch(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }

    /// Replace the whole environment.
    pub fn env(&mut self, env: &[&str]) -> &mut Self {
        self.set("/process/env", json!(env))
    }

    /// Add one `KEY=VALUE` to the environment.
    pub fn add_env(&mut self, kv: &str) -> &mut Self {
        self.patch(|c| {
            c["process"]["env"]
                .as_array_mut()
                .expect("process.env")
                .push(json!(kv))
        })
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set("/process/cwd", json!(cwd))
    }

    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.set("/process/user", json!({"uid": uid, "gid": gid}))
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.set("/hostname", json!(name))
    }

    /// Replace `process.rlimits`, e.g. `json!([{"type":"RLIMIT_NOFILE","soft":64,"hard":64}])`.
    pub fn rlimits(&mut self, rlimits: Value) -> &mut Self {
        self.set("/process/rlimits", rlimits)
    }

    /// Replace `linux.resources` (keep the default device rule yourself if wanted).
    pub fn resources(&mut self, resources: Value) -> &mut Self {
        self.set("/linux/resources", resources)
    }

    pub fn cgroups_path(&mut self, path: &str) -> &mut Self {
        self.set("/linux/cgroupsPath", json!(path))
    }

    pub fn annotation(&mut self, key: &str, value: &str) -> &mut Self {
        self.patch(|c| {
            if !c["annotations"].is_object() {
                c["annotations"] = json!({});
            }
            c["annotations"][key] = json!(value);
        })
    }

    pub fn readonly(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }

    pub fn mounts(&mut self, mounts: Value) -> &mut Self {
        self.set("/mounts", mounts)
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.patch(|c| c["mounts"].as_array_mut().expect("mounts").push(mount))
    }
}

// ---------------------------------------------------------------------------
// The runtime
// ---------------------------------------------------------------------------

/// A runtime binary with its own fresh state directory (`--root`).
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    _root_dir: TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// The runtime under test.
    pub fn new() -> Runtime {
        require_runtime();
        Self::with_bin(runtime_bin())
    }

    /// The reference runc.
    pub fn runc() -> Runtime {
        Self::with_bin(runc_bin())
    }

    pub fn with_bin(bin: impl Into<PathBuf>) -> Runtime {
        // `<tempdir>/state`: a fresh empty directory, inside a directory of
        // our own so tests can also see whether anything was written beside it.
        let dir = TempDir::new("root");
        let root = dir.path().join("state");
        fs::create_dir(&root).expect("create state dir");
        Runtime {
            bin: bin.into(),
            root,
            _root_dir: dir,
        }
    }

    pub fn root_str(&self) -> &str {
        self.root.to_str().expect("utf-8 root")
    }

    /// `bin --root ROOT args…`, as a Command (not run).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        for a in args {
            c.arg(a);
        }
        c
    }

    /// Run with the default timeout; panics if it is exceeded.
    #[track_caller]
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.cmd_full(args, None, DEFAULT_TIMEOUT)
    }

    /// Run with `input` on stdin; panics on timeout.
    #[track_caller]
    pub fn cmd_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        self.cmd_full(args, Some(input), DEFAULT_TIMEOUT)
    }

    /// Run with a custom timeout; panics if it is exceeded.
    #[track_caller]
    pub fn cmd_timeout<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> Output {
        self.cmd_full(args, None, timeout)
    }

    /// Run; panics (loudly, with the output so far) if `timeout` is exceeded.
    #[track_caller]
    pub fn cmd_full<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
        timeout: Duration,
    ) -> Output {
        let out = run_command(&mut self.command(args), input, timeout);
        if out.timed_out {
            panic!("runtime command exceeded its {timeout:?} timeout and was killed:\n{out}");
        }
        out
    }

    /// Run without panicking on timeout (check `timed_out`).
    pub fn try_cmd<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
        timeout: Duration,
    ) -> Output {
        run_command(&mut self.command(args), input, timeout)
    }

    /// Run `args` with `dir` as the working directory (default timeout).
    #[track_caller]
    pub fn cmd_in<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Output {
        let mut c = self.command(args);
        c.current_dir(dir);
        let out = run_command(&mut c, None, DEFAULT_TIMEOUT);
        if out.timed_out {
            panic!("runtime command exceeded its timeout and was killed:\n{out}");
        }
        out
    }

    /// `state ID` parsed, or None when the command fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.cmd(&["state", id]);
        if !out.success() {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// `state ID`'s status, or None when the container does not exist.
    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .and_then(|s| s["status"].as_str().map(str::to_string))
    }

    /// The init pid from `state ID` (panics if there is none).
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let st = self
            .state(id)
            .unwrap_or_else(|| panic!("no state for {id}"));
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state has no pid: {st}")) as i32
    }

    /// Poll `state` until the status is `want`; panics after `timeout`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let mut last = None;
        let ok = wait_until(timeout, || {
            last = self.status(id);
            last.as_deref() == Some(want)
        });
        if !ok {
            panic!(
                "container {id} did not reach status {want:?} within {timeout:?}; last status {last:?}"
            );
        }
    }

    /// The state directory the runtime keeps for `id`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// A guard that `delete --force`s `id` on drop (and clears its cgroup).
    pub fn guard(&self, id: &str, cgroups_path: Option<&str>) -> ContainerGuard {
        ContainerGuard {
            bin: self.bin.clone(),
            root: self.root.clone(),
            id: id.to_string(),
            cgroups_path: cgroups_path.map(str::to_string),
        }
    }
}

// ---------------------------------------------------------------------------
// Cleanup and leak checks
// ---------------------------------------------------------------------------

/// Runs `delete --force ID` on drop, ignoring errors, so containers go away
/// even when a test panics. When a cgroupsPath is known it then kills anything
/// left in that cgroup and removes it (a last resort; leak checks in the tests
/// run before the guard drops).
pub struct ContainerGuard {
    bin: PathBuf,
    root: PathBuf,
    id: String,
    cgroups_path: Option<String>,
}

impl ContainerGuard {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .args(["delete", "--force"])
            .arg(&self.id);
        // Never panic here: this runs while a failed test unwinds.
        let limit = if SAW_TIMEOUT.load(Ordering::Relaxed) {
            3
        } else {
            15
        };
        let _ = try_run_command(&mut c, None, Duration::from_secs(limit));
        if let Some(cg) = &self.cgroups_path {
            kill_cgroup(cg);
            remove_cgroup(cg);
        }
    }
}

/// Host processes (not zombies) whose cmdline mentions `needle` or which sit in
/// `cgroups_path` (or below it). Returns "pid: cmdline" strings.
/// What stands beside a test runtime's root (`<tempdir>/state`) other than
/// the root itself: an ID or path that climbed out would show here.
pub fn entries_beside_root(rt: &Runtime) -> Vec<String> {
    fs::read_dir(rt.root.parent().expect("the root has a parent"))
        .expect("read the root's parent")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "state")
        .collect()
}

pub fn processes_matching(needle: Option<&str>, cgroups_path: Option<&str>) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = e.path();
        let Ok(status) = fs::read_to_string(base.join("status")) else {
            continue;
        };
        if status
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("Z (") || l.contains("X (")))
        {
            continue;
        }
        let cmdline = fs::read(base.join("cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let mut hit = false;
        if let Some(n) = needle {
            hit |= cmdline.contains(n);
        }
        if let Some(cg) = cgroups_path {
            let cg = cg.trim_end_matches('/');
            if let Ok(cgs) = fs::read_to_string(base.join("cgroup")) {
                hit |= cgs.lines().any(|l| {
                    let path = l.splitn(3, ':').nth(2).unwrap_or("");
                    path == cg || path.starts_with(&format!("{cg}/"))
                });
            }
        }
        if hit {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// True when process `pid` has a handler installed for `sig` (SigCgt in
/// /proc/PID/status), e.g. once a shell has run its `trap`.
pub fn signal_caught(pid: i32, sig: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// True when the process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => !s
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("Z (") || l.contains("X ("))),
        Err(_) => false,
    }
}

/// Host mount table lines mentioning `needle`.
pub fn host_mounts_matching(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Paths anywhere under `dir` whose file name contains `needle`.
pub fn paths_mentioning(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().contains(needle) {
                v.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                v.extend(paths_mentioning(&p, needle));
            }
        }
    }
    v
}

/// Top-level entries of the runtime's root that could be container state:
/// everything but dot-files (a runtime may keep shared housekeeping such as
/// lock directories there; per-container leftovers in them are caught by
/// [`paths_mentioning`]).
pub fn root_entries(rt: &Runtime) -> Vec<String> {
    fs::read_dir(&rt.root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// What is left behind for container `id`: its state dir under the runtime's
/// root (or any file there named after it), its cgroup (in any hierarchy),
/// processes whose cmdline mentions the ID or which sit in its cgroup, and host
/// mounts mentioning the ID.
pub fn leaks(rt: &Runtime, id: &str, cgroups_path: &str) -> Vec<String> {
    let mut v = Vec::new();
    let sd = rt.state_dir(id);
    if sd.exists() {
        v.push(format!("state dir {} still exists", sd.display()));
    }
    for p in paths_mentioning(&rt.root, id) {
        if p != sd {
            v.push(format!("{} still exists under the root", p.display()));
        }
    }
    for d in cgroup_dirs_present(cgroups_path) {
        v.push(format!("cgroup {} still exists", d.display()));
    }
    for p in processes_matching(Some(id), Some(cgroups_path)) {
        v.push(format!("process still there: {p}"));
    }
    for m in host_mounts_matching(id) {
        v.push(format!("host mount still there: {m}"));
    }
    v.extend(system_leaks(rt, id));
    v
}

/// The key runvz holds a container's host-wide things under (ID range,
/// project ID, /proc view): its canonical state root and its ID.
pub fn runvz_key(rt: &Runtime, id: &str) -> String {
    let root = fs::canonicalize(&rt.root).unwrap_or_else(|_| rt.root.clone());
    format!("{}/{id}", root.display())
}

/// A key as runvz names a directory after it (FNV-1a).
pub fn runvz_key_name(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What a system container with its own ID range may leave outside the state
/// root: its range in the host-wide allocator (`/run/runvz/.userns`), its
/// directory of idmapped mounts (`/run/runvz.idmap/<hash>`), its entry in the
/// /proc view server's table (`/run/runvz/.procview`); and a container with a
/// disk quota its project ID (`/run/runvz/.quota`).
fn system_leaks(rt: &Runtime, id: &str) -> Vec<String> {
    let mut v = Vec::new();
    let key = runvz_key(rt, id);
    let ranges = fs::read_to_string("/run/runvz/.userns/ranges.json").unwrap_or_default();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&ranges)
        && let Some(start) = map.get(&key)
    {
        v.push(format!(
            "user-namespace range {start} still allocated to {key}"
        ));
    }
    let served = fs::read_to_string("/run/runvz/.procview/containers.json").unwrap_or_default();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&served)
        && map.contains_key(&key)
    {
        v.push(format!("the /proc view server still serves {key}"));
    }
    let projects = fs::read_to_string("/run/runvz/.quota/projects.json").unwrap_or_default();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&projects)
        && let Some(held) = map.get(&key)
    {
        v.push(format!(
            "disk quota project {held} still allocated to {key}"
        ));
    }
    let dir = format!("/run/runvz.idmap/{}", runvz_key_name(&key));
    if Path::new(&dir).exists() {
        v.push(format!("idmap directory {dir} still exists"));
    }
    for m in host_mounts_matching(&dir) {
        v.push(format!("host mount still there: {m}"));
    }
    v
}

/// Assert (polling up to 5 s, for exits and reaping to settle) that nothing is
/// left for `id`.
#[track_caller]
pub fn assert_no_leak(rt: &Runtime, id: &str, cgroups_path: &str) {
    let mut last = Vec::new();
    if !wait_until(Duration::from_secs(5), || {
        last = leaks(rt, id, cgroups_path);
        last.is_empty()
    }) {
        panic!("container {id} leaked:\n  {}", last.join("\n  "));
    }
}

/// Poll `f` (every 10 ms at first, backing off to 50 ms) until it returns true
/// or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// A test fixture: runtime + bundle + id + guard
// ---------------------------------------------------------------------------

/// One container under test. Field order is drop order: the guard deletes the
/// container first, then the bundle and the state directory go.
pub struct Ctx {
    /// Locks the test holds while the container lives (dropped after it).
    pub held: Vec<File>,
    pub guard: ContainerGuard,
    pub id: String,
    /// The container's cgroupsPath, `/runvz-test/<id>`.
    pub cg: String,
    pub bundle: Bundle,
    pub rt: Runtime,
}

impl Ctx {
    /// The runtime under test, a bundle running `args`, cgroupsPath `/runvz-test/<id>`.
    pub fn new(prefix: &str, args: &[&str]) -> Ctx {
        Self::with_runtime(Runtime::new(), prefix, args)
    }

    pub fn with_runtime(rt: Runtime, prefix: &str, args: &[&str]) -> Ctx {
        let id = unique_id(prefix);
        let cg = cgroups_path_for(&id);
        let mut bundle = Bundle::new();
        bundle.args(args).cgroups_path(&cg);
        let guard = rt.guard(&id, Some(&cg));
        Ctx {
            held: Vec::new(),
            guard,
            id,
            cg,
            bundle,
            rt,
        }
    }

    /// Run a runtime command (default timeout).
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.rt.cmd(args)
    }

    /// `exec ID sh -c SCRIPT` in the running container, asserted to succeed
    /// (within 120 s: a script may write a lot); its stdout.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        let out = self.rt.cmd_timeout(
            &["exec", &self.id, "sh", "-c", script],
            Duration::from_secs(120),
        );
        out.ok();
        out.stdout
    }

    /// `create --bundle B ID`, asserted to succeed.
    #[track_caller]
    pub fn create(&self) -> Output {
        let out = self
            .rt
            .cmd(&["create", "--bundle", self.bundle.path_str(), &self.id]);
        out.ok();
        out
    }

    /// `create` + `start`, asserted to succeed; waits for "running".
    #[track_caller]
    pub fn create_start(&self) {
        self.create();
        self.cmd(&["start", &self.id]).ok();
        self.rt
            .wait_status(&self.id, "running", Duration::from_secs(10));
    }

    /// `run --detach --bundle B ID`, asserted to succeed.
    #[track_caller]
    pub fn run_detached(&self) -> Output {
        let out = self.rt.cmd(&[
            "run",
            "--detach",
            "--bundle",
            self.bundle.path_str(),
            &self.id,
        ]);
        out.ok();
        out
    }

    /// `run --bundle B ID` in the foreground, with optional stdin.
    #[track_caller]
    pub fn run_fg(&self, input: Option<&[u8]>, timeout: Duration) -> Output {
        self.rt.cmd_full(
            &["run", "--bundle", self.bundle.path_str(), &self.id],
            input,
            timeout,
        )
    }

    pub fn status(&self) -> Option<String> {
        self.rt.status(&self.id)
    }

    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.rt.pid(&self.id)
    }

    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        self.rt.wait_status(&self.id, want, Duration::from_secs(10))
    }

    /// The container's cgroup, on this host's cgroup version.
    pub fn cgroup(&self) -> Cgroup {
        Cgroup::new(&self.cg)
    }

    #[track_caller]
    pub fn assert_no_leak(&self) {
        assert_no_leak(&self.rt, &self.id, &self.cg)
    }
}

/// Run the same bundle under runc and under the runtime under test, in the
/// foreground, and return (runc's output, the runtime's output). Returns None
/// (after printing the skip line) when the runtime under test is runc itself
/// or runc is not available.
pub fn run_both(prefix: &str, setup: impl Fn(&mut Bundle)) -> Option<(Output, Output)> {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("differential test: {why}"));
        return None;
    }
    if runtime_is_runc() {
        skip("differential test: the runtime under test is runc itself");
        return None;
    }
    let mut outs = Vec::new();
    for rt in [Runtime::runc(), Runtime::new()] {
        let mut ctx = Ctx::with_runtime(rt, prefix, &["true"]);
        setup(&mut ctx.bundle);
        let out = ctx.run_fg(None, DEFAULT_TIMEOUT);
        ctx.assert_no_leak();
        outs.push(out);
    }
    let b = outs.pop().unwrap();
    let a = outs.pop().unwrap();
    Some((a, b))
}

/// Receives the pty master sent over a console socket (SCM_RIGHTS), as conmon and
/// containerd's shim do.
pub fn receive_console(listener: &std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    let (stream, _) = listener.accept().expect("console connection");
    receive_with_fd(&stream, 256).1
}

/// One message (at most `max` bytes) and the descriptor sent with it by
/// SCM_RIGHTS: the console socket's and the seccomp agent's protocol.
pub fn receive_with_fd(
    stream: &std::os::unix::net::UnixStream,
    max: usize,
) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut data = vec![0u8; max];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut control = [0u8; 64];
    // SAFETY: msghdr points at buffers that live for the whole call.
    let (n, fd) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
        let n = libc::recvmsg(stream.as_raw_fd(), &mut msg, 0);
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null(), "no descriptor came with the message");
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        (
            n as usize,
            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int),
        )
    };
    data.truncate(n);
    // SAFETY: the fd arrived by SCM_RIGHTS and is ours alone.
    (data, unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}
