//! `runvz state ID`: the OCI state in runc's shape (plus rootfs, created, owner).

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::state::{Container, Status, Store};

#[derive(Args, Debug)]
pub struct StateArgs {
    /// the container's ID
    pub id: String,
}

/// runc's `containerState`, field for field and in its order.
#[derive(Serialize)]
pub struct StateView {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    pub owner: String,
}

impl StateView {
    pub fn of(container: &Container) -> Self {
        let state = container.state.as_ref();
        let pid = match container.status {
            Status::Stopped => 0,
            _ => container.init_pid().map(|p| p.as_raw()).unwrap_or(0),
        };
        let owner = state
            .and_then(|s| s.creator)
            .and_then(|uid| nix::unistd::User::from_uid(uid.into()).ok().flatten())
            .map(|u| u.name)
            .unwrap_or_default();
        StateView {
            oci_version: state
                .map(|s| s.oci_version.clone())
                .unwrap_or_else(|| super::SPEC_VERSION.to_string()),
            id: container.id.clone(),
            pid,
            status: container.status,
            bundle: container.bundle().display().to_string(),
            rootfs: container
                .meta
                .as_ref()
                .map(|m| m.rootfs.display().to_string())
                .unwrap_or_default(),
            created: state
                .and_then(|s| s.created)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
            annotations: state
                .and_then(|s| s.annotations.clone())
                .filter(|a| !a.is_empty()),
            owner,
        }
    }
}

pub fn run(store: &Store, args: StateArgs) -> Result<()> {
    let container = store.load(&args.id)?;
    crate::container::supervise(&container);
    let mut view = StateView::of(&container);
    // runc's `state` leaves owner empty (only `list` fills it) and ends without a newline.
    view.owner.clear();
    print!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}
