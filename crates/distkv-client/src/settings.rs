//! The `connect:` section of a configuration file, typed: where a client
//! connects and how long it waits for the greeting. Credentials and TLS
//! need prompts and files; the front end builds those.
//!
//! ```
//! use distkv_client::{ConnectOptions, ConnectSettings};
//!
//! let s: ConnectSettings =
//!     serde_json::from_str(r#"{"host": "db.example", "port": 27587, "init_timeout": 0, "busy_poll": 1}"#)
//!         .expect("valid settings");
//! let mut opts = ConnectOptions::default();
//! s.apply(&mut opts);
//! assert_eq!((opts.host.as_str(), opts.port), ("db.example", 27587));
//! assert_eq!(opts.init_timeout.as_secs(), 1); // at least a second
//! assert_eq!(opts.busy_poll.as_millis(), 10); // at most 10 ms
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::ConnectOptions;

/// The `connect:` section; a setting left out keeps the option's value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectSettings {
    /// The server's host name or address.
    pub host: Option<String>,
    /// The server's port.
    pub port: Option<u16>,
    /// Seconds to wait for the connection and the greeting (at least 1).
    pub init_timeout: Option<u64>,
    /// Seconds to keep polling for a reply before sleeping (0: never; up
    /// to 0.01; see [`ConnectOptions::busy_poll`]).
    pub busy_poll: Option<f64>,
}

impl ConnectSettings {
    /// Writes the given settings into `o`.
    pub fn apply(&self, o: &mut ConnectOptions) {
        if let Some(h) = &self.host {
            o.host.clone_from(h);
        }
        if let Some(p) = self.port {
            o.port = p;
        }
        if let Some(t) = self.init_timeout {
            o.init_timeout = Duration::from_secs(t.max(1));
        }
        if let Some(s) = self.busy_poll {
            // a negative or not-a-number setting turns it off
            o.busy_poll = Duration::try_from_secs_f64(s.clamp(0.0, 0.01)).unwrap_or_default();
        }
    }
}
