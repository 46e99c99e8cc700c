//! The operations on containers, each over the lifecycle record in `state`:
//! create (the ordered pipeline: rootfs, user namespace, idmapped mounts,
//! /proc view, libcontainer's build, cgroup delegation), exec, update,
//! checkpoint, teardown, and the supervision of a running container's helpers.

mod checkpoint;
mod create;
pub mod exec;
mod start;
mod steps;
mod supervise;
mod teardown;
pub mod update;

pub use checkpoint::checkpoint;
pub use create::{CreateOptions, check_config, create_container, write_pid_file};
pub use start::{start, wait_and_remove};
pub use supervise::supervise;
pub use teardown::{destroy, load_for_cleanup};
