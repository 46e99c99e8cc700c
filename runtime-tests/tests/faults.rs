//! Fault injection (#14): runvz is SIGKILLed at a random point of `create`,
//! `start`, `run -d`, `exec`, `update`, `pause`, `kill --all`, `delete`, a
//! system container's `create` (ID range, idmapped rootfs, /proc view) and,
//! where CRIU works, `checkpoint`, as the OOM killer or a shutdown would. After
//! every kill:
//! - `state` and `list` agree, and neither lies: a container reported
//!   running, created or paused has a live init; one reported stopped runs
//!   nothing of its own; a container that was running before the kill still
//!   is, or is paused (then really frozen, and `resume` works);
//! - a container that was running still works (`exec` succeeds);
//! - `delete --force` removes everything: state, cgroups in every hierarchy,
//!   mounts, the ID range, the /proc view server, processes;
//! - a bystander container in the same root is untouched.
//!
//! The kill comes after a delay drawn uniformly over twice the operation's
//! measured duration, from a seed printed first (`RUNVZ_FAULT_SEED=N` repeats a run).
//! Each test prints the trials it ran and how many the kill cut short. The
//! emulated cgroup v2 VM (`RUNVZ_TEST_LIGHT=1`) runs a fifth of the trials.
//! A full-size create on a full or read-only state root is here too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use runtime_tests::*;
use serde_json::{Value, json};

/// xorshift64*: enough randomness for delays, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("RUNVZ_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        report(&format!(
            "{test}: seed {seed} (RUNVZ_FAULT_SEED={seed} repeats it)"
        ));
        Rng(seed)
    }

    /// A delay in [0, 2 × `span`]: the operation runs slower among the
    /// parallel tests than when it was measured, and the tail covers its end.
    fn delay(&mut self, span: Duration) -> Duration {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let max = (span.as_micros() as u64 * 2).max(1);
        Duration::from_micros(x.wrapping_mul(0x2545_f491_4f6c_dd1d) % max)
    }
}

/// Trials for one operation: a fifth in the emulated VM.
fn trials(full: usize) -> usize {
    if light_mode() {
        (full / 5).max(4)
    } else {
        full
    }
}

/// Runs the runtime with `args` and SIGKILLs it after `delay` unless it has
/// finished: `None` when the kill cut it short, else how long it took.
fn run_killed(rt: &Runtime, args: &[&str], delay: Duration) -> Option<Duration> {
    let mut child = rt
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the runtime");
    let start = Instant::now();
    let deadline = start + delay;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Some(start.elapsed());
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
    }
    let _ = child.kill();
    use std::os::unix::process::ExitStatusExt;
    match child.wait().expect("wait").signal() {
        Some(libc::SIGKILL) => None,
        _ => Some(start.elapsed()),
    }
}

/// How long `args` takes when left alone (asserted to succeed).
fn measure(rt: &Runtime, args: &[&str]) -> Duration {
    let start = Instant::now();
    rt.cmd(args).ok();
    let span = start.elapsed();
    report(&format!("{}: {span:?} left alone", args[0]));
    span
}

/// The runtime binary, as /proc/PID/exe shows it.
fn runtime_exe() -> std::path::PathBuf {
    std::fs::canonicalize(runtime_bin()).expect("the runtime binary")
}

/// Processes in the cgroup that run the container's own program (anything
/// but a runtime process that has not exec'd yet).
fn programs_in(cg: &str) -> Vec<String> {
    let exe = runtime_exe();
    processes_matching(None, Some(cg))
        .into_iter()
        .filter(|p| {
            let pid = p.split(':').next().unwrap_or("");
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e != exe)
        })
        .collect()
}

/// What `state` says: Ok((status, pid)) or Err(error text).
fn state_of(rt: &Runtime, id: &str) -> Result<(String, i32), String> {
    let out = rt.cmd(&["state", id]);
    if !out.success() {
        return Err(out.stderr.trim().to_string());
    }
    let v = out.json();
    Ok((
        v["status"].as_str().unwrap_or("").to_string(),
        v["pid"].as_i64().unwrap_or(0) as i32,
    ))
}

/// `list`'s entry for `id`, asserting that `list` works.
#[track_caller]
fn listed(rt: &Runtime, id: &str, what: &str) -> Option<Value> {
    let list = rt.cmd(&["list", "--format", "json"]);
    assert!(list.success(), "{what}: list failed: {}", list.stderr);
    list.json()
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == json!(id)).cloned())
}

