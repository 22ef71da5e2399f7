//! The `server:` section of a configuration file, typed: what each
//! setting means and which values it takes, checked and clamped here so
//! that every front end (the `distkv` command line, an embedding
//! application reading its own file) configures a server the same way.
//!
//! Settings deserialize with serde from any self-describing format (the
//! command line hands over its YAML layers); [`ServerSettings::apply`]
//! writes them into a [`ServerConfig`]. A setting left out keeps the
//! config's value.
//!
//! ```
//! use distkv_server::ServerConfig;
//! use distkv_server::config::ServerSettings;
//!
//! let settings: ServerSettings = serde_json::from_str(
//!     r#"{"root": ":test", "log_sync": "always", "ping": {"cycle": 0.5}, "max_streams": 0}"#,
//! )
//! .expect("valid settings");
//! let mut config = ServerConfig::new("one");
//! settings.apply(&mut config).expect("in range");
//! assert_eq!(config.root, ":test");
//! assert_eq!(config.ping_cycle.as_millis(), 500);
//! assert_eq!(config.max_streams, 1); // clamped: at least one stream
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::ServerConfig;
use crate::storage::data_dir::DataDir;
use crate::storage::group_commit::SyncPolicy;

/// Why settings cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server.{key}: {why}")]
pub struct SettingsError {
    /// The setting, below `server.`.
    pub key: &'static str,
    /// What is wrong with it.
    pub why: String,
}

fn bad(key: &'static str, why: impl Into<String>) -> SettingsError {
    SettingsError {
        key,
        why: why.into(),
    }
}

/// A number of seconds, or a word.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SecondsOr {
    /// A number of seconds.
    Seconds(f64),
    /// A word (`always`, `never`, `daily`, …).
    Word(String),
    /// `true` or `false`.
    Flag(bool),
}

/// `server.change`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChangeSettings {
    /// Chain links kept and sent (1–16).
    pub length: Option<u64>,
}

/// `server.ping`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PingSettings {
    /// Seconds between pings (0.1–3600).
    pub cycle: Option<f64>,
}

/// `server.http`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// The host to bind (default `localhost`).
    pub host: Option<String>,
    /// The port; without one there is no HTTP endpoint.
    pub port: Option<u16>,
}

/// The `server:` section: the settings that shape a running server
/// (listeners, transports, TLS and keys are built by the front end, which
/// reads their files).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// The gossip prefix keeping networks apart.
    pub root: Option<String>,
    /// `change.length`.
    pub change: ChangeSettings,
    /// `ping.cycle`.
    pub ping: PingSettings,
    /// Largest accepted client message, bytes.
    pub max_frame: Option<u64>,
    /// Streams one connection may have open (at least 1).
    pub max_streams: Option<u64>,
    /// Seconds a connection playing ping-pong polls for its next request
    /// before sleeping (0: never; up to 0.01).
    pub busy_poll: Option<f64>,
    /// Changes queued per watcher (at least 1).
    pub watch_queue: Option<u64>,
    /// Changes queued for all watchers together (at least 1).
    pub watch_queue_total: Option<u64>,
    /// Seconds a client may leave its replies untaken (up to a day).
    pub send_timeout: Option<f64>,
    /// `always`, `never`, or seconds between forced syncs (up to an hour).
    pub log_sync: Option<SecondsOr>,
    /// Fill gaps by fetching from peers.
    pub pull_repair: Option<bool>,
    /// Seconds a gap waits before it is pulled (up to a minute).
    pub repair_delay: Option<f64>,
    /// Updates larger than this (bytes) are fetched by peers instead.
    pub fetch_above: Option<u64>,
    /// Gossip events queued before updates are left to gap repair.
    pub gossip_backlog: Option<u64>,
    /// Several small changes per gossip message.
    pub gossip_batch: Option<bool>,
    /// Local changes waiting to be sent (1 – 2^20).
    pub gossip_queue: Option<u64>,
    /// Update events per second handed to the gossip layer (at least 1).
    pub gossip_rate: Option<u64>,
    /// Test hook: the share of incoming updates dropped (0–1).
    pub test_drop_updates: Option<f64>,
    /// Type-check updates from other servers.
    pub paranoia: Option<bool>,
    /// The HTTP endpoint for metrics and health.
    pub http: HttpSettings,
    /// With a data directory: `daily`, `hourly`, `never` (or `false`), or
    /// seconds between new state logs (at least 1).
    pub log_rotate: Option<SecondsOr>,
    /// With a data directory: how many state logs to keep (at least 1).
    pub log_keep: Option<u64>,
}

