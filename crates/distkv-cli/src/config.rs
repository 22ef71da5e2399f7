//! Configuration layers: built-in defaults, a YAML file (`-c`), and
//! `-C KEY=VALUE` overrides, in that order.

use std::path::Path as FsPath;

use distkv_tree::Value;

use crate::{literal, repr, yaml};

/// The built-in defaults: every setting that takes effect, with the value
/// it has when nothing overrides it (`dumpcfg` prints them). `null` means
/// "not set": no TLS, no login, no HTTP listener, and for `gossip_rate`
/// and `gossip_backlog` the backend's own default (1,000 messages a
/// second and 64 behind for Serf, no limit for MQTT).
pub const DEFAULTS: &str = r#"
connect:
  host: localhost
  port: 27586
  ssl: false
  init_timeout: 5
  busy_poll: 0.00005
  auth: null
server:
  backend: serf
  root: ":distkv"
  bind:
  - {}
  bind_default:
    host: localhost
    port: 27586
    ssl: false
  serf:
    host: localhost
    port: 7373
    rpc_auth: null
    event_size_limit: 512
  mqtt:
    host: localhost
    port: 1883
    username: null
    password: null
    tls: null
    prefix: null
    max_payload: 262144
  change:
    length: 5
  ping:
    cycle: 5
  max_frame: 16777216
  max_streams: 1000
  busy_poll: 0.00005
  watch_queue: 16384
  watch_queue_total: 1048576
  send_timeout: 60
  log_sync: 1
  log_rotate: daily
  log_keep: 7
  log_format: text
  progress_delay: 2
  pull_repair: true
  repair_delay: 0.02
  fetch_above: 16384
  gossip_backlog: null
  gossip_batch: true
  gossip_queue: 1024
  gossip_rate: null
  gossip_key: null
  gossip_key_file: null
  gossip_encrypt: false
  test_drop_updates: 0
  paranoia: false
  http:
    host: localhost
    port: null
    console: false
hostmap: {}
code:
  max_operations: 1000000
  max_time: 1
  max_call_levels: 32
  max_string_size: 1048576
  max_array_size: 100000
  max_map_size: 100000
"#;

/// Every setting something reads. A pattern ending in `.*` takes any
/// contents below it (a list, or a map of names chosen by the user).
pub const KNOWN_KEYS: &[&str] = &[
    "connect.host",
    "connect.port",
    "connect.ssl.*",
    "connect.init_timeout",
    "connect.busy_poll",
    "connect.auth",
    "server.backend",
    "server.root",
    "server.bind.*",
    "server.bind_default.host",
    "server.bind_default.port",
    "server.bind_default.ssl.*",
    "server.serf.host",
    "server.serf.port",
    "server.serf.rpc_auth",
    "server.serf.event_size_limit",
    "server.mqtt.host",
    "server.mqtt.port",
    "server.mqtt.username",
    "server.mqtt.password",
    "server.mqtt.tls.*",
    "server.mqtt.prefix",
    "server.mqtt.max_payload",
    "server.change.length",
    "server.ping.cycle",
    "server.max_frame",
    "server.max_streams",
    "server.busy_poll",
    "server.watch_queue",
    "server.watch_queue_total",
    "server.send_timeout",
    "server.log_sync",
    "server.log_rotate",
    "server.log_keep",
    "server.progress_delay",
    "server.pull_repair",
    "server.repair_delay",
    "server.fetch_above",
    "server.gossip_backlog",
    "server.gossip_batch",
    "server.gossip_queue",
    "server.gossip_rate",
    "server.gossip_key.*",
    "server.gossip_key_file",
    "server.gossip_encrypt",
    "server.test_drop_updates",
    "server.paranoia",
    "server.log_format",
    "server.http.host",
    "server.http.port",
    "server.http.console",
    "hostmap.*",
    "code.max_operations",
    "code.max_time",
    "code.max_call_levels",
    "code.max_string_size",
    "code.max_array_size",
    "code.max_map_size",
];

