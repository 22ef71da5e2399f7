//! Configuration layers: built-in defaults, a YAML file (`-c`), and
//! `-C KEY=VALUE` overrides, in that order.

use std::path::Path as FsPath;

use distkv_tree::Value;
use serde_yaml_ng::{Mapping, Value as Yaml};

use crate::literal;

/// The built-in defaults (spec cli.md §6, plus `server.backend`).
pub const DEFAULTS: &str = r#"
connect:
  host: localhost
  port: 27586
  ssl: false
  init_timeout: 5
  auth: null
server:
  backend: serf
  serf:
    host: localhost
    port: 7373
  root: ":distkv"
  bind:
  - {}
  bind_default:
    host: localhost
    port: 27586
    ssl: false
  change:
    length: 5
  ping:
    cycle: 5
  max_frame: 16777216
  watch_queue: 16384
  watch_queue_total: 1048576
hostmap: {}
"#;

/// Every setting something reads. A pattern ending in `.*` takes any
/// contents below it (a list, or a map of names chosen by the user).
pub const KNOWN_KEYS: &[&str] = &[
    "connect.host",
    "connect.port",
    "connect.ssl.*",
    "connect.init_timeout",
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
    "server.watch_queue",
    "server.watch_queue_total",
    "server.send_timeout",
    "server.log_sync",
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
    "server.log_format",
    "server.http.host",
    "server.http.port",
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
    "server.paranoia",
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
        source: serde_yaml_ng::Error,
    },
    /// The file's top level is not a map.
    #[error("{0}: the configuration must be a map")]
    NotAMap(String),
    /// A `-C` key is empty or malformed.
    #[error("bad configuration key '{0}'")]
    BadKey(String),
    /// A map key is itself a map or a tagged value; the YAML writer cannot
    /// write such a configuration back out.
    #[error("{path}: a configuration key may not be a map or a tagged value (at '{at}')")]
    ComplexKey {
        /// The file.
        path: String,
        /// The dotted position of the map holding the key.
        at: String,
    },
    /// The configuration could not be written as YAML.
    #[error("cannot write the configuration as YAML: {0}")]
    Dump(serde_yaml_ng::Error),
    /// A setting nothing reads (a typo, most likely).
    #[error("unknown configuration key '{key}'{}", nearest.map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default())]
    UnknownKey {
        /// The dotted key.
        key: String,
        /// The known key closest to it.
        nearest: Option<&'static str>,
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

/// The effective configuration, a YAML tree.
#[derive(Clone, Debug)]
pub struct Config(Yaml);

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

/// Merges `over` into `base`: maps recursively, everything else replaced.
fn merge(base: &mut Yaml, over: Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Finds a map key that is a map or a tagged value (which the YAML writer
/// cannot write), returning the dotted position of its map. The parser bounds the nesting, so the recursion is bounded.
fn complex_key(y: &Yaml, at: &str) -> Option<String> {
    match y {
        Yaml::Mapping(m) => m.iter().find_map(|(k, v)| {
            if matches!(k, Yaml::Mapping(_) | Yaml::Tagged(_)) {
                return Some(at.to_owned());
            }
            let name = match k {
                Yaml::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .map(|t| t.trim_end().to_owned())
                    .unwrap_or_default(),
            };
            let below = if at.is_empty() {
                name
            } else {
                format!("{at}.{name}")
            };
            complex_key(v, &below)
        }),
        Yaml::Sequence(items) => items.iter().find_map(|v| complex_key(v, at)),
        Yaml::Tagged(t) => complex_key(&t.value, at),
        _ => None,
    }
}

/// Checks the settings below `at` (see [`Config::check_keys`]).
fn check_map(y: &Yaml, at: &str, ignored: &mut Vec<String>) -> Result<(), ConfigError> {
    let Yaml::Mapping(m) = y else {
        return Ok(());
    };
    for (k, v) in m {
        let name = match k {
            Yaml::String(s) => s.clone(),
            other => serde_yaml_ng::to_string(other)
                .map(|t| t.trim_end().to_owned())
                .unwrap_or_default(),
        };
        let key = if at.is_empty() {
            name
        } else {
            format!("{at}.{name}")
        };
        if KNOWN_KEYS.iter().any(|p| key_matches(p, &key)) {
            continue;
        }
        if IGNORED_KEYS.iter().any(|p| key_matches(p, &key)) {
            ignored.push(key);
            continue;
        }
        if is_section(&key) && matches!(v, Yaml::Mapping(_) | Yaml::Null) {
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

/// Converts a stored value into YAML (bytes become text, lossily).
pub fn value_to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Nil => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::Int(i) => Yaml::Number((*i).into()),
        Value::UInt(u) => Yaml::Number((*u).into()),
        Value::Float(f) => Yaml::Number((*f).into()),
        Value::Str(s) => Yaml::String(s.to_string()),
        Value::Bytes(b) | Value::Ext(_, b) => Yaml::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => Yaml::Sequence(a.iter().map(value_to_yaml).collect()),
        Value::Map(m) => Yaml::Mapping(
            m.iter()
                .map(|(k, v)| (value_to_yaml(k), value_to_yaml(v)))
                .collect::<Mapping>(),
        ),
    }
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
        Config(serde_yaml_ng::from_str(DEFAULTS).unwrap_or(Yaml::Mapping(Mapping::new())))
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
    /// A map or tagged value as a map key is refused.
    pub fn merge_str(&mut self, text: &str, shown: &str) -> Result<(), ConfigError> {
        let y: Yaml = serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Parse {
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
            Yaml::Mapping(_) => {
                merge(&mut self.0, y);
                Ok(())
            }
            Yaml::Null => Ok(()),
            _ => Err(ConfigError::NotAMap(shown.to_owned())),
        }
    }

    /// Sets dotted `key` to the text `value` (environment variables: the
    /// text is taken as it is, not parsed as a literal).
    pub fn set_str(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let port = key.ends_with(".port");
        let parts: Vec<&str> = key.split('.').collect();
        let Some((last, parents)) = parts.split_last() else {
            return Err(ConfigError::BadKey(key.to_owned()));
        };
        let mut cur = &mut self.0;
        for p in parents {
            let Yaml::Mapping(m) = cur else {
                return Err(ConfigError::BadKey(key.to_owned()));
            };
            cur = m
                .entry(Yaml::String((*p).to_owned()))
                .or_insert_with(|| Yaml::Mapping(Mapping::new()));
        }
        let Yaml::Mapping(m) = cur else {
            return Err(ConfigError::BadKey(key.to_owned()));
        };
        let v = match value.parse::<u16>() {
            Ok(n) if port => Yaml::Number(n.into()),
            _ => Yaml::String(value.to_owned()),
        };
        m.insert(Yaml::String((*last).to_owned()), v);
        Ok(())
    }

    /// Applies one `-C` override: `a.b.c=VALUE` sets (VALUE is a Python
    /// literal if it parses, else a string), `a.b.c` alone deletes.
    pub fn apply_override(&mut self, spec: &str) -> Result<(), ConfigError> {
        let (key, value) = match spec.split_once('=') {
            Some((k, v)) => (k, Some(value_to_yaml(&literal::parse_or_string(v)))),
            None => (spec, None),
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::BadKey(key.to_owned()));
        }
        let Some((last, parents)) = parts.split_last() else {
            return Err(ConfigError::BadKey(key.to_owned()));
        };
        let mut cur = &mut self.0;
        for p in parents {
            let map = match cur {
                Yaml::Mapping(m) => m,
                other => {
                    *other = Yaml::Mapping(Mapping::new());
                    match other {
                        Yaml::Mapping(m) => m,
                        _ => return Err(ConfigError::BadKey(key.to_owned())),
                    }
                }
            };
            let k = Yaml::String((*p).to_owned());
            if !map.contains_key(&k) {
                map.insert(k.clone(), Yaml::Mapping(Mapping::new()));
            }
            cur = match map.get_mut(&k) {
                Some(v) => v,
                None => return Err(ConfigError::BadKey(key.to_owned())),
            };
        }
        if !matches!(cur, Yaml::Mapping(_)) {
            *cur = Yaml::Mapping(Mapping::new());
        }
        if let Yaml::Mapping(m) = cur {
            let k = Yaml::String((*last).to_owned());
            match value {
                Some(v) => {
                    m.insert(k, v);
                }
                None => {
                    m.remove(&k);
                }
            }
        }
        Ok(())
    }

    /// The setting at a dotted key.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        let mut cur = &self.0;
        for p in key.split('.') {
            cur = cur.as_mapping()?.get(Yaml::String(p.to_owned()))?;
        }
        Some(cur)
    }

    /// A string setting (numbers are turned into text).
    pub fn get_str(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
            Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfigError::BadValue {
                key: key.to_owned(),
                why: "not a string".into(),
            }),
        }
    }

    /// An unsigned integer setting.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(Yaml::Number(n)) => n.as_u64().map(Some).ok_or_else(|| ConfigError::BadValue {
                key: key.to_owned(),
                why: "not a non-negative integer".into(),
            }),
            Some(Yaml::String(s)) => s.parse().map(Some).map_err(|_| ConfigError::BadValue {
                key: key.to_owned(),
                why: format!("'{s}' is not a non-negative integer"),
            }),
            Some(_) => Err(ConfigError::BadValue {
                key: key.to_owned(),
                why: "not a number".into(),
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

    /// The listeners: every `server.bind` item merged over
    /// `server.bind_default`, as `(host, port)`.
    pub fn listeners(&self) -> Result<Vec<(String, u16)>, ConfigError> {
        let default = self
            .get("server.bind_default")
            .cloned()
            .unwrap_or(Yaml::Mapping(Mapping::new()));
        let items = match self.get("server.bind") {
            Some(Yaml::Sequence(s)) if !s.is_empty() => s.clone(),
            _ => vec![Yaml::Mapping(Mapping::new())],
        };
        let mut out = Vec::new();
        for item in items {
            let mut merged = default.clone();
            merge(&mut merged, item);
            let sub = Config(Yaml::Mapping(
                [(Yaml::String("l".into()), merged)].into_iter().collect(),
            ));
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
        let Some(Yaml::Mapping(m)) = self.get("hostmap") else {
            return Ok(Vec::new());
        };
        let bad = |name: &str, why: &str| ConfigError::BadValue {
            key: format!("hostmap.{name}"),
            why: why.to_owned(),
        };
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(name) = k.as_str() else { continue };
            let (host, port) = match v {
                Yaml::Sequence(s) => match s.as_slice() {
                    [Yaml::String(h), Yaml::Number(p)] => {
                        let p = p.as_u64().and_then(|p| u16::try_from(p).ok());
                        (h.clone(), p.ok_or_else(|| bad(name, "bad port"))?)
                    }
                    _ => return Err(bad(name, "expected [host, port]")),
                },
                Yaml::String(s) => match s.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad(name, "bad port"))?),
                    None => (s.clone(), default_port),
                },
                _ => return Err(bad(name, "expected [host, port] or \"host:port\"")),
            };
            out.push((name.to_owned(), host, port));
        }
        Ok(out)
    }

    /// The configuration as YAML text (`dumpcfg`).
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml_ng::to_string(&self.0).map_err(ConfigError::Dump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: `? ? ?` (a map whose key is a map) loaded, but
    /// `dumpcfg` then printed nothing, the YAML writer's error swallowed.
    #[test]
    fn complex_keys_are_refused_and_dumps_do_not_fail_silently() {
        for text in [
            "? ? ?",
            "a:\n  ? {x: 1}\n  : 2\n",
            "b: [{? {c: 1} : 2}]",
            "!t k: 1",
        ] {
            let mut c = Config::new();
            assert!(
                matches!(c.merge_str(text, "f"), Err(ConfigError::ComplexKey { .. })),
                "{text:?}"
            );
            assert!(c.to_yaml().expect("dumps").contains("connect:"));
        }
        let mut c = Config::new();
        c.merge_str("hostmap: {1: h, ~: g, 1.5: x, [1, 2]: y}", "f")
            .expect("scalar and list keys");
        let dump = c.to_yaml().expect("dumps");
        let mut again = Config::new();
        again.merge_str(&dump, "dump").expect("reloads");
        assert_eq!(again.to_yaml().expect("dumps"), dump);
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
        assert!(matches!(c.get("new.deep.key"), Some(Yaml::Sequence(_))));
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
