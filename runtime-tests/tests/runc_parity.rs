//! Exact exit codes and output details of runc 1.1.5 (measured on this
//! machine) that callers may see. The other tests only ask for "non-zero and a
//! message"; these ask for runc's exact values, all at once so a failure lists
//! every difference.

use runtime_tests::*;
use serde_json::Value;
use std::time::Duration;

struct Checks {
    failures: Vec<String>,
}

impl Checks {
    fn code(&mut self, what: &str, o: Output, want: i32) {
        if o.code != want {
            self.failures.push(format!(
                "{what}: exit {} where runc gives {want}\n{o}",
                o.code
            ));
        }
    }

    fn check(&mut self, what: &str, ok: bool, detail: String) {
        if !ok {
            self.failures.push(format!("{what}: {detail}"));
        }
    }

    fn finish(self) {
        if !self.failures.is_empty() {
            panic!(
                "{} difference(s) from runc:\n\n{}",
                self.failures.len(),
                self.failures.join("\n\n")
            );
        }
    }
}

#[test]
fn exit_codes_through_the_lifecycle() {
    let c = Ctx::new("pc", &["sleep", "100"]);
    let id = c.id.as_str();
    let missing = unique_id("pm");
    let b = c.bundle.path_str();
    let mut k = Checks {
        failures: Vec::new(),
    };

    // Usage errors.
    k.code("unknown subcommand", c.cmd(&["frobnicate"]), 3);
    k.code("unknown flag", c.cmd(&["list", "--bogus"]), 1);
    k.code("state without an ID", c.cmd(&["state"]), 1);
    k.code(
        "kill with 3 arguments",
        c.cmd(&["kill", id, "KILL", "x"]),
        1,
    );

    // A missing container.
    k.code("state of a missing ID", c.cmd(&["state", &missing]), 1);
    k.code("delete of a missing ID", c.cmd(&["delete", &missing]), 1);
    k.code(
        "delete --force of a missing ID",
        c.cmd(&["delete", "--force", &missing]),
        0,
    );
    k.code("kill of a missing ID", c.cmd(&["kill", &missing]), 1);
    k.code(
        "exec in a missing ID",
        c.cmd(&["exec", &missing, "true"]),
        255,
    );

    // Created.
    k.code("create", c.cmd(&["create", "--bundle", b, id]), 0);
    k.code(
        "create of an existing ID",
        c.cmd(&["create", "--bundle", b, id]),
        1,
    );
    k.code("start", c.cmd(&["start", id]), 0);
    c.wait_status("running");

    // Running.
    k.code("start of a running container", c.cmd(&["start", id]), 1);
    k.code("delete of a running container", c.cmd(&["delete", id]), 1);
    k.code("resume of a running container", c.cmd(&["resume", id]), 1);
    k.code(
        "kill with an unknown signal",
        c.cmd(&["kill", id, "FOO"]),
        1,
    );
    k.code("kill with signal -9", c.cmd(&["kill", id, "-9"]), 1);
    k.code("kill with signal 0", c.cmd(&["kill", id, "0"]), 0);
    k.code(
        "exec exiting 5",
        c.cmd(&["exec", id, "sh", "-c", "exit 5"]),
        5,
    );
    k.code(
        "exec killed by SIGKILL",
        c.cmd(&["exec", id, "sh", "-c", "kill -9 $$"]),
        137,
    );
    k.code(
        "exec of a missing binary",
        c.cmd(&["exec", id, "/no/such/binary"]),
        255,
    );

    // Paused.
    k.code("pause", c.cmd(&["pause", id]), 0);
    k.code("pause of a paused container", c.cmd(&["pause", id]), 1);
    k.code(
        "exec in a paused container",
        c.cmd(&["exec", id, "true"]),
        255,
    );
    k.code("resume", c.cmd(&["resume", id]), 0);

    // Stopped.
    k.code("kill KILL", c.cmd(&["kill", id, "KILL"]), 0);
    c.wait_status("stopped");
    let st = c.rt.state(id).unwrap_or(Value::Null);
    k.check(
        "state of a stopped container",
        st["pid"] == 0,
        format!("runc reports \"pid\": 0 once stopped, got {st}"),
    );
    k.code(
        "exec in a stopped container",
        c.cmd(&["exec", id, "true"]),
        255,
    );
    k.code("start of a stopped container", c.cmd(&["start", id]), 1);
    k.code("pause of a stopped container", c.cmd(&["pause", id]), 1);
    k.code("resume of a stopped container", c.cmd(&["resume", id]), 1);
    k.code(
        "kill of a stopped container",
        c.cmd(&["kill", id, "KILL"]),
        1,
    );
    k.code(
        "events --stats of a stopped container",
        c.cmd(&["events", "--stats", id]),
        1,
    );
    k.code(
        "update of a stopped container",
        c.cmd(&["update", "--memory", "100M", id]),
        1,
    );
    let ps = c.cmd(&["ps", "--format", "json", id]);
    k.check(
        "ps --format json of a stopped container",
        ps.code == 0 && ps.stdout.trim() == "null",
        format!("runc exits 0 and prints `null`\n{ps}"),
    );
    // The table comes from the host's `ps -ef`.
    match ps_table_usable() {
        Ok(_) => {
            let ps = c.cmd(&["ps", id]);
            k.check(
                "ps of a stopped container",
                ps.code == 0 && ps.stdout.lines().count() == 1 && ps.stdout.contains("PID"),
                format!("runc exits 0 and prints only the header\n{ps}"),
            );
        }
        Err(why) => skip(&format!(
            "the `ps` table check of a stopped container: {why}"
        )),
    }
    k.code("delete of a stopped container", c.cmd(&["delete", id]), 0);

    // Empty root.
    let l = c.cmd(&["list", "--format", "json"]);
    k.check(
        "list --format json with no containers",
        l.code == 0 && l.stdout == "null\n",
        format!("runc prints `null`\n{l}"),
    );
    k.finish();
}

#[test]
fn run_exit_codes() {
    let mut k = Checks {
        failures: Vec::new(),
    };
    let c = Ctx::new("pr", &["/no/such/binary"]);
    k.code(
        "run of a missing binary",
        c.run_fg(None, Duration::from_secs(20)),
        1,
    );
    let mut c = Ctx::new("pr", &["sh", "-c", "exit 200"]);
    k.code(
        "run exiting 200",
        c.run_fg(None, Duration::from_secs(20)),
        200,
    );
    c.bundle.args(&["sh", "-c", "exec sleep 0"]);
    k.code(
        "run exec'ing sleep 0",
        c.run_fg(None, Duration::from_secs(20)),
        0,
    );
    k.finish();
}

#[test]
fn root_directory_mode_is_0700() {
    use std::os::unix::fs::PermissionsExt;
    let c = Ctx::new("pm", &["sh", "-c", "exit 0"]);
    std::fs::remove_dir(&c.rt.root).unwrap();
    c.run_fg(None, DEFAULT_TIMEOUT).ok();
    let mode = std::fs::metadata(&c.rt.root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "runc creates its root 0700, got {mode:o}");
}
