//! The YAML configuration loader: a file's text merged over the defaults,
//! then `-C` overrides, then every typed getter the server and client use.
//!
//! Properties: no panic; every configuration that loads can be dumped;
//! its dump loads again; and loading a dump over the defaults is stable:
//! after one dump-and-load cycle (which restores defaults that overrides
//! removed), a second one changes nothing. Input before the first 0x00
//! byte is the file; each further 0x00-separated piece is a `-C` override.
#![no_main]

use std::sync::LazyLock;

use distkv_cli::config::Config;
use libfuzzer_sys::fuzz_target;

/// The defaults, parsed once.
static DEFAULTS: LazyLock<Config> = LazyLock::new(Config::new);

const KEYS: &[&str] = &[
    "connect.host",
    "connect.port",
    "connect.init_timeout",
    "server.root",
    "server.serf.port",
    "server.max_frame",
    "server.ping.cycle",
    "server.change.length",
    "errors.prefix",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut pieces = text.split('\0');
    let file = pieces.next().unwrap_or_default();
    let mut cfg = DEFAULTS.clone();
    if cfg.merge_str(file, "fuzz.yaml").is_err() {
        return;
    }
    for o in pieces {
        let _ = cfg.apply_override(o);
    }
    for k in KEYS {
        let _ = cfg.get(k);
        let _ = cfg.get_str(k);
        let _ = cfg.get_u64(k);
        let _ = cfg.get_port(k);
    }
    let _ = cfg.listeners();
    let _ = cfg.hostmap();

    let dump = cfg.to_yaml();
    let reload = |dump: &str| {
        let mut again = DEFAULTS.clone();
        again
            .merge_str(dump, "dump.yaml")
            .unwrap_or_else(|e| panic!("the dump does not load: {e}\n{dump}"));
        again.to_yaml()
    };
    let once = reload(&dump);
    assert_eq!(
        reload(&once),
        once,
        "dump and load over the defaults is not stable"
    );
});
