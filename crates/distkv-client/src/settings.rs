//! The `connect:` section of a configuration file, typed: where a client
//! connects and how long it waits for the greeting. Credentials and TLS
//! need prompts and files; the front end builds those.
//!
//! ```
//! use distkv_client::{ConnectOptions, ConnectSettings};
//!
//! let s: ConnectSettings =
//!     serde_json::from_str(r#"{"host": "db.example", "port": 27587, "init_timeout": 0}"#)
//!         .expect("valid settings");
//! let mut opts = ConnectOptions::default();
//! s.apply(&mut opts);
//! assert_eq!((opts.host.as_str(), opts.port), ("db.example", 27587));
//! assert_eq!(opts.init_timeout.as_secs(), 1); // at least a second
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
    }
}
