//! The steps of making a container, in order. `create` runs them forward
//! (`create::Job::run`); `teardown::destroy` undoes them in reverse
//! (`teardown::undo`), on a failed create, on `delete`, and after a crash.
//!
//! Every undo works from what is recorded (the state root, the state file, the
//! ID range allocator keyed by root and ID) and is a no-op for a step that never
//! ran, so it does not matter where a create stopped: `delete --force` undoes
//! exactly what was done.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The container's directory and state file, status creating (written
    /// before anything else exists).
    Record,
    /// A user-namespace ID range of its own (system containers).
    IdRange,
    /// The disk quota on the rootfs (or the overlay's upper directory): a
    /// project ID recorded, the tree tagged, the limits set; or a btrfs qgroup
    /// limit.
    DiskQuota,
    /// The idmapped rootfs, the sysfs of a joined netns, cloned bind sources,
    /// the machine ID.
    Mounts,
    /// The /proc view server (system containers).
    ProcView,
    /// libcontainer builds the container (or CRIU restores it): processes,
    /// cgroups, state.json.
    Build,
    /// The cgroup handed to the container's root (ID-range containers).
    Delegate,
}

pub const STEPS: [Step; 7] = [
    Step::Record,
    Step::IdRange,
    Step::DiskQuota,
    Step::Mounts,
    Step::ProcView,
    Step::Build,
    Step::Delegate,
];
