//! `run`: foreground exit status, signals, stdio, detach.

use runtime_tests::*;
use std::time::Duration;

#[test]
fn run_returns_the_exit_status() {
    let c = Ctx::new("rx", &["sh", "-c", "exit 3"]);
    let o = c.run_fg(None, DEFAULT_TIMEOUT);
    o.code_is(3);
    // A foreground run cleans up after itself.
    c.assert_no_leak();
}

#[test]
fn run_returns_128_plus_signal_when_killed() {
    // Killed through the runtime's `kill`.
    let c = Ctx::new("rk", &["sleep", "100"]);
    std::thread::scope(|s| {
        let h = s.spawn(|| c.run_fg(None, DEFAULT_TIMEOUT));
        c.wait_status("running");
        c.cmd(&["kill", &c.id, "KILL"]).ok();
        let o = h.join().unwrap();
        o.code_is(137);
    });
    c.assert_no_leak();

    // Killed from outside, by host pid.
    let c = Ctx::new("rh", &["sleep", "100"]);
    std::thread::scope(|s| {
        let h = s.spawn(|| c.run_fg(None, DEFAULT_TIMEOUT));
        c.wait_status("running");
        let pid = c.pid();
        // SAFETY: kill(2) on the container's init.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let o = h.join().unwrap();
        o.code_is(137);
    });
    c.assert_no_leak();

    // TERM handled by the process: its own exit code comes back.
    let c = Ctx::new("rt", &["sh", "-c", "trap 'exit 7' TERM; sleep 100 & wait"]);
    std::thread::scope(|s| {
        let h = s.spawn(|| c.run_fg(None, DEFAULT_TIMEOUT));
        c.wait_status("running");
        let pid = c.pid();
        assert!(
            wait_until(Duration::from_secs(5), || signal_caught(pid, libc::SIGTERM)),
            "the shell never installed its TERM trap"
        );
        c.cmd(&["kill", &c.id, "TERM"]).ok();
        let o = h.join().unwrap();
        o.code_is(7);
    });
    c.assert_no_leak();
}

#[test]
fn run_init_cannot_kill_itself() {
    // The process is PID 1 of its namespace: the kernel drops signals it sends
    // itself that it has no handler for, even SIGKILL. runc exits 0 here.
    let c = Ctx::new("ri", &["sh", "-c", "kill -9 $$; echo survived"]);
    let o = c.run_fg(None, DEFAULT_TIMEOUT);
    o.code_is(0);
    assert_eq!(o.stdout, "survived\n");
}

#[test]
fn run_of_immediately_exiting_process_never_hangs() {
    let mut c = Ctx::new("rq", &["sh", "-c", "exit 42"]);
    // First prove the bundle really runs (a fake runtime would exit 0).
    c.run_fg(None, Duration::from_secs(10)).code_is(42);
    c.bundle.args(&["true"]);
    for i in 0..30 {
        let o = c.rt.try_cmd(
            &["run", "--bundle", c.bundle.path_str(), &c.id],
            None,
            Duration::from_secs(10),
        );
        if o.timed_out {
            panic!("run #{i} of `true` hung:\n{o}");
        }
        o.code_is(0);
    }
    c.assert_no_leak();
}

#[test]
fn run_passes_stdout_and_stderr() {
    let c = Ctx::new(
        "ro",
        &["sh", "-c", "echo to-out; echo to-err >&2; echo more"],
    );
    let o = c.run_fg(None, DEFAULT_TIMEOUT);
    o.ok();
    assert_eq!(o.stdout, "to-out\nmore\n");
    assert!(o.stderr.contains("to-err\n"), "{o}");
}

#[test]
fn run_passes_stdin() {
    let c = Ctx::new("rs", &["sh", "-c", "cat; echo done"]);
    let o = c.run_fg(Some(b"hello through stdin\nline two\n"), DEFAULT_TIMEOUT);
    o.ok();
    assert_eq!(o.stdout, "hello through stdin\nline two\ndone\n");
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let c = Ctx::new("rd", &["sleep", "100"]);
    let o = c.rt.cmd_timeout(
        &["run", "--detach", "--bundle", c.bundle.path_str(), &c.id],
        Duration::from_secs(10),
    );
    o.ok();
    assert_eq!(c.status().as_deref(), Some("running"));
    assert!(process_alive(c.pid()));
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_no_leak();
}