/// Settings of the original DistKV that distkv-rs accepts in a file and
/// ignores, so that its configuration files keep working.
pub const IGNORED_KEYS: &[&str] = &[
    "paranoia",
    "domain",
    "server.ping.gap",
    "server.delete.*",
    "errors.*",
    "codes.*",
    "modules.*",
    "logging.*",
];

/// Whether dotted `key` is matched by `pattern` (exactly, or below a
/// `.*` pattern).
fn key_matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(base) => key == base || key.strip_prefix(base).is_some_and(|r| r.starts_with('.')),
        None => key == pattern,
    }
}

/// Whether `key` is a section that holds known settings.
fn is_section(key: &str) -> bool {
    KNOWN_KEYS.iter().chain(IGNORED_KEYS).any(|p| {
        p.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The known setting closest to an unknown `key`, if one is close.
fn nearest_key(key: &str) -> Option<&'static str> {
    KNOWN_KEYS
        .iter()
        .map(|p| {
            (
                p.trim_end_matches(".*"),
                strsim::damerau_levenshtein(p.trim_end_matches(".*"), key),
            )
        })
        .filter(|(p, d)| *d <= (p.len() / 3).max(2))
        .min_by_key(|(_, d)| *d)
        .map(|(p, _)| p)
}

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: yaml::LoadError,
    },
    /// The file's top level is not a map.
    #[error("{0}: the configuration must be a map")]
    NotAMap(String),
    /// A `-C` key is empty or malformed.
    #[error("bad configuration key '{0}'")]
    BadKey(String),
    /// A map key is itself a map: no setting is named by one.
    #[error("{path}: a configuration key may not be a map (at '{at}')")]
    ComplexKey {
        /// The file.
        path: String,
        /// The dotted position of the map holding the key.
        at: String,
    },
    /// A setting nothing reads (a typo, most likely).
    #[error("unknown configuration key '{key}'{}", nearest.map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default())]
    UnknownKey {
        /// The dotted key.
        key: String,
        /// The known key closest to it.
        nearest: Option<&'static str>,
    },
    /// A section does not fit its typed settings (the message names the
    /// setting).
    #[error("configuration '{key}': {why}")]
    Section {
        /// The dotted key of the setting.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A setting has the wrong type.
    #[error("configuration '{key}': {why}")]
    BadValue {
        /// The dotted key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// The effective configuration: a tree of maps, as loaded from YAML.
#[derive(Clone, Debug)]
pub struct Config(Value);

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

/// Merges `over` into `base`: maps recursively, everything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| *bk == k) {
                    Some((_, slot)) => merge(slot, v),
                    None => b.push((k, v)),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A map key as a dotted name part: text as it is, anything else as
/// Python would print it.
fn key_name(k: &Value) -> String {
    match k {
        Value::Str(s) => s.to_string(),
        other => repr::repr_line(other),
    }
}

/// `at.name`, or `name` at the top.
fn dotted(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// Finds a map key that is itself a map, returning the dotted position of
/// its map. The loader bounds the nesting, so the recursion is bounded.
fn complex_key(y: &Value, at: &str) -> Option<String> {
    match y {
        Value::Map(m) => m.iter().find_map(|(k, v)| {
            if matches!(k, Value::Map(_)) {
                return Some(at.to_owned());
            }
            complex_key(v, &dotted(at, &key_name(k)))
        }),
        Value::Array(items) => items.iter().find_map(|v| complex_key(v, at)),
        _ => None,
    }
}

/// Checks the settings below `at` (see [`Config::check_keys`]).
fn check_map(y: &Value, at: &str, ignored: &mut Vec<String>) -> Result<(), ConfigError> {
    let Value::Map(m) = y else {
        return Ok(());
    };
    for (k, v) in m {
        let key = dotted(at, &key_name(k));
        if KNOWN_KEYS.iter().any(|p| key_matches(p, &key)) {
            continue;
        }
        if IGNORED_KEYS.iter().any(|p| key_matches(p, &key)) {
            ignored.push(key);
            continue;
        }
        if is_section(&key) && matches!(v, Value::Map(_) | Value::Nil) {
            check_map(v, &key, ignored)?;
            continue;
        }
        return Err(ConfigError::UnknownKey {
            nearest: nearest_key(&key),
            key,
        });
    }
    Ok(())
}

/// A configuration value as JSON, for typed sections: maps need text keys,
/// numbers must be finite, bytes have no JSON form.
fn to_json(v: &Value, at: &str) -> Result<serde_json::Value, ConfigError> {
    use serde_json::Value as J;
    let bad = |why: &str| ConfigError::BadValue {
        key: at.to_owned(),
        why: why.to_owned(),
    };
    Ok(match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| bad("not a finite number"))?,
        Value::Str(s) => J::String(s.to_string()),
        Value::Bytes(_) | Value::Ext(..) => return Err(bad("bytes are not a setting")),
        Value::Array(items) => J::Array(
            items
                .iter()
                .map(|i| to_json(i, at))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, v) in m {
                let Value::Str(name) = k else {
                    return Err(bad("setting names are text"));
                };
                o.insert(name.to_string(), to_json(v, &dotted(at, name))?);
            }
            J::Object(o)
        }
    })
}

/// `y` without the settings matched by [`IGNORED_KEYS`].
fn without_ignored(y: &Value, at: &str) -> Value {
    let Value::Map(m) = y else {
        return y.clone();
    };
    Value::Map(
        m.iter()
            .filter_map(|(k, v)| {
                let key = dotted(at, &key_name(k));
                let ignored = IGNORED_KEYS.iter().any(|p| key_matches(p, &key))
                    && !KNOWN_KEYS.iter().any(|p| key_matches(p, &key));
                (!ignored).then(|| (k.clone(), without_ignored(v, &key)))
            })
            .collect(),
    )
}

/// The map entry for text key `name`.
fn entry<'a>(m: &'a mut [(Value, Value)], name: &str) -> Option<&'a mut Value> {
    m.iter_mut()
        .find(|(k, _)| matches!(k, Value::Str(s) if s == name))
        .map(|(_, v)| v)
}

