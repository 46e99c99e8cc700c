//! `runvz events ID`: statistics in runc's schema, once (`--stats`) or every
//! `--interval` until the container stops, and `{"type":"oom","id":…}` each time
//! the OOM killer kills in the container; `data.beancounters` carries the
//! beancounter rows (as `runvz beancounters --format json`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use libcgroups::common::CgroupManager;

use crate::beancounter::report;
use crate::cgroups;
use crate::state::{Status, Store};
use crate::stats::runc_stats;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// set the stats collection interval
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// the container's ID
    pub id: String,
}

/// How often the OOM-kill counter is looked at between two stats lines.
const OOM_POLL: Duration = Duration::from_millis(100);

pub fn run(store: &Store, args: EventsArgs) -> Result<()> {
    let mut oom_kills = None;
    loop {
        let container = store.load(&args.id)?;
        if container.status == Status::Stopped {
            bail!("container with id {} is not running", args.id);
        }
        let path = container
            .cgroup_path()
            .context("container has no cgroup recorded")?;
        let manager = cgroups::manager(&path, container.systemd(), &container.id)?;
        let stats = manager
            .stats()
            .context("cannot read the container's statistics")?;
        let mut data = runc_stats(&stats);
        // runc's schema plus one field: callers decoding runc's ignore it.
        data["beancounters"] = serde_json::to_value(report::collect(&container)?)?;
        // Tools match the start of the line: runc's key order, not alphabetical.
        let event = Event {
            kind: "stats",
            id: &args.id,
            data,
        };
        println!("{}", serde_json::to_string(&event)?);
        if args.stats {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + args.interval;
        while std::time::Instant::now() < deadline {
            let now = oom_kill_count(&path);
            if let (Some(before), Some(now)) = (oom_kills, now)
                && now > before
            {
                let event = Event {
                    kind: "oom",
                    id: &args.id,
                    data: serde_json::Value::Null,
                };
                println!("{}", serde_json::to_string(&event)?);
            }
            oom_kills = now.or(oom_kills);
            std::thread::sleep(OOM_POLL.min(args.interval));
        }
    }
}

/// The kernel's count of OOM kills in the container's cgroup (v2
/// `memory.events`, v1 `memory.oom_control`, both `oom_kill`).
fn oom_kill_count(cgroup_path: &std::path::Path) -> Option<u64> {
    cgroups::read_keyed(cgroup_path, cgroups::File::OomEvents, "oom_kill")
}

/// One line of `events`: `{"type":"stats","id":…,"data":…}`, in that order
/// (an OOM event has no data: `{"type":"oom","id":…}`).
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    data: serde_json::Value,
}

/// Go-style durations as runc takes them: `5s`, `100ms`, `1m`, `1h`, `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ns" => value / 1e9,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration {text:?}: unknown unit {unit:?}")),
    };
    if seconds <= 0.0 {
        return Err(format!("invalid duration {text:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
