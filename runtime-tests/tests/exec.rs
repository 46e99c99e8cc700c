//! `exec` into a running container.

use runtime_tests::*;
use std::fs;
use std::time::Duration;

fn running(prefix: &str) -> Ctx {
    let c = Ctx::new(prefix, &["sleep", "100"]);
    c.run_detached();
    c
}

#[test]
fn exec_output_and_exit_code() {
    let c = running("ex");
    let o = c.cmd(&["exec", &c.id, "sh", "-c", "echo out; echo err >&2; exit 5"]);
    o.code_is(5);
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");

    let o = c.cmd(&["exec", &c.id, "true"]);
    o.code_is(0);
    // An exec'd process is not the namespace init: it can kill itself.
    let o = c.cmd(&["exec", &c.id, "sh", "-c", "kill -9 $$"]);
    o.code_is(137);
}

#[test]
fn exec_env_cwd_user() {
    let c = running("ee");
    let o = c.cmd(&["exec", "--env", "FOO=bar", &c.id, "sh", "-c", "echo $FOO"]);
    o.ok();
    assert_eq!(o.stdout, "bar\n");

    let o = c.cmd(&["exec", "--cwd", "/tmp", &c.id, "pwd"]);
    o.ok();
    assert_eq!(o.stdout, "/tmp\n");

    let o = c.cmd(&["exec", "--user", "65534:65534", &c.id, "id"]);
    o.ok();
    assert_eq!(o.stdout.trim(), "uid=65534(nobody) gid=65534(nogroup)");

    // Default user and env come from config.json.
    let o = c.cmd(&["exec", &c.id, "id"]);
    o.ok();
    assert_eq!(o.stdout.trim(), "uid=0(root) gid=0(root)");
    let o = c.cmd(&["exec", &c.id, "sh", "-c", "echo $PATH"]);
    o.ok();
    assert_eq!(
        o.stdout.trim(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
}

#[test]
fn exec_process_json() {
    let c = running("ep");
    let p = c.bundle.path().join("process.json");
    fs::write(
        &p,
        r#"{"terminal":false,"user":{"uid":65534,"gid":65534},
            "args":["sh","-c","echo from-process $FOO; pwd; id -u; exit 4"],
            "env":["PATH=/bin","FOO=xyz"],"cwd":"/etc"}"#,
    )
    .unwrap();
    let o = c.cmd(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    o.code_is(4);
    assert_eq!(o.stdout, "from-process xyz\n/etc\n65534\n");
}

#[test]
fn exec_detach_with_pid_file() {
    let c = running("ed");
    let pf = c.bundle.path().join("exec.pid");
    // `exec --detach` must return at once even though the process runs on.
    c.rt.cmd_timeout(
        &[
            "exec",
            "--detach",
            "--pid-file",
            pf.to_str().unwrap(),
            &c.id,
            "sleep",
            "77",
        ],
        Duration::from_secs(10),
    )
    .ok();
    let pid: i32 = fs::read_to_string(&pf)
        .expect("exec pid file")
        .trim()
        .parse()
        .expect("pid file holds a pid");
    assert!(process_alive(pid), "exec'd pid {pid} not alive");
    // The pid is the user process (it may still be finishing its execve).
    let cmdline = || fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || cmdline() == b"sleep\x0077\x00"),
        "pid {pid} from the pid file runs {:?}, not `sleep 77`",
        String::from_utf8_lossy(&cmdline())
    );
    // Same pid namespace as the init.
    let init = c.pid();
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        fs::read_link(format!("/proc/{init}/ns/pid")).unwrap()
    );
    let ps = c.cmd(&["ps", "--format", "json", &c.id]).json();
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_i64() == Some(pid as i64)),
        "{ps}"
    );
    // Killing the container takes the exec'd process with it.
    c.cmd(&["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(pid)),
        "exec'd process {pid} survived kill --all: {}",
        fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
    );
}
