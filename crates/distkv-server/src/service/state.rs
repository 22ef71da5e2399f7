//! The service's own state: the settings it reads, failed logins, the
//! request metrics and the type checker.

use std::sync::Arc;
use std::time::Duration;

use crate::config::ServerConfig;
use crate::service::login_failures::LoginFailures;
use crate::service::metrics::Metrics;
use crate::service::watchers::QueueLimits;
use crate::service::working_readers::WorkingReaders;
use crate::validate::type_check::Checker;

/// What serving clients needs besides the tree.
#[derive(Debug)]
pub struct ServiceState {
    /// This server's node name (greeting, `get_state`).
    pub name: String,
    /// Largest accepted client message in bytes.
    pub max_frame: usize,
    /// Bytes of replies queued per connection before the handlers wait.
    pub reply_buffer: usize,
    /// A client that does not take its replies for this long is cut off.
    pub send_timeout: Duration,
    /// Streams one connection may have open at once.
    pub max_streams: usize,
    /// How long a ping-pong connection polls before its task sleeps.
    pub busy_poll: Duration,
    /// How many connections are working through requests, which decides
    /// how long each holds its replies.
    pub working_readers: WorkingReaders,
    /// Entries walked per lock hold in `get_tree` and `watch` dumps.
    pub walk_chunk: usize,
    /// How far watchers may fall behind.
    pub watch_limits: QueueLimits,
    /// The auth methods this server accepts.
    pub auth: distkv_auth::Registry,
    /// Failed logins per user, for the growing delay.
    pub login_failures: LoginFailures,
    /// Request counts and latencies for `/metrics`.
    pub metrics: Metrics,
    /// Runs type checks.
    pub checker: Arc<Checker>,
}

impl ServiceState {
    /// The service's settings from `config`, with no failures counted yet.
    pub fn new(config: &ServerConfig) -> ServiceState {
        ServiceState {
            name: config.name.clone(),
            max_frame: config.max_frame,
            reply_buffer: config.reply_buffer,
            send_timeout: config.send_timeout,
            max_streams: config.max_streams,
            busy_poll: config.busy_poll,
            working_readers: WorkingReaders::default(),
            walk_chunk: config.walk_chunk,
            watch_limits: QueueLimits {
                per_watcher: config.watch_queue,
                total: config.watch_queue_total,
            },
            auth: config.auth.clone(),
            login_failures: LoginFailures::default(),
            metrics: Metrics::default(),
            checker: Arc::default(),
        }
    }
}
