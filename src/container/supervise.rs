//! Supervision of a running container's helpers, checked by `state` and
//! `exec` (what engines call often): a system container's /proc view server
//! that died is started again, or its files fall back to the kernel's
//! (`procview::ensure_served`). Never fatal: the caller's command goes on.

use crate::state::{Container, Store};

pub fn supervise(store: &Store, container: &Container) {
    if !container.meta.as_ref().is_some_and(|m| m.system) {
        return;
    }
    let Some(init) = container.init_handle() else {
        return;
    };
    let dir = crate::idmap::dir(&crate::userns::key(store.root(), &container.id));
    if let Err(err) = crate::procview::ensure_served(store.root(), &container.id, &dir, &init) {
        tracing::warn!("container {}: {err:#}", container.id);
    }
}