/// The map below text key `name` in `cur`, created (replacing whatever
/// was there) when missing or not a map.
fn section_mut<'a>(cur: &'a mut Value, name: &str) -> &'a mut Value {
    if !matches!(cur, Value::Map(_)) {
        *cur = Value::Map(Default::default());
    }
    let Value::Map(m) = cur else {
        return cur;
    };
    let at = match m
        .iter()
        .position(|(k, _)| matches!(k, Value::Str(s) if s == name))
    {
        Some(i) => i,
        None => {
            m.push((Value::from(name), Value::Map(Default::default())));
            m.len() - 1
        }
    };
    let slot = &mut m[at].1;
    if !matches!(slot, Value::Map(_)) {
        *slot = Value::Map(Default::default());
    }
    slot
}

impl Config {
    /// Checks every setting against [`KNOWN_KEYS`]: an unknown key is an
    /// error naming the closest known one. Returns the settings of the
    /// original that are accepted and ignored ([`IGNORED_KEYS`]).
    pub fn check_keys(&self) -> Result<Vec<String>, ConfigError> {
        let mut ignored = Vec::new();
        check_map(&self.0, "", &mut ignored)?;
        Ok(ignored)
    }

    /// The built-in defaults.
    pub fn new() -> Config {
        // The defaults are a constant that the tests parse; fall back to an
        // empty map rather than panic.
        Config(yaml::load(DEFAULTS).unwrap_or(Value::Map(Default::default())))
    }