/// `state` and `list` agree and tell the truth about `id` (see the top).
/// An init that a killed `delete` signalled may die between the two calls:
/// they are asked again (a few times) until nothing changes in between.
#[track_caller]
fn assert_truthful(rt: &Runtime, id: &str, cg: &str, what: &str) {
    let mut listed = listed(rt, id, what);
    let mut state = state_of(rt, id);
    for _ in 0..20 {
        let status = state.as_ref().ok().map(|(s, _)| json!(s));
        if listed.as_ref().map(|e| e["status"].clone()) == status {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        listed = self::listed(rt, id, what);
        state = state_of(rt, id);
    }
    match state {
        Ok((status, pid)) => {
            let listed =
                listed.unwrap_or_else(|| panic!("{what}: state knows {id}, list does not"));
            assert_eq!(
                listed["status"],
                json!(status),
                "{what}: list and state disagree"
            );
            match status.as_str() {
                "created" | "creating" | "running" | "paused" => assert!(
                    pid > 0 && process_alive(pid),
                    "{what}: state says {status} with init {pid}, which is gone"
                ),
                "stopped" => {
                    let running = programs_in(cg);
                    assert!(
                        running.is_empty(),
                        "{what}: state says stopped while the container runs {running:?}"
                    );
                }
                other => panic!("{what}: unknown status {other:?}"),
            }
        }
        Err(err) => {
            assert!(
                err.contains("error"),
                "{what}: state failed without an error line: {err:?}"
            );
            assert!(
                listed.is_none() || err.contains("does not exist"),
                "{what}: list shows {id} but state fails: {err}"
            );
            let running = programs_in(cg);
            assert!(
                running.is_empty(),
                "{what}: state fails ({err}) while the container runs {running:?}"
            );
        }
    }
}

/// After a kill during an operation on a running container: it is still
/// running (or really paused, and resumes) and `exec` works in it.
#[track_caller]
fn assert_still_works(rt: &Runtime, id: &str, init: i32, what: &str) {
    let (status, pid) = state_of(rt, id).unwrap_or_else(|e| panic!("{what}: state failed: {e}"));
    assert_eq!(pid, init, "{what}: the init changed");
    match status.as_str() {
        "running" => {}
        "paused" => {
            rt.cmd(&["resume", id]).ok();
            let (status, _) = state_of(rt, id).expect("state");
            assert_eq!(status, "running", "{what}: resume left it {status}");
        }
        other => panic!("{what}: a running container became {other}"),
    }
    let out = rt.cmd_timeout(&["exec", id, "true"], Duration::from_secs(20));
    assert!(
        out.success(),
        "{what}: exec failed afterwards: {}",
        out.stderr
    );
}

/// Force-deletes `id` and asserts nothing of it is left.
#[track_caller]
fn delete_and_check(rt: &Runtime, id: &str, cg: &str, what: &str) {
    let out = rt.cmd(&["delete", "--force", id]);
    assert!(
        out.success() || out.stderr.contains("does not exist"),
        "{what}: delete --force failed: {}",
        out.stderr
    );
    let mut left = Vec::new();
    if !wait_until(Duration::from_secs(5), || {
        left = leaks(rt, id, cg);
        left.is_empty()
    }) {
        panic!("{what}: delete --force left:\n  {}", left.join("\n  "));
    }
}

/// A running container in the root, checked to be untouched at the end.
struct Bystander {
    id: String,
    state: Value,
}

impl Bystander {
    fn start(c: &mut Ctx) -> Bystander {
        c.bundle.args(&["sleep", "100000"]);
        c.bundle.save();
        c.run_detached();
        Bystander {
            id: c.id.clone(),
            state: c.rt.state(&c.id).expect("the bystander's state"),
        }
    }

    #[track_caller]
    fn assert_untouched(&self, rt: &Runtime) {
        assert_eq!(
            rt.state(&self.id).as_ref(),
            Some(&self.state),
            "the bystander's state changed"
        );
        rt.cmd(&["exec", &self.id, "true"]).ok();
    }
}

/// The trial containers of one test: IDs and cgroups of their own, the
/// bundle's args as given, in the bystander's root.
struct Trials {
    c: Ctx,
    bystander: Bystander,
    rng: Rng,
    ran: usize,
    cut: usize,
}

impl Trials {
    fn new(test: &str, args: &[&str]) -> Trials {
        let mut c = Ctx::new("fb", &["sleep", "100000"]);
        let bystander = Bystander::start(&mut c);
        c.bundle.args(args);
        c.bundle.save();
        Trials {
            c,
            bystander,
            rng: Rng::new(test),
            ran: 0,
            cut: 0,
        }
    }

    /// A fresh ID, its cgroup in the bundle, and a guard.
    fn next(&mut self, prefix: &str) -> (String, String, ContainerGuard) {
        let id = unique_id(prefix);
        let cg = cgroups_path_for(&id);
        self.c.bundle.cgroups_path(&cg);
        self.c.bundle.save();
        let guard = self.c.rt.guard(&id, Some(&cg));
        (id, cg, guard)
    }

    fn bundle(&self) -> &str {
        self.c.bundle.path_str()
    }

    /// Kills `args` after a random delay within twice `span`; counts the
    /// trial. A run that finished first shows how long the operation really
    /// takes, so `span` shrinks to it: a first, measuring run that was slow
    /// (a cold cache) must not put every later kill after the end.
    fn kill(&mut self, args: &[&str], span: &mut Duration) {
        let delay = self.rng.delay(*span);
        let took = run_killed(&self.c.rt, args, delay);
        self.ran += 1;
        match took {
            None => self.cut += 1,
            Some(took) => *span = (*span).min(took),
        }
    }

    /// Whether to run another trial of an operation given `full` trials:
    /// the budget, and past it (up to three times it) until one kill has
    /// landed inside the operation, as a test that cut nothing short
    /// proved nothing.
    fn more(&self, full: usize) -> bool {
        let budget = trials(full);
        self.ran < budget || (self.cut == 0 && self.ran < 3 * budget)
    }

    fn finish(self, test: &str) {
        self.bystander.assert_untouched(&self.c.rt);
        report(&format!(
            "{test}: {} trials, {} cut short by SIGKILL, 0 leftovers, bystander untouched",
            self.ran, self.cut
        ));
        assert!(self.cut > 0, "{test}: no kill landed inside the operation");
    }
}

/// One fresh container per trial: `setup` brings it to where `op` acts,
/// `op` is killed anywhere, and what is left must be truthful (`check` adds
/// the operation's own promise) and removable. The first one, left alone,
/// measures the operation.
fn on_fresh_containers(
    t: &mut Trials,
    test: &str,
    full: usize,
    setup: impl Fn(&Runtime, &str, &str),
    op: impl Fn(&str, &str) -> Vec<String>,
    check: impl Fn(&Runtime, &str, &str),
) {
    let (id, cg, _g) = t.next("fm");
    let bundle = t.bundle().to_string();
    setup(&t.c.rt, &bundle, &id);
    let args = op(&bundle, &id);
    let mut span = measure(
        &t.c.rt,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    delete_and_check(&t.c.rt, &id, &cg, &format!("measuring {test}"));
    while t.more(full) {
        let n = t.ran;
        let (id, cg, _g) = t.next("ft");
        setup(&t.c.rt, &bundle, &id);
        let args = op(&bundle, &id);
        t.kill(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &mut span,
        );
        let what = format!("{test} trial {n}");
        assert_truthful(&t.c.rt, &id, &cg, &what);
        check(&t.c.rt, &id, &what);
        delete_and_check(&t.c.rt, &id, &cg, &what);
    }
}

fn nothing(_: &Runtime, _: &str, _: &str) {}

fn create(rt: &Runtime, bundle: &str, id: &str) {
    rt.cmd(&["create", "--bundle", bundle, id]).ok();
}

fn run_detached(rt: &Runtime, bundle: &str, id: &str) {
    rt.cmd(&["run", "-d", "--bundle", bundle, id]).ok();
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// `create` killed anywhere: what is left is truthful and removable.
#[test]
fn create_killed_anywhere() {
    let mut t = Trials::new("create", &["sleep", "100000"]);
    let op = |bundle: &str, id: &str| args(&["create", "--bundle", bundle, id]);
    on_fresh_containers(&mut t, "create", 120, nothing, op, nothing);
    t.finish("create");
}

/// `start` killed anywhere: created or running, never a lie.
#[test]
fn start_killed_anywhere() {
    let mut t = Trials::new("start", &["sleep", "100000"]);
    let op = |_: &str, id: &str| args(&["start", id]);
    let created_or_running = |rt: &Runtime, id: &str, what: &str| {
        let (status, _) = state_of(rt, id).expect("a created container's state");
        assert!(
            status == "created" || status == "running",
            "{what}: start killed left it {status}"
        );
    };
    on_fresh_containers(&mut t, "start", 60, create, op, created_or_running);
    t.finish("start");
}

/// `run -d` killed anywhere.
#[test]
fn run_detached_killed_anywhere() {
    let mut t = Trials::new("run -d", &["sleep", "100000"]);
    let op = |bundle: &str, id: &str| args(&["run", "-d", "--bundle", bundle, id]);
    on_fresh_containers(&mut t, "run -d", 60, nothing, op, nothing);
    t.finish("run -d");
}

/// Operations on one running container, each killed anywhere: it keeps
/// running (or is really paused) and keeps working.
fn on_a_running_container(test: &str, full: usize, op: impl Fn(&str) -> Vec<String>) {
    let mut t = Trials::new(test, &["sleep", "100000"]);
    let (id, cg, _g) = t.next("fo");
    t.c.rt.cmd(&["run", "-d", "--bundle", t.bundle(), &id]).ok();
    let init = t.c.rt.pid(&id);
    let args = op(&id);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut span = measure(&t.c.rt, &args);
    while t.more(full) {
        let n = t.ran;
        t.kill(&args, &mut span);
        let what = format!("{test} trial {n}");
        assert_truthful(&t.c.rt, &id, &cg, &what);
        assert_still_works(&t.c.rt, &id, init, &what);
    }
    delete_and_check(&t.c.rt, &id, &cg, test);
    t.finish(test);
}

#[test]
fn exec_killed_anywhere() {
    on_a_running_container("exec", 60, |id| {
        ["exec", id, "sh", "-c", "echo x"]
            .map(String::from)
            .to_vec()
    });
}

#[test]
fn update_killed_anywhere() {
    on_a_running_container("update", 50, |id| {
        [
            "update",
            "--memory",
            "300M",
            "--pids-limit",
            "200",
            "--cpu-share",
            "512",
            id,
        ]
        .map(String::from)
        .to_vec()
    });
}

#[test]
fn pause_killed_anywhere() {
    on_a_running_container("pause", 50, |id| ["pause", id].map(String::from).to_vec());
}

#[test]
fn kill_all_killed_anywhere() {
    // SIGCONT: harmless to the container, yet kill --all freezes its cgroup
    // while it signals every process.
    on_a_running_container("kill --all", 50, |id| {
        ["kill", "--all", id, "CONT"].map(String::from).to_vec()
    });
}

/// `delete --force` of a running container killed anywhere: a second one
/// finishes the job.
#[test]
fn delete_killed_anywhere() {
    let mut t = Trials::new("delete", &["sleep", "100000"]);
    let op = |_: &str, id: &str| args(&["delete", "--force", id]);
    on_fresh_containers(&mut t, "delete", 60, run_detached, op, nothing);
    t.finish("delete");
}

/// A busybox-init system container (own ID range, idmapped rootfs, /proc
/// view) whose `create` is killed anywhere.
#[test]
fn system_create_killed_anywhere() {
    if runtime_is_runc() {
        skip("system containers are runvz's");
        return;
    }
    let mut t = Trials::new("system create", &["/sbin/init"]);
    let rootfs = t.c.bundle.rootfs_path();
    link_busybox_init(&rootfs, Some("::respawn:/bin/sleep 1000\n"));
    // The trials need what is being killed: a range, idmapped mounts, a view.
    let (id, cg, _g) = t.next("fym");
    create(&t.c.rt, t.bundle(), &id);
    let ranges = std::fs::read_to_string("/run/runvz/.userns/ranges.json").unwrap_or_default();
    assert!(
        ranges.contains(&format!("/{id}\"")),
        "no ID range for a system container"
    );
    delete_and_check(&t.c.rt, &id, &cg, "system create");
    let op = |bundle: &str, id: &str| args(&["create", "--bundle", bundle, id]);
    on_fresh_containers(&mut t, "system create", 60, nothing, op, nothing);
    t.finish("system create");
}

/// `create` of a container with a disk quota killed anywhere (where a
/// filesystem with project quotas is mounted: the VM): whatever step the kill
/// cut (project ID reserved, tree half tagged, limits set), `delete --force`
/// gives the ID back (`leaks` checks the allocator).
#[test]
fn quota_create_killed_anywhere() {
    if runtime_is_runc() {
        skip("disk quota is runvz's");
        return;
    }
    let Some(dir) = std::env::var("RUNVZ_QUOTA_DIRS")
        .ok()
        .and_then(|d| d.split_whitespace().next().map(std::path::PathBuf::from))
    else {
        skip(
            "no filesystem with project quotas here (RUNVZ_QUOTA_DIRS unset); the cgroup v2 VM runs this",
        );
        return;
    };
    let mut t = Trials::new("quota create", &["sleep", "100000"]);
    let tree = TempDirIn::new(&dir);
    let rootfs = tree.0.join("rootfs");
    let out = run_command(
        Command::new("cp")
            .arg("-a")
            .arg(runtime_tests::rootfs())
            .arg(&rootfs),
        None,
        Duration::from_secs(60),
    );
    assert!(out.success(), "copy the rootfs: {out}");
    t.c.bundle
        .set("/root/path", json!(rootfs))
        .set("/root/readonly", json!(false))
        .annotation("runvz.diskspace", "0:100M");
    t.c.bundle.save();
    // The trials need what is being killed: a project ID and a tagged tree.
    let (id, cg, _g) = t.next("fqm");
    create(&t.c.rt, t.bundle(), &id);
    let projects = std::fs::read_to_string("/run/runvz/.quota/projects.json").unwrap_or_default();
    assert!(
        projects.contains(&format!("/{id}\"")),
        "no project ID for a container with a disk quota"
    );
    delete_and_check(&t.c.rt, &id, &cg, "quota create");
    let op = |bundle: &str, id: &str| args(&["create", "--bundle", bundle, id]);
    on_fresh_containers(&mut t, "quota create", 60, nothing, op, nothing);
    t.finish("quota create");
}

/// A directory under `parent` removed on drop (the quota filesystem is not
/// the temporary directory).
struct TempDirIn(std::path::PathBuf);

impl TempDirIn {
    fn new(parent: &Path) -> TempDirIn {
        let dir = parent.join(unique_id("fq"));
        std::fs::create_dir(&dir).expect("create a directory on the quota filesystem");
        TempDirIn(dir)
    }
}

impl Drop for TempDirIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `checkpoint --leave-running` killed anywhere (where CRIU works): the
/// container is running, or stopped with nothing of it left running.
#[test]
fn checkpoint_killed_anywhere() {
    if let Err(why) = criu_works() {
        skip(&format!("checkpoint faults: {why}"));
        return;
    }
    let mut t = Trials::new("checkpoint", &["sleep", "100000"]);
    let images = TempDir::new("fault-img");
    let (id, cg, _g) = t.next("fkm");
    run_for_criu(&t.c.rt, t.bundle(), &id);
    let img = |n: usize| images.path().join(n.to_string());
    let first = img(1000);
    let first = first.to_str().unwrap();
    let mut span = measure(&t.c.rt, &["checkpoint", "--image-path", first, &id]);
    delete_and_check(&t.c.rt, &id, &cg, "measuring checkpoint");
    while t.more(20) {
        let n = t.ran;
        let (id, cg, _g) = t.next("fk");
        run_for_criu(&t.c.rt, t.bundle(), &id);
        let dir = img(n);
        t.kill(
            &["checkpoint", "--image-path", dir.to_str().unwrap(), &id],
            &mut span,
        );
        // CRIU, left running by its killed parent, finishes or fails alone.
        wait_until(Duration::from_secs(20), || {
            processes_matching(Some(dir.to_str().unwrap()), None).is_empty()
        });
        let what = format!("checkpoint trial {n}");
        assert_truthful(&t.c.rt, &id, &cg, &what);
        delete_and_check(&t.c.rt, &id, &cg, &what);
    }
    t.finish("checkpoint");
}

/// `run -d` with no stdio: CRIU cannot dump a pipe to this test process.
fn run_for_criu(rt: &Runtime, bundle: &str, id: &str) {
    let status = rt
        .command(&["run", "-d", "--bundle", bundle, id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn the runtime");
    assert!(status.success(), "run -d {id} failed: {status}");
}

fn criu_works() -> Result<(), String> {
    match Command::new("criu").arg("check").output() {
        Err(err) => Err(format!("criu cannot be run: {err}")),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`criu check` fails on this kernel: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        )),
    }
}

/// A small tmpfs mounted over a runtime's (empty) state root, unmounted on
/// drop.
struct SmallRoot<'a> {
    path: &'a Path,
}

impl<'a> SmallRoot<'a> {
    fn over(path: &'a Path, size: &str) -> SmallRoot<'a> {
        let out = run_command(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(path),
            None,
            DEFAULT_TIMEOUT,
        );
        assert!(out.success(), "mount tmpfs: {}", out.stderr);
        SmallRoot { path }
    }

    /// Remounts; a read-only remount is retried for a while, since it fails
    /// (EBUSY) while any process holds a file of it open for writing, as a
    /// just started init does until its exec closes runvz's descriptors
    /// (`run -d` returns once the init was told to start, as runc's does).
    fn remount(&self, opts: &str) {
        let mut out = None;
        wait_until(Duration::from_secs(10), || {
            let o = run_command(
                Command::new("mount")
                    .args(["-o", &format!("remount,{opts}")])
                    .arg(self.path),
                None,
                DEFAULT_TIMEOUT,
            );
            let done = o.success();
            out = Some(o);
            done
        });
        let out = out.expect("mount ran");
        assert!(out.success(), "remount {opts}: {}", out.stderr);
    }
}

impl Drop for SmallRoot<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path).status();
    }
}

