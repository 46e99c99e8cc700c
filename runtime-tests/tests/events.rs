//! `events --stats`: runc's stats schema, filled from the v1 or the v2 files.

use runtime_tests::*;

#[test]
fn events_stats_prints_one_stats_object() {
    let c = Ctx::new("ev", &["sleep", "100"]);
    c.run_detached();
    c.cmd(&["exec", "-d", &c.id, "sleep", "100"]).ok();
    let o = c.cmd(&["events", "--stats", &c.id]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one JSON line:\n{o}");
    // Tools match the line's start, in runc's key order.
    let prefix = format!("{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{", c.id);
    assert!(
        lines[0].starts_with(&prefix),
        "not runc's order: {}",
        lines[0]
    );
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], serde_json::Value::from(c.id.as_str()), "{v}");
    let data = &v["data"];
    assert!(data["cpu"].is_object(), "data.cpu: {v}");
    assert!(
        data["cpu"]["usage"]["total"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "data.cpu.usage.total: {v}"
    );
    assert!(data["memory"].is_object(), "data.memory: {v}");
    assert!(
        data["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "data.memory.usage.usage: {v}"
    );
    let pids = data["pids"]["current"].as_u64().expect("data.pids.current");
    assert!(pids >= 2, "two processes run, pids.current = {pids}");
    // The same figure the kernel reports.
    // (v1 pids/<cg>/pids.current, v2 <cg>/pids.current)
    let cur = c.cgroup().pids_current();
    assert_eq!(pids, cur);
}

#[test]
fn events_of_missing_container_fails() {
    let rt = Runtime::new();
    rt.cmd(&["events", "--stats", &unique_id("evm")]).failed();
}
