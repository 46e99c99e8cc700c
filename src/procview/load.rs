//! Each container's load average, as the kernel computes the host's and LXCFS
//! a container's: every 5 s the number of its threads that are runnable or in
//! uninterruptible sleep, folded into 1, 5 and 15-minute exponential averages.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Entry, HOME};
use crate::cgroups;

/// How often the load is sampled (the kernel's LOAD_FREQ).
pub const LOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Every container's load, by its key in the table of containers.
pub type Loads = HashMap<String, Load>;

/// Where the supervisor, which samples, leaves the loads for the worker,
/// which serves them (a worker started again keeps the averages).
pub fn loads_path() -> PathBuf {
    Path::new(HOME).join("loads.json")
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Load {
    averages: [f64; 3],
    /// At the last sample: runnable threads, threads in uninterruptible
    /// sleep, and all threads.
    pub running: usize,
    pub blocked: usize,
    pub threads: usize,
    /// The highest PID in the container's own PID namespace.
    last_pid: i32,
}

impl Load {
    fn fold(&mut self, sample: &Sample) {
        for (average, minutes) in self.averages.iter_mut().zip([1.0, 5.0, 15.0]) {
            let decay = (-LOAD_INTERVAL.as_secs_f64() / (60.0 * minutes)).exp();
            *average = *average * decay + (sample.running + sample.blocked) as f64 * (1.0 - decay);
        }
        self.running = sample.running;
        self.blocked = sample.blocked;
        self.threads = sample.threads;
        self.last_pid = sample.last_pid;
    }

    /// The 1, 5 and 15-minute averages.
    pub fn averages(&self) -> [f64; 3] {
        self.averages
    }

    /// As /proc/loadavg.
    pub fn render(&self) -> String {
        let [one, five, fifteen] = self.averages;
        format!(
            "{one:.2} {five:.2} {fifteen:.2} {}/{} {}\n",
            self.running, self.threads, self.last_pid
        )
    }
}

/// A container not sampled yet (its first 5 s): no averages, its threads
/// as they are now.
pub fn unsampled(cgroup: &Path) -> Load {
    let mut load = Load::default();
    let now = sample(cgroup);
    (load.running, load.blocked, load.threads, load.last_pid) =
        (now.running, now.blocked, now.threads, now.last_pid);
    load
}

/// One look at a container's threads.
#[derive(Debug, Default)]
struct Sample {
    running: usize,
    blocked: usize,
    threads: usize,
    last_pid: i32,
}

fn sample(cgroup: &Path) -> Sample {
    let mut sample = Sample::default();
    for pid in cgroups::procs(cgroup) {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        // NSpid's last field is the PID in the container's own namespace.
        if let Some(own) = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last()?.parse().ok())
        {
            sample.last_pid = sample.last_pid.max(own);
        }
        let tasks = fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            sample.threads += 1;
            match state {
                Some('R') => sample.running += 1,
                Some('D') => sample.blocked += 1,
                _ => {}
            }
        }
    }
    sample
}

/// Samples every container served into `loads` (a container no longer
/// served is forgotten) and leaves them at [`loads_path`].
pub fn sample_all(table: &BTreeMap<String, Entry>, loads: &mut Loads) -> Result<()> {
    loads.retain(|key, _| table.contains_key(key));
    for (key, entry) in table {
        let Some(cgroup) = entry.load().as_ref().and_then(super::render::cgroup_of) else {
            continue;
        };
        let sample = sample(&cgroup);
        // A container still being made has no threads yet: its averages
        // start with its first.
        if sample.threads > 0 {
            loads.entry(key.clone()).or_default().fold(&sample);
        }
    }
    crate::files::write_atomic(&loads_path(), &serde_json::to_vec(loads)?)
}

#[cfg(test)]
mod tests {
    use super::{Load, Sample};

    #[test]
    fn load_follows_the_kernels_averages() {
        let mut load = Load::default();
        let busy = Sample {
            running: 2,
            blocked: 0,
            threads: 5,
            last_pid: 40,
        };
        // One minute of two busy threads: the 1-minute average reaches
        // 2 × (1 − 1/e), the longer ones less.
        for _ in 0..12 {
            load.fold(&busy);
        }
        let [one, five, fifteen] = load.averages;
        assert!((one - 2.0 * (1.0 - (-1.0f64).exp())).abs() < 0.01, "{one}");
        assert!(five < one && fifteen < five, "{:?}", load.averages);
        assert_eq!(
            load.render(),
            format!("1.26 {five:.2} {fifteen:.2} 2/5 40\n")
        );
    }
}