/// One error line, with the OS's words for what went wrong.
#[track_caller]
fn assert_one_error(out: &Output, words: &str, what: &str) {
    assert!(!out.success(), "{what} succeeded");
    let text = out.stderr.trim();
    assert_eq!(
        text.lines().count(),
        1,
        "{what}: not one error line:\n{text}"
    );
    assert!(
        text.contains("error") && text.contains(words),
        "{what}: {text}"
    );
}

/// `create` on a read-only state root, and on a full one, fails with one
/// error line and leaves nothing; `delete` on a read-only root fails clearly,
/// and the container is still removable once the root is writable again.
#[test]
fn create_on_a_full_or_read_only_state_root() {
    let rt = Runtime::new();
    let root = SmallRoot::over(&rt.root, "256k");
    let mut bundle = Bundle::new();
    bundle.args(&["sleep", "100000"]);
    let next = |bundle: &mut Bundle, prefix: &str| {
        let id = unique_id(prefix);
        let cg = cgroups_path_for(&id);
        bundle.cgroups_path(&cg);
        bundle.save();
        (id, cg)
    };

    // Read-only: nothing can be recorded.
    let (id, cg) = next(&mut bundle, "ro");
    let _g1 = rt.guard(&id, Some(&cg));
    root.remount("ro");
    let out = rt.cmd(&["create", "--bundle", bundle.path_str(), &id]);
    root.remount("rw");
    assert_one_error(&out, "Read-only file system", "create on a read-only root");
    assert_no_leak(&rt, &id, &cg);

    // Full: fill the tmpfs, then create.
    let filler = rt.root.join(".filler");
    let _ = std::fs::write(&filler, vec![0u8; 512 * 1024]);
    let (id, cg) = next(&mut bundle, "full");
    let _g2 = rt.guard(&id, Some(&cg));
    let out = rt.cmd(&["create", "--bundle", bundle.path_str(), &id]);
    assert_one_error(&out, "No space left on device", "create on a full root");
    assert_no_leak(&rt, &id, &cg);
    std::fs::remove_file(&filler).unwrap();

    // Room again: it works; a read-only root then refuses delete clearly.
    let (id, cg) = next(&mut bundle, "rodel");
    let _g3 = rt.guard(&id, Some(&cg));
    rt.cmd(&["run", "-d", "--bundle", bundle.path_str(), &id])
        .ok();
    root.remount("ro");
    let out = rt.cmd(&["delete", "--force", &id]);
    root.remount("rw");
    assert!(
        !out.success() && out.stderr.contains("error"),
        "delete on a read-only root: {out}"
    );
    assert_truthful(&rt, &id, &cg, "after delete on a read-only root");
    delete_and_check(&rt, &id, &cg, "delete once the root is writable");
}
