//! runc's command line, row by row: each row is one command line (with
//! placeholders for a container in a given state, a missing ID, the working
//! directory…) and what runc 1.1.5 does with it: its exit status, the key phrase
//! it prints on stderr, the shape of stdout, what it writes to `--log`, and the
//! container's status afterwards. Every row runs under runc and under the
//! runtime under test, each with a fresh `--root`, working directory and
//! container; a row that runc itself does not match is a mistake in the table
//! and is reported as such. All differences are collected and named together
//! at the end, so one run shows every one.
//!
//! The rows are split over four tests by the state they need (none, created or
//! paused, running, stopped), to keep each test within nextest's time limit.
//! Skipped, visibly, where runc is absent or is the runtime under test.

use runtime_tests::*;
use serde_json::{Value, json};
use std::fs;
use std::process::Command;
use std::time::Duration;

/// What exists before the command runs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Setup {
    /// Nothing: an empty root and an empty working directory.
    Nothing,
    /// A `config.json` ("keep me", not JSON) in the working directory.
    ConfigInCwd,
    /// A bundle for `{id}` (`sleep 100`), not created yet.
    Bundle,
    /// `{id}` created (`sleep 100`).
    Created,
    /// `{id}` created, then paused.
    CreatedPaused,
    /// `{id}` running `sleep 100` (PID 1: ignores SIGTERM).
    Running,
    /// `{id}` running a shell that exits on SIGTERM.
    RunningTrapsTerm,
    /// `{id}` running, then paused.
    Paused,
    /// `{id}` has run `true` and stopped.
    Stopped,
}

