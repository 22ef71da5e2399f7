//! `distkv server`.

use std::sync::Arc;

use crate::config::Config;
use crate::literal;
use distkv_mqtt::{MqttConfig, MqttGossip};
use distkv_serf::Gossip;
use distkv_serf::agent::{SerfConfig, SerfGossip};
use distkv_server::config::ServerSettings;
use distkv_server::{Server, ServerConfig};
use distkv_tree::Value;

use crate::app::Failure;
use crate::app::args::ServerArgs;
use crate::app::output;

/// The server's configuration: the typed `server` section (checked and
/// clamped by the server crate), then what needs files, prompts or other
/// sections (listeners, TLS, keys, logins, hostmap) and the arguments.
fn server_config(cfg: &Config, args: &ServerArgs) -> Result<ServerConfig, Failure> {
    let settings: ServerSettings = cfg
        .section("server")
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut sc = ServerConfig::new(args.name.clone());
    settings
        .apply(&mut sc)
        .map_err(|e| Failure::usage(e.to_string()))?;
    sc.bind = cfg.listeners()?;
    if let Some(p) = cfg.get_port("connect.port")? {
        sc.connect_port = p;
    }
    sc.hostmap = cfg.hostmap()?;
    sc.load = args.load.clone();
    sc.load_up_to_corruption = args.load_damaged;
    sc.save = args.save.clone();
    if let Some(dir) = &args.data {
        sc.data_dir = Some(
            settings
                .data_dir(dir)
                .map_err(|e| Failure::usage(e.to_string()))?,
        );
    }
    sc.tls = crate::app::tls::server(cfg)?;
    sc.peer_tls =
        crate::app::tls::client(cfg)?.map(|(config, server_name)| distkv_server::PeerTls {
            config,
            server_name,
        });
    if let Some(a) = cfg.get_str("connect.auth")? {
        sc.peer_login = Some(crate::app::login::credentials(&a, &sc.auth)?);
    }
    let quiet_for = match cfg.get_f64("server.progress_delay")? {
        Some(s) if s >= 0.0 => std::time::Duration::from_secs_f64(s.min(3600.0)),
        _ => std::time::Duration::from_secs(2),
    };
    sc.progress =
        distkv_server::progress::ProgressHook::new(Arc::new(crate::app::progress::Bars {
            quiet_for,
        }));
    sc.gossip_keys = gossip_keys(cfg, &sc.root)?;
    sc.init = match &args.init {
        None => None,
        Some(v) if v == "-" => Some(Value::Nil),
        Some(v) if args.eval => Some(literal::parse(v)?),
        Some(v) => Some(Value::from(v.as_str())),
    };
    if args.authoritative && args.load.is_empty() && args.data.is_none() {
        return Err(Failure::usage("-a only works together with -l or --data"));
    }
    for n in &args.nodes {
        if n.is_empty() || n == &args.name {
            return Err(Failure::usage(format!(
                "{n:?} cannot be a server to copy from: give other servers' names"
            )));
        }
    }
    sc.authoritative = args.authoritative;
    sc.force = args.force;
    sc.initial_from = args.nodes.clone();
    if args.eval && args.init.is_none() {
        return Err(Failure::usage("-e only works together with -i"));
    }
    Ok(sc)
}

/// The network keys: `server.gossip_key` (one `ID:BASE64` or a list, the
/// first signs), then the lines of `server.gossip_key_file`;
/// `server.gossip_encrypt` also encrypts.
fn gossip_keys(
    cfg: &Config,
    root: &str,
) -> Result<Option<Arc<distkv_auth::gossip_key::GossipKeyRing>>, Failure> {
    use distkv_auth::gossip_key::{GossipKeyRing, Protection, parse_key_file};
    let bad = |why: String| Failure::usage(format!("server.gossip_key: {why}"));
    let mut specs: Vec<String> = match cfg.get("server.gossip_key") {
        None => Vec::new(),
        Some(Value::Str(s)) => vec![s.to_string()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a list of ID:BASE64 strings".into()))?,
        Some(_) => return Err(bad("ID:BASE64, or a list of them".into())),
    };
    if let Some(file) = cfg.get_str("server.gossip_key_file")? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Failure::error(format!("server.gossip_key_file {file}: {e}")))?;
        let lines = parse_key_file(&text)
            .map_err(|e| Failure::error(format!("server.gossip_key_file {file}: {e}")))?;
        specs.extend(lines);
    }
    let protection = match cfg.get_bool("server.gossip_encrypt") {
        Ok(None | Some(false)) => Protection::Sign,
        Ok(Some(true)) => Protection::Encrypt,
        Err(_) => {
            return Err(Failure::usage(
                "server.gossip_encrypt must be true or false",
            ));
        }
    };
    if specs.is_empty() {
        if protection == Protection::Encrypt {
            return Err(Failure::usage(
                "server.gossip_encrypt needs a key: set server.gossip_key",
            ));
        }
        return Ok(None);
    }
    let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let ring = GossipKeyRing::new(&refs, root, protection).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Arc::new(ring)))
}

