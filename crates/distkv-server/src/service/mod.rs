//! Serving clients: connections, request dispatch, the single-reply and
//! streaming actions, logins and sessions, ACL checks, watchers and how
//! entries are shown in replies; the service's own state (`state`: its
//! settings, login failures, request metrics and type checker).

pub(crate) mod access;
pub(crate) mod actions;
pub(crate) mod connection;
pub(crate) mod login;
pub(crate) mod login_failures;
pub(crate) mod metrics;
pub(crate) mod replies;
pub(crate) mod snapshot;
pub(crate) mod state;
pub(crate) mod streams;
pub(crate) mod watchers;
pub(crate) mod working_readers;
