//! Beancounters: OpenVZ's per-container parameters (held, maxheld, barrier, limit,
//! failcnt) and the CPU/I/O knobs, on a stock kernel.
//!
//! `params` is the parameter table, `settings` reads them from `runvz.*`
//! annotations, `spec` maps them onto what the OCI spec can express (cgroup
//! resources, rlimits, mount options) before the container is built, `report`
//! reads held/maxheld/failcnt back from the kernel.

pub mod io;
pub mod live;
pub mod params;
pub mod report;
pub mod settings;
pub mod spec;

pub use settings::Settings;