async fn gossip(cfg: &Config, args: &ServerArgs) -> Result<(Arc<dyn Gossip>, bool), Failure> {
    let backend = if args.standalone {
        "local".to_owned()
    } else {
        cfg.get_str("server.backend")?
            .unwrap_or_else(|| "serf".into())
    };
    match backend.as_str() {
        "local" => Ok((
            Arc::new(distkv_proto::transport::local::LocalGossip::default()),
            true,
        )),
        "serf" => {
            let host = match &args.host {
                Some(h) => h.clone(),
                None => cfg
                    .get_str("server.serf.host")?
                    .unwrap_or_else(|| "localhost".into()),
            };
            let port = match args.port {
                Some(p) => p,
                None => cfg.get_port("server.serf.port")?.unwrap_or(7373),
            };
            let cfg = SerfConfig {
                host: host.clone(),
                port,
                auth_key: cfg.get_str("server.serf.rpc_auth")?,
                event_size_limit: cfg
                    .get_u64("server.serf.event_size_limit")?
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(512),
                ..SerfConfig::default()
            };
            let g = SerfGossip::connect(cfg).await.map_err(|e| {
                Failure::error(format!(
                    "SerfError: cannot use the Serf agent at {host}:{port}: {e} \
                     (start `serf agent`, or run a single node with --standalone)"
                ))
            })?;
            Ok((Arc::new(g), false))
        }
        "mqtt" => {
            let root = cfg
                .get_str("server.root")?
                .unwrap_or_else(|| ServerConfig::new("").root);
            let mut m = MqttConfig {
                host: cfg
                    .get_str("server.mqtt.host")?
                    .unwrap_or_else(|| "localhost".into()),
                port: cfg.get_port("server.mqtt.port")?.unwrap_or(1883),
                username: cfg.get_str("server.mqtt.username")?,
                password: cfg.get_str("server.mqtt.password")?,
                tls: crate::app::tls::client_at(cfg, "server.mqtt.tls")?.map(|(c, _)| c),
                prefix: cfg
                    .get_str("server.mqtt.prefix")?
                    .unwrap_or_else(|| root.clone()),
                root,
                node: args.name.clone(),
                ..MqttConfig::default()
            };
            if let Some(n) = cfg.get_u64("server.mqtt.max_payload")? {
                m.max_payload = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .clamp(1024, 16 << 20);
            }
            let (host, port) = (m.host.clone(), m.port);
            let g = MqttGossip::connect(m).await.map_err(|e| {
                Failure::error(format!(
                    "MqttError: cannot use the MQTT broker at {host}:{port}: {e} \
                     (start the broker, or run a single node with --standalone)"
                ))
            })?;
            Ok((Arc::new(g), false))
        }
        other => Err(Failure::error(format!(
            "BackendError: unknown server.backend '{other}' (use 'serf', 'mqtt' or 'local')"
        ))),
    }
}

/// The web console (`server.http.console`), handed to the server for
/// its HTTP endpoint; it connects to the server's own client listener
/// once that is bound.
fn web_console(
    cfg: &Config,
    sc: &mut ServerConfig,
) -> Result<Option<Arc<distkv_console::Console>>, Failure> {
    if !cfg.get_bool("server.http.console")?.unwrap_or(false) {
        return Ok(None);
    }
    let Some((host, _)) = &sc.http else {
        return Err(Failure::usage(
            "server.http.console needs server.http.port (the console is served there)",
        ));
    };
    // a server that accepts TLS only: the console talks TLS to it too,
    // trusting exactly its certificate
    let tls = match sc.tls {
        Some(_) => Some(crate::app::tls::own_server(cfg)?),
        None => None,
    };
    let console = Arc::new(distkv_console::Console::new(
        distkv_console::ConsoleSettings {
            hosts: vec![host.clone()],
            tls,
        },
    ));
    sc.http_handler = Some(console.clone());
    Ok(Some(console))
}

