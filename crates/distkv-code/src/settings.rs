//! The `code:` section of a configuration file, typed: the limits of one
//! script run, checked here for every front end.
//!
//! ```
//! use distkv_code::{LimitSettings, Limits};
//!
//! let s: LimitSettings = serde_json::from_str(r#"{"max_time": 0.25}"#).expect("valid");
//! let mut limits = Limits::default();
//! s.apply(&mut limits).expect("in range");
//! assert_eq!(limits.max_time.as_millis(), 250);
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::Limits;

/// Why limit settings cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code.{key}: {why}")]
pub struct LimitError {
    /// The setting, below `code.`.
    pub key: &'static str,
    /// What is wrong with it.
    pub why: String,
}

/// The `code:` section; a setting left out keeps the limit's value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Operations per run.
    pub max_operations: Option<u64>,
    /// Nested function calls.
    pub max_call_levels: Option<u64>,
    /// Bytes in one string.
    pub max_string_size: Option<u64>,
    /// Elements in one array.
    pub max_array_size: Option<u64>,
    /// Entries in one map.
    pub max_map_size: Option<u64>,
    /// Seconds of wall time per run (more than 0, at most a day).
    pub max_time: Option<f64>,
}

fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl LimitSettings {
    /// Writes the given settings into `l`.
    pub fn apply(&self, l: &mut Limits) -> Result<(), LimitError> {
        if let Some(n) = self.max_operations {
            l.max_operations = n;
        }
        if let Some(n) = self.max_call_levels {
            l.max_call_levels = size(n);
        }
        if let Some(n) = self.max_string_size {
            l.max_string_size = size(n);
        }
        if let Some(n) = self.max_array_size {
            l.max_array_size = size(n);
        }
        if let Some(n) = self.max_map_size {
            l.max_map_size = size(n);
        }
        if let Some(t) = self.max_time {
            if !(t.is_finite() && t > 0.0) {
                return Err(LimitError {
                    key: "max_time",
                    why: format!("{t} is not a positive number of seconds"),
                });
            }
            l.max_time = Duration::from_secs_f64(t.min(86_400.0));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_settings() {
        let mut l = Limits::default();
        LimitSettings::default()
            .apply(&mut l)
            .expect("nothing to apply");
        assert_eq!(l, Limits::default());
        let s = LimitSettings {
            max_operations: Some(5),
            max_time: Some(1e9),
            ..LimitSettings::default()
        };
        s.apply(&mut l).expect("applies");
        assert_eq!(
            (l.max_operations, l.max_time),
            (5, Duration::from_secs(86_400))
        );
        for t in [0.0, -1.0, f64::NAN] {
            let s = LimitSettings {
                max_time: Some(t),
                ..LimitSettings::default()
            };
            assert_eq!(s.apply(&mut l).expect_err("refused").key, "max_time");
        }
    }
}