/// A finite, non-negative number of seconds, at most `max`.
fn seconds(key: &'static str, s: f64, max: f64) -> Result<Duration, SettingsError> {
    if !s.is_finite() || s < 0.0 {
        return Err(bad(key, format!("{s} is not a number of seconds")));
    }
    Ok(Duration::from_secs_f64(s.min(max)))
}

/// A count as `usize`, at least `min`.
fn count(n: u64, min: usize) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).max(min)
}

impl ServerSettings {
    /// Writes the settings that are given into `c`, clamped to what a
    /// server can work with; a value of the wrong kind is an error.
    pub fn apply(&self, c: &mut ServerConfig) -> Result<(), SettingsError> {
        if let Some(r) = &self.root {
            if r.is_empty() {
                return Err(bad("root", "may not be empty"));
            }
            c.root.clone_from(r);
        }
        if let Some(n) = self.change.length {
            c.chain_length = usize::try_from(n).unwrap_or(16).clamp(1, 16);
        }
        if let Some(s) = self.ping.cycle {
            if !(s.is_finite() && s > 0.0) {
                return Err(bad("ping.cycle", format!("{s} is not a positive number")));
            }
            c.ping_cycle = Duration::from_secs_f64(s.clamp(0.1, 3600.0));
        }
        if let Some(n) = self.max_frame {
            c.max_frame = count(n, 1024);
        }
        if let Some(n) = self.max_streams {
            c.max_streams = count(n, 1);
        }
        if let Some(s) = self.busy_poll {
            c.busy_poll = seconds("busy_poll", s, 0.01)?;
        }
        if let Some(n) = self.watch_queue {
            c.watch_queue = count(n, 1).min(1 << 24);
        }
        if let Some(n) = self.watch_queue_total {
            c.watch_queue_total = count(n, 1);
        }
        if let Some(s) = self.send_timeout {
            if s == 0.0 {
                return Err(bad("send_timeout", "must be more than 0 seconds"));
            }
            c.send_timeout = seconds("send_timeout", s, 86_400.0)?;
        }
        if let Some(p) = &self.log_sync {
            c.log_sync = match p {
                SecondsOr::Word(w) if w == "always" => SyncPolicy::Always,
                SecondsOr::Word(w) if w == "never" => SyncPolicy::Never,
                SecondsOr::Seconds(s) => SyncPolicy::Interval(seconds("log_sync", *s, 3600.0)?),
                _ => {
                    return Err(bad(
                        "log_sync",
                        "must be 'always', 'never' or a number of seconds",
                    ));
                }
            };
        }
        if let Some(b) = self.pull_repair {
            c.pull_repair = b;
        }
        if let Some(s) = self.repair_delay {
            c.repair_delay = seconds("repair_delay", s, 60.0)?;
        }
        if let Some(n) = self.fetch_above {
            c.fetch_above = count(n, 0);
        }
        if let Some(n) = self.gossip_backlog {
            c.gossip_backlog = n;
        }
        if let Some(b) = self.gossip_batch {
            c.gossip_batch = b;
        }
        if let Some(n) = self.gossip_queue {
            c.gossip_queue = count(n, 1).min(1 << 20);
        }
        if let Some(n) = self.gossip_rate {
            c.gossip_rate = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(d) = self.test_drop_updates {
            if !d.is_finite() {
                return Err(bad("test_drop_updates", "must be a share from 0 to 1"));
            }
            c.drop_updates = d.clamp(0.0, 1.0);
        }
        if let Some(b) = self.paranoia {
            c.paranoia = b;
        }
        if let Some(port) = self.http.port {
            let host = self.http.host.clone().unwrap_or_else(|| "localhost".into());
            c.http = Some((host, port));
        }
        Ok(())
    }

    /// The data directory at `path` with the rotation settings.
    pub fn data_dir(&self, path: impl Into<std::path::PathBuf>) -> Result<DataDir, SettingsError> {
        let mut d = DataDir::new(path);
        if let Some(r) = &self.log_rotate {
            d.rotate = match r {
                SecondsOr::Flag(false) => None,
                SecondsOr::Word(w) if w == "never" => None,
                SecondsOr::Word(w) if w == "daily" => Some(Duration::from_secs(86_400)),
                SecondsOr::Word(w) if w == "hourly" => Some(Duration::from_secs(3_600)),
                SecondsOr::Seconds(s) if s.is_finite() && *s >= 1.0 => {
                    Some(Duration::from_secs_f64(s.min(366.0 * 86_400.0)))
                }
                _ => {
                    return Err(bad(
                        "log_rotate",
                        "must be daily, hourly, never or a number of seconds (at least 1)",
                    ));
                }
            };
        }
        if let Some(n) = self.log_keep {
            if n == 0 {
                return Err(bad("log_keep", "must be at least 1"));
            }
            d.keep = count(n, 1);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> ServerSettings {
        serde_json::from_str(json).expect("valid settings")
    }

    #[test]
    fn nothing_given_changes_nothing() {
        let mut c = ServerConfig::new("one");
        settings("{}").apply(&mut c).expect("applies");
        let d = ServerConfig::new("one");
        assert_eq!(
            (c.root, c.chain_length, c.max_frame),
            (d.root, d.chain_length, d.max_frame)
        );
        assert_eq!(
            (c.log_sync, c.gossip_rate, c.http),
            (d.log_sync, d.gossip_rate, d.http)
        );
    }

    #[test]
    fn values_are_clamped_or_refused() {
        let mut c = ServerConfig::new("one");
        settings(
            r#"{"change": {"length": 99}, "ping": {"cycle": 0.001}, "watch_queue": 0,
                "gossip_queue": 99999999, "gossip_rate": 0, "test_drop_updates": 7,
                "send_timeout": 1e9, "log_sync": 2.5, "http": {"port": 0}}"#,
        )
        .apply(&mut c)
        .expect("applies");
        assert_eq!(c.chain_length, 16);
        assert_eq!(c.ping_cycle, Duration::from_millis(100));
        assert_eq!(c.watch_queue, 1);
        assert_eq!(c.gossip_queue, 1 << 20);
        assert_eq!(c.gossip_rate, 1);
        assert!((c.drop_updates - 1.0).abs() < f64::EPSILON);
        assert_eq!(c.send_timeout, Duration::from_secs(86_400));
        assert_eq!(
            c.log_sync,
            SyncPolicy::Interval(Duration::from_millis(2500))
        );
        assert_eq!(c.http, Some(("localhost".into(), 0)));
        for (json, key) in [
            (r#"{"log_sync": "sometimes"}"#, "log_sync"),
            (r#"{"log_sync": -1}"#, "log_sync"),
            (r#"{"ping": {"cycle": 0}}"#, "ping.cycle"),
            (r#"{"send_timeout": 0}"#, "send_timeout"),
            (r#"{"root": ""}"#, "root"),
        ] {
            let e = settings(json).apply(&mut c).expect_err(json);
            assert_eq!(e.key, key, "{json}");
        }
    }

    #[test]
    fn data_directory_rotation() {
        let d = settings(r#"{"log_rotate": "hourly", "log_keep": 3}"#)
            .data_dir("/x")
            .expect("valid");
        assert_eq!((d.rotate, d.keep), (Some(Duration::from_secs(3600)), 3));
        let d = settings(r#"{"log_rotate": false}"#)
            .data_dir("/x")
            .expect("valid");
        assert_eq!(d.rotate, None);
        assert_eq!(
            settings("{}").data_dir("/x").expect("valid"),
            DataDir::new("/x")
        );
        for json in [
            r#"{"log_rotate": "weekly"}"#,
            r#"{"log_rotate": 0.5}"#,
            r#"{"log_keep": 0}"#,
        ] {
            assert!(settings(json).data_dir("/x").is_err(), "{json}");
        }
    }
}