/// What stderr must show.
#[derive(Clone, Copy)]
enum Stderr {
    Any,
    Empty,
    /// Contains the phrase (placeholders substituted).
    Has(&'static str),
    /// The last line is a JSON object with `"level":"error"` whose `msg`
    /// contains the phrase (`--log-format json` without `--log`).
    JsonError(&'static str),
}

/// What stdout must show (placeholders substituted in every string).
#[derive(Clone, Copy)]
enum Stdout {
    Any,
    Empty,
    /// runc's usage text (`Incorrect Usage…` and the command's help).
    Usage,
    /// Contains every one of these.
    Has(&'static [&'static str]),
    /// Exactly this.
    Exact(&'static str),
    /// Starts with this.
    Prefix(&'static str),
    /// A JSON object with (at least) these keys, and these fields equal to
    /// these JSON texts.
    Object(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
    /// A JSON array of this many elements, each an object with (at least)
    /// these keys (no keys: any element).
    Array(usize, &'static [&'static str]),
    /// One line: a table header with a PID column.
    HeaderOnly,
}

/// What the `--log` file (`{log}`) must hold afterwards.
#[derive(Clone, Copy)]
enum Log {
    Unchecked,
    /// The file exists (it may be empty).
    Exists,
    /// Its last `"level":"error"` JSON line's `msg` contains the phrase.
    Error(&'static str),
}

/// What must be true afterwards.
#[derive(Clone, Copy)]
enum After {
    Unchecked,
    /// `state {id}` reports this status (polled for up to 5 s).
    Status(&'static str),
    /// `{id}` no longer exists.
    Gone,
    /// The working directory's config.json still says "keep me".
    ConfigKept,
    /// The working directory (or the bundle `spec` was given) holds a
    /// config.json that is a spec.
    ConfigWritten,
}

struct Row {
    name: &'static str,
    args: &'static [&'static str],
    setup: Setup,
    /// `--root` names a regular file instead of a directory.
    root_is_file: bool,
    stdin: Option<&'static str>,
    /// The row reads the host's `ps` table.
    needs_ps_table: bool,
    exit: i32,
    err: Stderr,
    out: Stdout,
    log: Log,
    after: After,
}

/// A row expecting exit 0 and checking nothing else yet.
fn row(name: &'static str, args: &'static [&'static str]) -> Row {
    Row {
        name,
        args,
        setup: Setup::Nothing,
        root_is_file: false,
        stdin: None,
        needs_ps_table: false,
        exit: 0,
        err: Stderr::Any,
        out: Stdout::Any,
        log: Log::Unchecked,
        after: After::Unchecked,
    }
}

impl Row {
    fn on(mut self, setup: Setup) -> Row {
        self.setup = setup;
        self
    }
    fn exit(mut self, code: i32) -> Row {
        self.exit = code;
        self
    }
    /// Fails with exit 1 and `phrase` on stderr.
    fn fails(self, phrase: &'static str) -> Row {
        self.exit(1).err(phrase)
    }
    /// runc's usage error: exit 1, `phrase` on stderr, the usage on stdout.
    fn usage(self, phrase: &'static str) -> Row {
        self.fails(phrase).out(Stdout::Usage)
    }
    fn err(mut self, phrase: &'static str) -> Row {
        self.err = Stderr::Has(phrase);
        self
    }
    fn err_is(mut self, err: Stderr) -> Row {
        self.err = err;
        self
    }
    /// Nothing on stdout or stderr.
    fn silent(self) -> Row {
        self.err_is(Stderr::Empty).out(Stdout::Empty)
    }
    fn out(mut self, out: Stdout) -> Row {
        self.out = out;
        self
    }
    fn log(mut self, log: Log) -> Row {
        self.log = log;
        self
    }
    fn after(mut self, after: After) -> Row {
        self.after = after;
        self
    }
    fn status(self, status: &'static str) -> Row {
        self.after(After::Status(status))
    }
    fn root_is_file(mut self) -> Row {
        self.root_is_file = true;
        self
    }
    fn stdin(mut self, input: &'static str) -> Row {
        self.stdin = Some(input);
        self
    }
    fn needs_ps_table(mut self) -> Row {
        self.needs_ps_table = true;
        self
    }
}

const STATE_KEYS: &[&str] = &[
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "owner",
];

/// The table: what runc 1.1.5 does (measured on this machine).
fn rows() -> Vec<Row> {
    use Setup::*;
    vec![
        // --- Global flags, help, version: no container.
        row("--version", &["--version"])
            .err_is(Stderr::Empty)
            .out(Stdout::Has(&[" version ", "\ncommit: ", "\nspec: 1."])),
        row("-v", &["-v"]).out(Stdout::Has(&[" version ", "\nspec: 1."])),
        row("help lists every command", &["help"]).out(Stdout::Has(&[
            "checkpoint",
            "restore",
            "features",
            "events",
            "update",
            "pause",
            "resume",
        ])),
        row("help kill shows --all", &["help", "kill"]).out(Stdout::Has(&["--all"])),
        row("delete --help shows --force", &["delete", "--help"]).out(Stdout::Has(&["--force"])),
        row("unknown command", &["frobnicate"])
            .exit(3)
            .err("No help topic for 'frobnicate'"),
        row("help of an unknown command", &["help", "frobnicate"])
            .exit(3)
            .err("No help topic for 'frobnicate'"),
        row("unknown global flag", &["--bogus", "list"])
            .usage("flag provided but not defined: -bogus"),
        row("--debug before the command", &["--debug", "list", "-q"]).out(Stdout::Empty),
        row(
            "--log and --log-format json before the command (the log is created)",
            &["--log", "{log}", "--log-format", "json", "list", "-q"],
        )
        .silent()
        .log(Log::Exists),
        row(
            "--log --log-format json: an error goes to the log as JSON",
            &[
                "--log",
                "{log}",
                "--log-format",
                "json",
                "state",
                "{missing}",
            ],
        )
        .fails("does not exist")
        .out(Stdout::Empty)
        .log(Log::Error("does not exist")),
        row(
            "--log --log-format json: a usage error goes to the log too",
            &["--log", "{log}", "--log-format", "json", "state"],
        )
        .fails("requires exactly 1 argument")
        .log(Log::Error("requires exactly 1 argument")),
        row(
            "--log-format json without --log: stderr is JSON",
            &["--log-format", "json", "state", "{missing}"],
        )
        .exit(1)
        .err_is(Stderr::JsonError("does not exist"))
        .out(Stdout::Empty),
        row("--log-format bogus", &["--log-format", "bogus", "list"])
            .fails("invalid log-format: bogus")
            .out(Stdout::Empty),
        row("--root is a regular file: list", &["list"])
            .root_is_file()
            .fails("not a directory"),
        row(
            "--root is a regular file: delete --force",
            &["delete", "--force", "{missing}"],
        )
        .root_is_file()
        .fails("not a directory"),
        row(
            "--root given twice (the last wins)",
            &["--root", "{root}", "list", "-q"],
        )
        .silent(),
        row(
            "--systemd-cgroup before the command",
            &["--systemd-cgroup", "list", "-q"],
        )
        .silent(),
        // --- list, features, spec: no container.
        row("list with no containers", &["list"])
            .err_is(Stderr::Empty)
            .out(Stdout::Has(&[
                "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER",
            ])),
        row("list -q with no containers", &["list", "-q"]).silent(),
        row(
            "list --format json with no containers",
            &["list", "--format", "json"],
        )
        .err_is(Stderr::Empty)
        .out(Stdout::Exact("null\n")),
        row("list --format bogus", &["list", "--format", "bogus"])
            .fails("invalid format option")
            .out(Stdout::Empty),
        row("list with an argument", &["list", "x"]).usage("requires exactly 0 argument"),
        row("features", &["features"])
            .err_is(Stderr::Empty)
            .out(Stdout::Object(
                &[
                    "ociVersionMin",
                    "ociVersionMax",
                    "hooks",
                    "mountOptions",
                    "linux",
                    "annotations",
                ],
                &[],
            )),
        row("features with an argument", &["features", "x"]).usage("requires exactly 0 argument"),
        row("spec in an empty directory", &["spec"])
            .silent()
            .after(After::ConfigWritten),
        row("spec where config.json exists", &["spec"])
            .on(ConfigInCwd)
            .fails("File config.json exists. Remove it first")
            .out(Stdout::Empty)
            .after(After::ConfigKept),
        row(
            "spec --bundle /nonexistent",
            &["spec", "--bundle", "/nonexistent"],
        )
        .fails("chdir /nonexistent: no such file or directory"),
        row("spec with an argument", &["spec", "x"]).usage("requires exactly 0 argument"),
        row("spec --bogus", &["spec", "--bogus"]).usage("flag provided but not defined: -bogus"),
        // --- A missing container.
        row("state of a missing ID", &["state", "{missing}"])
            .fails("does not exist")
            .out(Stdout::Empty),
        row("start of a missing ID", &["start", "{missing}"]).fails("does not exist"),
        row("kill of a missing ID", &["kill", "{missing}", "KILL"]).fails("does not exist"),
        row("delete of a missing ID", &["delete", "{missing}"]).fails("does not exist"),
        row(
            "delete --force of a missing ID",
            &["delete", "--force", "{missing}"],
        )
        .silent(),
        row("pause of a missing ID", &["pause", "{missing}"]).fails("does not exist"),
        row("resume of a missing ID", &["resume", "{missing}"]).fails("does not exist"),
        row("exec in a missing ID", &["exec", "{missing}", "true"])
            .exit(255)
            .err("does not exist"),
        row("ps of a missing ID", &["ps", "{missing}"]).fails("does not exist"),
        row(
            "events --stats of a missing ID",
            &["events", "--stats", "{missing}"],
        )
        .fails("does not exist")
        .out(Stdout::Empty),
        row(
            "update of a missing ID",
            &["update", "--pids-limit", "10", "{missing}"],
        )
        .fails("does not exist"),
        row(
            "update --memory bogus of a missing ID (the ID is looked up first)",
            &["update", "--memory", "bogus", "{missing}"],
        )
        .fails("does not exist"),
        row("checkpoint of a missing ID", &["checkpoint", "{missing}"]).fails("does not exist"),
        row(
            "restore without a config.json in the working directory",
            &["restore", "{missing}"],
        )
        .fails("JSON specification file config.json not found"),
        row(
            "create without a config.json in the working directory",
            &["create", "{missing}"],
        )
        .fails("JSON specification file config.json not found"),
        row(
            "create --bundle /nonexistent",
            &["create", "--bundle", "/nonexistent", "{missing}"],
        )
        .fails("no such file or directory"),
        row(
            "run --bundle /nonexistent",
            &["run", "--bundle", "/nonexistent", "{missing}"],
        )
        .fails("no such file or directory"),
        // --- Usage errors.
        row("create without an ID", &["create"]).usage("requires exactly 1 argument"),
        row("run with two IDs", &["run", "a", "b"]).usage("requires exactly 1 argument"),
        row("start without an ID", &["start"]).usage("requires exactly 1 argument"),
        row("state with two IDs", &["state", "a", "b"]).usage("requires exactly 1 argument"),
        row("kill without an ID", &["kill"]).usage("requires a minimum of 1 argument"),
        row("kill with 3 arguments", &["kill", "a", "KILL", "x"])
            .usage("requires a maximum of 2 argument"),
        row("delete without an ID", &["delete"]).usage("requires exactly 1 argument"),
        row("pause without an ID", &["pause"]).usage("requires exactly 1 argument"),
        row("resume with two IDs", &["resume", "a", "b"]).usage("requires exactly 1 argument"),
        row("exec without an ID", &["exec"]).usage("requires a minimum of 1 argument"),
        row("ps without an ID", &["ps"]).usage("requires a minimum of 1 argument"),
        row("events without an ID", &["events"]).usage("requires exactly 1 argument"),
        row("update without an ID", &["update"]).usage("requires exactly 1 argument"),
        row("checkpoint without an ID", &["checkpoint"]).usage("requires exactly 1 argument"),
        row("restore without an ID", &["restore"]).usage("requires exactly 1 argument"),
        row("state --bogus", &["state", "--bogus", "x"])
            .usage("flag provided but not defined: -bogus"),
        row("kill --bogus", &["kill", "--bogus", "x"])
            .usage("flag provided but not defined: -bogus"),
        row("exec --bogus", &["exec", "--bogus", "x", "true"])
            .usage("flag provided but not defined: -bogus"),
        row(
            "update --cpu-shares (runc's is --cpu-share)",
            &["update", "--cpu-shares", "2", "x"],
        )
        .usage("flag provided but not defined: -cpu-shares"),
        // --- A bundle, not created yet.
        row("create", &["create", "--bundle", "{bundle}", "{id}"])
            .on(Bundle)
            .silent()
            .status("created"),
        row(
            "run --detach",
            &["run", "--detach", "--bundle", "{bundle}", "{id}"],
        )
        .on(Bundle)
        .silent()
        .status("running"),
        // --- A created container.
        row(
            "create of an existing ID",
            &["create", "--bundle", "{bundle}", "{id}"],
        )
        .on(Created)
        .fails("already exists")
        .status("created"),
        row("state of a created container", &["state", "{id}"])
            .on(Created)
            .out(Stdout::Object(STATE_KEYS, &[("status", "\"created\"")])),
        row("start of a created container", &["start", "{id}"])
            .on(Created)
            .silent()
            .status("running"),
        row("pause of a created container", &["pause", "{id}"])
            .on(Created)
            .silent()
            .status("paused"),
        row(
            "resume of a created container that was paused",
            &["resume", "{id}"],
        )
        .on(CreatedPaused)
        .silent()
        .status("created"),
        row("kill (SIGTERM) of a created container", &["kill", "{id}"])
            .on(Created)
            .silent()
            .status("stopped"),
        row("delete of a created container", &["delete", "{id}"])
            .on(Created)
            .silent()
            .after(After::Gone),
        row("checkpoint of a created container", &["checkpoint", "{id}"])
            .on(Created)
            .fails("cannot be checkpointed in created state"),
        // --- A running container.
        row("list -q with a running container", &["list", "-q"])
            .on(Running)
            .out(Stdout::Exact("{id}\n")),
        row(
            "list --format json with a running container",
            &["list", "--format", "json"],
        )
        .on(Running)
        .out(Stdout::Array(1, STATE_KEYS)),
        row("state of a running container", &["state", "{id}"])
            .on(Running)
            .err_is(Stderr::Empty)
            .out(Stdout::Object(
                STATE_KEYS,
                &[("status", "\"running\""), ("id", "\"{id}\"")],
            )),
        row("start of a running container", &["start", "{id}"])
            .on(Running)
            .fails("cannot start an already running container"),
        row("resume of a running container", &["resume", "{id}"])
            .on(Running)
            .fails("container not paused")
            .status("running"),
        row("pause of a running container", &["pause", "{id}"])
            .on(Running)
            .silent()
            .status("paused"),
        row(
            "delete of a running container without --force",
            &["delete", "{id}"],
        )
        .on(Running)
        .fails("that is not stopped")
        .status("running"),
        row(
            "delete --force of a running container",
            &["delete", "--force", "{id}"],
        )
        .on(Running)
        .silent()
        .after(After::Gone),
        row("kill KILL", &["kill", "{id}", "KILL"])
            .on(Running)
            .silent()
            .status("stopped"),
        row("kill SIGKILL", &["kill", "{id}", "SIGKILL"])
            .on(Running)
            .silent()
            .status("stopped"),
        row("kill 9", &["kill", "{id}", "9"])
            .on(Running)
            .silent()
            .status("stopped"),
        row("kill sigkill (lower case)", &["kill", "{id}", "sigkill"])
            .on(Running)
            .silent()
            .status("stopped"),
        row("kill without a signal sends SIGTERM", &["kill", "{id}"])
            .on(RunningTrapsTerm)
            .silent()
            .status("stopped"),
        row(
            "kill with an empty signal sends SIGTERM",
            &["kill", "{id}", ""],
        )
        .on(RunningTrapsTerm)
        .silent()
        .status("stopped"),
        row("kill SIGUSR1", &["kill", "{id}", "SIGUSR1"])
            .on(Running)
            .silent()
            .status("running"),
        row("kill 0", &["kill", "{id}", "0"])
            .on(Running)
            .silent()
            .status("running"),
        row("kill --all 0", &["kill", "--all", "{id}", "0"])
            .on(Running)
            .silent(),
        row(
            "kill with an unknown signal name",
            &["kill", "{id}", "BOGUS"],
        )
        .on(Running)
        .fails("unknown signal")
        .status("running"),
        row(
            "kill with an unknown SIG name",
            &["kill", "{id}", "SIGBOGUS"],
        )
        .on(Running)
        .fails("unknown signal")
        .status("running"),
        row("kill with signal number 99", &["kill", "{id}", "99"])
            .on(Running)
            .fails("invalid argument")
            .status("running"),
        row("kill with signal -9", &["kill", "{id}", "-9"])
            .on(Running)
            .fails("invalid argument")
            .status("running"),
        row("exec without a command", &["exec", "{id}"])
            .on(Running)
            .exit(255)
            .err("args cannot be empty"),
        row("exec true", &["exec", "{id}", "true"])
            .on(Running)
            .silent(),
        row("ps --format json", &["ps", "--format", "json", "{id}"])
            .on(Running)
            .out(Stdout::Array(1, &[])),
        row("ps (table)", &["ps", "{id}"])
            .on(Running)
            .needs_ps_table()
            .out(Stdout::Has(&["PID", "sleep 100"])),
        row("ps --format bogus", &["ps", "--format", "bogus", "{id}"])
            .on(Running)
            .fails("invalid format option"),
        row("events --stats", &["events", "--stats", "{id}"])
            .on(Running)
            .out(Stdout::Prefix(r#"{"type":"stats","id":"{id}","data":{"#)),
        row(
            "events --interval bogus",
            &["events", "--interval", "bogus", "{id}"],
        )
        .on(Running)
        .usage("for flag -interval"),
        row(
            "update --memory bogus",
            &["update", "--memory", "bogus", "{id}"],
        )
        .on(Running)
        .fails("invalid value for memory"),
        row(
            "update --pids-limit",
            &["update", "--pids-limit", "50", "{id}"],
        )
        .on(Running)
        .silent(),
        row(
            "update --resources - (JSON on stdin)",
            &["update", "--resources", "-", "{id}"],
        )
        .on(Running)
        .stdin(r#"{"pids":{"limit":30}}"#)
        .silent(),
        // --- A paused container.
        row("pause of a paused container", &["pause", "{id}"])
            .on(Paused)
            .fails("container not running")
            .status("paused"),
        row("resume of a paused container", &["resume", "{id}"])
            .on(Paused)
            .silent()
            .status("running"),
        row("exec in a paused container", &["exec", "{id}", "true"])
            .on(Paused)
            .exit(255)
            .err("cannot exec in a paused container"),
        row("kill KILL of a paused container", &["kill", "{id}", "KILL"])
            .on(Paused)
            .silent()
            .status("stopped"),
        // --- A stopped container.
        row("state of a stopped container", &["state", "{id}"])
            .on(Stopped)
            .out(Stdout::Object(
                STATE_KEYS,
                &[("status", "\"stopped\""), ("pid", "0")],
            )),
        row("start of a stopped container", &["start", "{id}"])
            .on(Stopped)
            .fails("cannot start a container that has stopped"),
        row("kill of a stopped container", &["kill", "{id}", "KILL"])
            .on(Stopped)
            .fails("container not running"),
        row(
            "kill --all of a stopped container",
            &["kill", "--all", "{id}", "KILL"],
        )
        .on(Stopped)
        .silent(),
        row("pause of a stopped container", &["pause", "{id}"])
            .on(Stopped)
            .fails("container not running"),
        row("exec in a stopped container", &["exec", "{id}", "true"])
            .on(Stopped)
            .exit(255)
            .err("cannot exec in a stopped container"),
        row(
            "ps --format json of a stopped container",
            &["ps", "--format", "json", "{id}"],
        )
        .on(Stopped)
        .out(Stdout::Exact("null\n")),
        row("ps of a stopped container", &["ps", "{id}"])
            .on(Stopped)
            .needs_ps_table()
            .out(Stdout::HeaderOnly),
        row(
            "events --stats of a stopped container",
            &["events", "--stats", "{id}"],
        )
        .on(Stopped)
        .fails("is not running"),
        row(
            "update of a stopped container",
            &["update", "--memory", "100M", "{id}"],
        )
        .on(Stopped)
        .fails("container not running"),
        row("checkpoint of a stopped container", &["checkpoint", "{id}"])
            .on(Stopped)
            .fails("cannot be checkpointed in stopped state"),
        row("delete of a stopped container", &["delete", "{id}"])
            .on(Stopped)
            .silent()
            .after(After::Gone),
    ]
}

/// Which test runs a row.
#[derive(Clone, Copy, PartialEq)]
enum Group {
    NoContainer,
    CreatedOrPaused,
    Running,
    Stopped,
}

fn group_of(setup: Setup) -> Group {
    match setup {
        Setup::Nothing | Setup::ConfigInCwd | Setup::Bundle => Group::NoContainer,
        Setup::Created | Setup::CreatedPaused | Setup::Paused => Group::CreatedOrPaused,
        Setup::Running | Setup::RunningTrapsTerm => Group::Running,
        Setup::Stopped => Group::Stopped,
    }
}

// ---------------------------------------------------------------------------
// Running one row under one runtime
// ---------------------------------------------------------------------------

/// One row's world under one runtime. Field order is drop order: the guard
/// deletes the container before its bundle, working directory and root go.
struct World {
    guard: Option<ContainerGuard>,
    id: String,
    missing: String,
    bundle: TempDir,
    dir: TempDir,
    rt: Runtime,
}

impl World {
    fn new(bin: &std::path::Path, rootfs: &std::path::Path, setup: Setup) -> Result<World, String> {
        let rt = Runtime::with_bin(bin);
        let id = unique_id("cli");
        let cg = cgroups_path_for(&id);
        let mut w = World {
            guard: None,
            id,
            missing: unique_id("gone"),
            bundle: TempDir::new("clib"),
            dir: TempDir::new("cliw"),
            rt,
        };
        let args: &[&str] = match setup {
            Setup::Stopped => &["true"],
            Setup::RunningTrapsTerm => &["sh", "-c", "trap 'exit 0' TERM; sleep 100 & wait"],
            _ => &["sleep", "100"],
        };
        // The shared rootfs is read-only in the container: one copy serves
        // every row.
        let mut config = default_spec();
        set_pointer(&mut config, "/process/terminal", json!(false));
        set_pointer(&mut config, "/process/args", json!(args));
        set_pointer(&mut config, "/root/path", json!(rootfs.to_str().unwrap()));
        set_pointer(&mut config, "/linux/cgroupsPath", json!(cg));
        fs::write(
            w.bundle.path().join("config.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .map_err(|e| format!("write config.json: {e}"))?;
        if setup == Setup::ConfigInCwd {
            fs::write(w.dir.path().join("config.json"), "keep me")
                .map_err(|e| format!("write config.json: {e}"))?;
        }
        if matches!(setup, Setup::Nothing | Setup::ConfigInCwd) {
            return Ok(w);
        }
        w.guard = Some(w.rt.guard(&w.id, Some(&cg)));
        if setup == Setup::Bundle {
            return Ok(w);
        }
        let id = w.id.clone();
        w.step(&["create", "--bundle", w.bundle_str(), &id])?;
        match setup {
            Setup::CreatedPaused => {
                w.step(&["pause", &id])?;
            }
            Setup::Running | Setup::RunningTrapsTerm | Setup::Paused | Setup::Stopped => {
                w.step(&["start", &id])?;
                let want = if setup == Setup::Stopped {
                    "stopped"
                } else {
                    "running"
                };
                if !wait_until(Duration::from_secs(10), || {
                    w.rt.status(&id).as_deref() == Some(want)
                }) {
                    return Err(format!("setup: {id} never became {want}"));
                }
                if setup == Setup::RunningTrapsTerm {
                    let pid = w.rt.pid(&id);
                    if !wait_until(Duration::from_secs(10), || {
                        signal_caught(pid, libc::SIGTERM)
                    }) {
                        return Err("setup: the shell never trapped SIGTERM".into());
                    }
                }
                if setup == Setup::Paused {
                    w.step(&["pause", &id])?;
                }
            }
            _ => {}
        }
        Ok(w)
    }

    fn bundle_str(&self) -> &str {
        self.bundle.path().to_str().unwrap()
    }

    fn step(&self, args: &[&str]) -> Result<(), String> {
        let out = self.rt.cmd(args);
        if out.success() {
            Ok(())
        } else {
            Err(format!(
                "setup `{}` failed: exit {}, stderr {:?}",
                args[0],
                out.code,
                out.stderr.trim()
            ))
        }
    }

    fn log_path(&self) -> String {
        self.dir
            .path()
            .join("log.json")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// A string with the placeholders filled in.
    fn fill(&self, s: &str) -> String {
        s.replace("{id}", &self.id)
            .replace("{missing}", &self.missing)
            .replace("{bundle}", self.bundle_str())
            .replace("{root}", self.rt.root_str())
            .replace("{log}", &self.log_path())
    }

    fn run(&self, row: &Row) -> Output {
        let mut c = Command::new(&self.rt.bin);
        if row.root_is_file {
            let file = self.dir.path().join("a-file");
            fs::write(&file, "").unwrap();
            c.arg("--root").arg(file);
        } else {
            c.arg("--root").arg(&self.rt.root);
        }
        for a in row.args {
            c.arg(self.fill(a));
        }
        c.current_dir(self.dir.path());
        run_command(
            &mut c,
            row.stdin.map(str::as_bytes),
            Duration::from_secs(20),
        )
    }

    /// Where `row`'s expectations are not met by `out`: one line each.
    fn check(&self, row: &Row, out: &Output) -> Vec<String> {
        let mut bad = Vec::new();
        if out.timed_out {
            bad.push("timed out".to_string());
        } else if out.code != row.exit {
            bad.push(format!("exit {} where runc exits {}", out.code, row.exit));
        }
        match row.err {
            Stderr::Any => {}
            Stderr::Empty => {
                if !out.stderr.trim().is_empty() {
                    bad.push("stderr is not empty".into());
                }
            }
            Stderr::Has(p) => {
                let p = self.fill(p);
                if !out.stderr.contains(&p) {
                    bad.push(format!("stderr lacks {p:?}"));
                }
            }
            Stderr::JsonError(p) => {
                let last = out.stderr.trim().lines().last().unwrap_or("");
                let v: Value = serde_json::from_str(last).unwrap_or(Value::Null);
                if v["level"] != "error" || !v["msg"].as_str().is_some_and(|m| m.contains(p)) {
                    bad.push(format!(
                        "stderr's last line is not a JSON level=error line with {p:?}"
                    ));
                }
            }
        }
        if let Some(why) = self.check_stdout(row.out, &out.stdout) {
            bad.push(why);
        }
        match row.log {
            Log::Unchecked => {}
            Log::Exists => {
                if fs::metadata(self.log_path()).is_err() {
                    bad.push("the --log file was not created".into());
                }
            }
            Log::Error(p) => {
                let text = fs::read_to_string(self.log_path()).unwrap_or_default();
                let last = text
                    .lines()
                    .rev()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|v| v["level"] == "error");
                if !last.is_some_and(|v| v["msg"].as_str().is_some_and(|m| m.contains(p))) {
                    bad.push(format!(
                        "the --log file has no level=error JSON line with {p:?} (it holds {text:?})"
                    ));
                }
            }
        }
        match row.after {
            After::Unchecked => {}
            After::Status(want) => {
                let mut last = None;
                wait_until(Duration::from_secs(5), || {
                    last = self.rt.status(&self.id);
                    last.as_deref() == Some(want)
                });
                if last.as_deref() != Some(want) {
                    bad.push(format!(
                        "status afterwards {} where runc's is {want}",
                        last.as_deref().unwrap_or("(gone)")
                    ));
                }
            }
            After::Gone => {
                if let Some(s) = self.rt.status(&self.id) {
                    bad.push(format!("the container is still there ({s})"));
                }
            }
            After::ConfigKept => {
                let text =
                    fs::read_to_string(self.dir.path().join("config.json")).unwrap_or_default();
                if text != "keep me" {
                    bad.push(format!("config.json was changed to {text:?}"));
                }
            }
            After::ConfigWritten => {
                let text =
                    fs::read_to_string(self.dir.path().join("config.json")).unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !v["ociVersion"].is_string() {
                    bad.push("no spec written to config.json".into());
                }
            }
        }
        bad
    }

    fn check_stdout(&self, want: Stdout, stdout: &str) -> Option<String> {
        let json = || serde_json::from_str::<Value>(stdout.trim()).unwrap_or(Value::Null);
        let has_keys = |v: &Value, keys: &[&str]| {
            keys.iter()
                .filter(|k| v.get(**k).is_none())
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        };
        match want {
            Stdout::Any => None,
            Stdout::Empty => (!stdout.is_empty()).then(|| "stdout is not empty".into()),
            Stdout::Usage => (!stdout.contains("Incorrect Usage"))
                .then(|| "stdout lacks runc's \"Incorrect Usage\" text".into()),
            Stdout::Has(all) => {
                let missing: Vec<String> = all
                    .iter()
                    .map(|p| self.fill(p))
                    .filter(|p| !stdout.contains(p.as_str()))
                    .collect();
                (!missing.is_empty()).then(|| format!("stdout lacks {missing:?}"))
            }
            Stdout::Exact(s) => {
                let s = self.fill(s);
                (stdout != s).then(|| format!("stdout is not exactly {s:?}"))
            }
            Stdout::Prefix(s) => {
                let s = self.fill(s);
                (!stdout.starts_with(&s)).then(|| format!("stdout does not start with {s:?}"))
            }
            Stdout::Object(keys, fields) => {
                let v = json();
                if !v.is_object() {
                    return Some("stdout is not a JSON object".into());
                }
                let mut why = Vec::new();
                let missing = has_keys(&v, keys);
                if !missing.is_empty() {
                    why.push(format!("lacks keys {missing:?}"));
                }
                for (k, text) in fields {
                    let text = self.fill(text);
                    if v[*k] != serde_json::from_str::<Value>(&text).unwrap_or(Value::Null) {
                        why.push(format!("{k} is {} where runc's is {text}", v[*k]));
                    }
                }
                (!why.is_empty()).then(|| format!("stdout JSON {}", why.join(", ")))
            }
            Stdout::Array(len, keys) => {
                let v = json();
                let Some(a) = v.as_array() else {
                    return Some("stdout is not a JSON array".into());
                };
                if a.len() != len {
                    return Some(format!(
                        "stdout JSON array has {} elements, not {len}",
                        a.len()
                    ));
                }
                let missing: Vec<String> = a.iter().flat_map(|e| has_keys(e, keys)).collect();
                (!missing.is_empty()).then(|| format!("stdout JSON elements lack {missing:?}"))
            }
            Stdout::HeaderOnly => {
                let lines: Vec<&str> = stdout.lines().collect();
                (lines.len() != 1 || !lines[0].split_whitespace().any(|w| w == "PID"))
                    .then(|| "stdout is not just a header with a PID column".into())
            }
        }
    }
}

/// Run every row of `group` under runc and the runtime under test; fail once,
/// naming every row where either differs from the table.
fn compare(group: Group) {
    if let Some(why) = runc_unavailable_reason() {
        skip(&format!("runc command-line comparison: {why}"));
        return;
    }
    if runtime_is_runc() {
        skip("runc command-line comparison: the runtime under test is runc itself");
        return;
    }
    let shared = Bundle::new();
    let rootfs = fs::canonicalize(shared.rootfs_path()).unwrap();
    let ps_table = ps_table_usable();
    let mut compared = 0;
    let mut ours_differ = Vec::new();
    let mut table_wrong = Vec::new();
    for row in rows().into_iter().filter(|r| group_of(r.setup) == group) {
        if row.needs_ps_table
            && let Err(why) = &ps_table
        {
            skip(&format!("row {:?}: {why}", row.name));
            continue;
        }
        compared += 1;
        for (who, bin) in [("runc", runc_bin()), ("runvz", runtime_bin())] {
            let problems = match World::new(&bin, &rootfs, row.setup) {
                Err(e) => (vec![e], None),
                Ok(w) => {
                    let out = w.run(&row);
                    let bad = w.check(&row, &out);
                    // Resume before the guard's `delete --force`, as a
                    // caller would.
                    if w.guard.is_some() {
                        let _ = w.rt.cmd(&["resume", &w.id]);
                    }
                    (bad, Some(out))
                }
            };
            if problems.0.is_empty() {
                continue;
            }
            let detail = format!(
                "[{}] {}: {}\n{}",
                who,
                row.name,
                problems.0.join("; "),
                problems.1.map(|o| o.to_string()).unwrap_or_default()
            );
            report(&detail);
            if who == "runc" {
                table_wrong.push(row.name);
            } else {
                ours_differ.push(format!("{}: {}", row.name, problems.0.join("; ")));
            }
        }
    }
    report(&format!(
        "runc_cli: compared {compared} command lines with runc; the runtime under test differs on {}, runc on {}",
        ours_differ.len(),
        table_wrong.len()
    ));
    assert!(
        ours_differ.is_empty() && table_wrong.is_empty(),
        "{} row(s) where the runtime under test differs from runc:\n  {}\n{} row(s) runc itself does not match (the table is wrong there): {:?}",
        ours_differ.len(),
        ours_differ.join("\n  "),
        table_wrong.len(),
        table_wrong
    );
}

#[test]
fn command_line_without_a_container() {
    compare(Group::NoContainer);
}

#[test]
fn command_line_on_a_created_or_paused_container() {
    compare(Group::CreatedOrPaused);
}

#[test]
fn command_line_on_a_running_container() {
    compare(Group::Running);
}

#[test]
fn command_line_on_a_stopped_container() {
    compare(Group::Stopped);
}