    /// Merges a YAML file over the current settings.
    pub fn merge_file(&mut self, path: &FsPath) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        self.merge_str(&text, &shown)
    }

    /// Merges YAML text over the current settings, as [`Config::merge_file`]
    /// does with a file's contents; `shown` names the source in errors.
    /// A map as a map key is refused.
    pub fn merge_str(&mut self, text: &str, shown: &str) -> Result<(), ConfigError> {
        let y = yaml::load(text).map_err(|source| ConfigError::Parse {
            path: shown.to_owned(),
            source,
        })?;
        if let Some(at) = complex_key(&y, "") {
            return Err(ConfigError::ComplexKey {
                path: shown.to_owned(),
                at,
            });
        }
        match y {
            Value::Map(_) => {
                merge(&mut self.0, y);
                Ok(())
            }
            Value::Nil => Ok(()),
            _ => Err(ConfigError::NotAMap(shown.to_owned())),
        }
    }

    /// Sets dotted `key` to `value`, creating the maps above it.
    fn set(&mut self, key: &str, value: Option<Value>) -> Result<(), ConfigError> {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::BadKey(key.to_owned()));
        }
        let Some((last, parents)) = parts.split_last() else {
            return Err(ConfigError::BadKey(key.to_owned()));
        };
        let mut cur = &mut self.0;
        for p in parents {
            cur = section_mut(cur, p);
        }
        if !matches!(cur, Value::Map(_)) {
            *cur = Value::Map(Default::default());
        }
        if let Value::Map(m) = cur {
            match (entry(m, last), value) {
                (Some(slot), Some(v)) => *slot = v,
                (None, Some(v)) => m.push((Value::from(*last), v)),
                (_, None) => m.retain(|(k, _)| !matches!(k, Value::Str(s) if s == last)),
            }
        }
        Ok(())
    }

    /// Sets dotted `key` to the text `value` (environment variables: the
    /// text is taken as it is, not parsed as a literal; a port number
    /// becomes a number).
    pub fn set_str(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let v = match value.parse::<u16>() {
            Ok(n) if key.ends_with(".port") => Value::Int(i64::from(n)),
            _ => Value::from(value),
        };
        self.set(key, Some(v))
    }

    /// Applies one `-C` override: `a.b.c=VALUE` sets (VALUE is a Python
    /// literal if it parses, else a string), `a.b.c` alone deletes.
    pub fn apply_override(&mut self, spec: &str) -> Result<(), ConfigError> {
        match spec.split_once('=') {
            Some((k, v)) => self.set(k, Some(literal::parse_or_string(v))),
            None => self.set(spec, None),
        }
    }

    /// The setting at a dotted key; `None` when it is absent or null.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let mut cur = &self.0;
        for p in key.split('.') {
            let Value::Map(m) = cur else { return None };
            cur = m
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == p))
                .map(|(_, v)| v)?;
        }
        (!matches!(cur, Value::Nil)).then_some(cur)
    }

    /// A string setting (numbers and booleans are turned into text).
    pub fn get_str(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.to_string())),
            Some(Value::Int(n)) => Ok(Some(n.to_string())),
            Some(Value::UInt(n)) => Ok(Some(n.to_string())),
            Some(Value::Float(f)) => Ok(Some(repr::repr_line(&Value::Float(*f)))),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfigError::BadValue {
                key: key.to_owned(),
                why: "not a string".into(),
            }),
        }
    }

    /// An unsigned integer setting.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        let bad = |why: String| ConfigError::BadValue {
            key: key.to_owned(),
            why,
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(n)) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| bad("not a non-negative integer".into())),
            Some(Value::UInt(n)) => Ok(Some(*n)),
            Some(Value::Str(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("'{s}' is not a non-negative integer"))),
            Some(_) => Err(bad("not a non-negative integer".into())),
        }
    }

    /// A number setting (seconds, fractions).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        let bad = |why: String| ConfigError::BadValue {
            key: key.to_owned(),
            why,
        };
        #[allow(clippy::cast_precision_loss)]
        let f = match self.get(key) {
            None => return Ok(None),
            Some(Value::Int(n)) => *n as f64,
            Some(Value::UInt(n)) => *n as f64,
            Some(Value::Float(f)) => *f,
            Some(Value::Str(s)) => s
                .parse()
                .map_err(|_| bad(format!("'{s}' is not a number")))?,
            Some(_) => return Err(bad("not a number".into())),
        };
        if f.is_finite() {
            Ok(Some(f))
        } else {
            Err(bad("not a finite number".into()))
        }
    }

    /// A boolean setting (`true`/`false`, also as text).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ConfigError::BadValue {
                key: key.to_owned(),
                why: "not true or false".into(),
            }),
        }
    }

    /// A port number setting.
    pub fn get_port(&self, key: &str) -> Result<Option<u16>, ConfigError> {
        match self.get_u64(key)? {
            None => Ok(None),
            Some(p) => u16::try_from(p)
                .map(Some)
                .map_err(|_| ConfigError::BadValue {
                    key: key.to_owned(),
                    why: format!("{p} is not a port number"),
                }),
        }
    }

    /// The section at dotted `key` as typed settings (a missing section
    /// is an empty one); errors name the setting.
    pub fn section<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        let json = match self.get(key) {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(v) => to_json(v, key)?,
        };
        serde_path_to_error::deserialize(json).map_err(|e| ConfigError::Section {
            key: match e.path().to_string().as_str() {
                "." => key.to_owned(),
                below => format!("{key}.{below}"),
            },
            why: e.into_inner().to_string(),
        })
    }

    /// The listeners: every `server.bind` item merged over
    /// `server.bind_default`, as `(host, port)`.
    pub fn listeners(&self) -> Result<Vec<(String, u16)>, ConfigError> {
        let default = self
            .get("server.bind_default")
            .cloned()
            .unwrap_or(Value::Map(Default::default()));
        let items = match self.get("server.bind") {
            Some(Value::Array(s)) if !s.is_empty() => s.clone(),
            _ => vec![Value::Map(Default::default())].into(),
        };
        let mut out = Vec::new();
        for item in items {
            let mut merged = default.clone();
            merge(&mut merged, item);
            let sub = Config(Value::Map(vec![(Value::from("l"), merged)].into()));
            let host = sub.get_str("l.host")?.unwrap_or_else(|| "localhost".into());
            let port = sub.get_port("l.port")?.unwrap_or(27586);
            out.push((host, port));
        }
        Ok(out)
    }

    /// The `hostmap` section: server name → `[host, port]`, `"host"` or
    /// `"host:port"`, as `(name, host, port)`.
    pub fn hostmap(&self) -> Result<Vec<(String, String, u16)>, ConfigError> {
        let default_port = self.get_port("connect.port")?.unwrap_or(27586);
        let Some(Value::Map(m)) = self.get("hostmap") else {
            return Ok(Vec::new());
        };
        let bad = |name: &str, why: &str| ConfigError::BadValue {
            key: format!("hostmap.{name}"),
            why: why.to_owned(),
        };
        let mut out = Vec::new();
        for (k, v) in m {
            let Value::Str(name) = k else { continue };
            let (host, port) = match v {
                Value::Array(s) => match s.as_slice() {
                    [Value::Str(h), p] => {
                        let p = p.as_u64().and_then(|p| u16::try_from(p).ok());
                        (h.to_string(), p.ok_or_else(|| bad(name, "bad port"))?)
                    }
                    _ => return Err(bad(name, "expected [host, port]")),
                },
                Value::Str(s) => match s.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad(name, "bad port"))?),
                    None => (s.to_string(), default_port),
                },
                _ => return Err(bad(name, "expected [host, port] or \"host:port\"")),
            };
            out.push((name.to_string(), host, port));
        }
        Ok(out)
    }

    /// The configuration as YAML text (`dumpcfg`), as PyYAML's
    /// `safe_dump` writes it: the settings that take effect, without the
    /// original's settings that are accepted and ignored.
    pub fn to_yaml(&self) -> String {
        yaml::to_yaml(&without_ignored(&self.0, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: `? ? ?` (a map whose key is a map) loaded, but
    /// `dumpcfg` then printed nothing, the YAML writer's error swallowed.
    #[test]
    fn map_keys_are_refused_and_other_keys_dump_and_reload() {
        for text in ["? ? ?", "a:\n  ? {x: 1}\n  : 2\n", "b: [{? {c: 1} : 2}]"] {
            let mut c = Config::new();
            assert!(
                matches!(
                    c.merge_str(text, "f"),
                    Err(ConfigError::ComplexKey { .. } | ConfigError::Parse { .. })
                ),
                "{text:?}"
            );
            assert!(c.to_yaml().contains("connect:"));
        }
        let mut c = Config::new();
        c.merge_str("hostmap: {1: h, ~: g, 1.5: x, [1, 2]: y}", "f")
            .expect("scalar and list keys");
        let dump = c.to_yaml();
        let mut again = Config::new();
        again.merge_str(&dump, "dump").expect("reloads");
        assert_eq!(again.to_yaml(), dump);
    }

    /// `dumpcfg` shows exactly the settings that take effect: every known
    /// key has a default, and every default is a known key.
    #[test]
    fn defaults_name_every_known_key_and_nothing_else() {
        let c = Config::new();
        assert_eq!(c.check_keys().expect("all known"), Vec::<String>::new());
        let mut missing = Vec::new();
        for key in KNOWN_KEYS {
            let key = key.trim_end_matches(".*");
            let mut cur = &c.0;
            for p in key.split('.') {
                cur = match cur {
                    Value::Map(m) => match m.iter().find(|(k, _)| k.as_str() == Some(p)) {
                        Some((_, v)) => v,
                        None => {
                            missing.push(key);
                            break;
                        }
                    },
                    _ => {
                        missing.push(key);
                        break;
                    }
                };
            }
        }
        assert_eq!(missing, Vec::<&str>::new(), "known keys without a default");
        let again = {
            let mut a = Config::new();
            a.merge_str(&c.to_yaml(), "dump").expect("the dump loads");
            a.to_yaml()
        };
        assert_eq!(again, c.to_yaml());
    }

    #[test]
    fn defaults_parse() {
        let c = Config::new();
        assert_eq!(c.get_port("connect.port").expect("ok"), Some(27586));
        assert_eq!(
            c.get_str("server.root").expect("ok").as_deref(),
            Some(":distkv")
        );
        assert_eq!(
            c.get_str("server.backend").expect("ok").as_deref(),
            Some("serf")
        );
        assert_eq!(
            c.listeners().expect("ok"),
            vec![("localhost".to_owned(), 27586)]
        );
    }

    #[test]
    fn overrides() {
        let mut c = Config::new();
        c.apply_override("server.serf.host=my-serfer").expect("ok");
        c.apply_override("connect.auth=_test name=joe").expect("ok");
        c.apply_override("server.bind_default.port=1234")
            .expect("ok");
        c.apply_override("new.deep.key=[1, 2]").expect("ok");
        assert_eq!(
            c.get_str("server.serf.host").expect("ok").as_deref(),
            Some("my-serfer")
        );
        assert_eq!(
            c.get_str("connect.auth").expect("ok").as_deref(),
            Some("_test name=joe")
        );
        assert_eq!(c.listeners().expect("ok")[0].1, 1234);
        assert!(matches!(c.get("new.deep.key"), Some(Value::Array(_))));
        c.apply_override("connect.auth").expect("ok");
        assert!(c.get("connect.auth").is_none());
        assert!(c.apply_override("a..b=1").is_err());
        c.apply_override("connect.port=99999").expect("stored");
        assert!(c.get_port("connect.port").is_err());
    }

    #[test]
    fn file_layer() {
        let dir = std::env::temp_dir().join(format!("distkv-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let f = dir.join("c.yaml");
        std::fs::write(&f, "connect:\n  host: 127.0.0.1\n").expect("write");
        let mut c = Config::new();
        c.merge_file(&f).expect("merge");
        assert_eq!(
            c.get_str("connect.host").expect("ok").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(c.get_port("connect.port").expect("ok"), Some(27586));
        std::fs::write(&f, "- a\n").expect("write");
        assert!(matches!(c.merge_file(&f), Err(ConfigError::NotAMap(_))));
        std::fs::write(&f, "a: [\n").expect("write");
        assert!(matches!(c.merge_file(&f), Err(ConfigError::Parse { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