/// Runs the server until it is stopped by a signal.
pub async fn run(cfg: &Config, args: ServerArgs) -> Result<(), Failure> {
    let mut sc = server_config(cfg, &args)?;
    let (gossip, standalone) = gossip(cfg, &args).await?;
    sc.standalone = standalone;
    if gossip.kind() == "mqtt" {
        // A broker carries about 10^5 messages a second and pushes back
        // when it cannot take more: no rate or backlog limit unless
        // configured.
        if cfg.get("server.gossip_rate").is_none() {
            sc.gossip_rate = 1_000_000;
        }
        if cfg.get("server.gossip_backlog").is_none() {
            sc.gossip_backlog = u64::MAX;
        }
    }
    // Catch SIGTERM and SIGINT before anyone is told the server runs: a
    // stop asked for right after "Running." must find the handlers there.
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let console = web_console(cfg, &mut sc)?;
    let server = Server::start(sc, gossip).await?;
    if let (Some(c), Some(addr)) = (&console, server.local_addrs().first()) {
        c.set_server(*addr);
    }
    output::print_line("Running.");
    // Under systemd (Type=notify): ready now. Elsewhere NOTIFY_SOCKET is
    // unset and this does nothing.
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot tell systemd that the server is ready");
    }
    let stop = async {
        #[cfg(unix)]
        tokio::select! {
            _ = signals.0.recv() => {},
            _ = signals.1.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    stop.await;
    tracing::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::app::args::{Cli, Command};

    /// The defaults `dumpcfg` prints are the ones the server runs with.
    #[test]
    fn dumped_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["distkv", "server", "one"]).expect("parses");
        let Command::Server(args) = cli.cmd else {
            panic!("a server command")
        };
        let sc = server_config(&Config::new(), &args).expect("the defaults build");
        let lib = ServerConfig::new("one");
        assert_eq!(sc.bind, lib.bind);
        assert_eq!(sc.root, lib.root);
        assert_eq!(sc.chain_length, lib.chain_length);
        assert_eq!(sc.max_frame, lib.max_frame);
        assert_eq!(sc.max_streams, lib.max_streams);
        assert_eq!(sc.busy_poll, lib.busy_poll);
        assert_eq!(sc.watch_queue, lib.watch_queue);
        assert_eq!(sc.watch_queue_total, lib.watch_queue_total);
        assert_eq!(sc.ping_cycle, lib.ping_cycle);
        assert_eq!(sc.connect_port, lib.connect_port);
        assert_eq!(sc.send_timeout, lib.send_timeout);
        assert_eq!(sc.log_sync, lib.log_sync);
        assert_eq!(sc.pull_repair, lib.pull_repair);
        assert_eq!(sc.repair_delay, lib.repair_delay);
        assert_eq!(sc.fetch_above, lib.fetch_above);
        assert_eq!(sc.gossip_batch, lib.gossip_batch);
        assert_eq!(sc.gossip_queue, lib.gossip_queue);
        assert_eq!(sc.gossip_rate, lib.gossip_rate);
        assert_eq!(sc.gossip_backlog, lib.gossip_backlog);
        assert_eq!(sc.http, lib.http);
        assert!(sc.gossip_keys.is_none() && sc.tls.is_none() && sc.peer_login.is_none());
        assert!(sc.drop_updates.abs() < f64::EPSILON);

        let limits = crate::app::code::limits(&Config::new()).expect("the defaults build");
        let lib = distkv_code::Limits::default();
        assert_eq!(limits.max_operations, lib.max_operations);
        assert_eq!(limits.max_call_levels, lib.max_call_levels);
        assert_eq!(limits.max_string_size, lib.max_string_size);
        assert_eq!(limits.max_array_size, lib.max_array_size);
        assert_eq!(limits.max_map_size, lib.max_map_size);
        assert_eq!(limits.max_time, lib.max_time);

        let cfg = Config::new();
        let mqtt = MqttConfig::default();
        assert_eq!(
            cfg.get_u64("server.mqtt.max_payload").expect("a number"),
            u64::try_from(mqtt.max_payload).ok()
        );
        assert_eq!(
            cfg.get_port("server.mqtt.port").expect("a port"),
            Some(mqtt.port)
        );
        assert_eq!(
            cfg.get_u64("server.serf.event_size_limit")
                .expect("a number"),
            u64::try_from(SerfConfig::default().event_size_limit).ok()
        );
    }
}
