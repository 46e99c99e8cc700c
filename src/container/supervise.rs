//! Supervision of the containers' helpers, checked by `state` and `exec`
//! (what engines call often): a /proc view server that is gone (killed with
//! its supervisor) is started again, which binds its files into every
//! container again (`procview::supervise`). Never fatal: the caller's command
//! goes on.

use crate::state::Container;

pub fn supervise(container: &Container) {
    if container.meta.as_ref().is_some_and(|m| m.proc_view) && container.live_pid().is_some() {
        crate::procview::supervise();
    }
}
