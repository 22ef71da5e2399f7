//! The command line front ends: `distkv` and `distkv-server` parse their
//! arguments, build the configuration and hand over to the server or the
//! client library. The binaries are one call each ([`main`],
//! [`server_main`]); this module is their implementation, not a library
//! interface.

mod acl;
mod args;
mod auth;
mod code;
mod data;
mod internal;
mod login;
mod msg;
mod output;
mod progress;
mod script_input;
mod server;
mod tls;
mod types;

use std::process::ExitCode;

use crate::config::Config;
use clap::Parser;

use args::{Cli, ClientCommand, Command, ServerCli};

/// A failed command: the text is printed to stderr (unless empty) and the
/// process exits with `code`.
#[derive(Debug)]
pub struct Failure {
    /// What to print.
    pub text: String,
    /// The exit status: see [`Failure::code`] and the README's table.
    pub code: u8,
}

/// Exit status: the server cannot be reached (refused, timed out, TLS,
/// the connection broke).
pub const EXIT_CONNECTION: u8 = 3;
/// Exit status: logging in failed or is required.
pub const EXIT_LOGIN: u8 = 4;

impl Failure {
    /// A failure with exit status `code`.
    pub fn with_code(text: impl Into<String>, code: u8) -> Failure {
        Failure {
            text: text.into(),
            code,
        }
    }

    /// An error (exit status 1).
    pub fn error(text: impl Into<String>) -> Failure {
        Failure {
            text: text.into(),
            code: 1,
        }
    }

    /// A usage error (exit status 2).
    pub fn usage(text: impl Into<String>) -> Failure {
        Failure {
            text: format!("UsageError: {}", text.into()),
            code: 2,
        }
    }

    /// Exit status 1 with nothing more to say.
    pub fn silent() -> Failure {
        Failure {
            text: String::new(),
            code: 1,
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::error(e.to_string())
    }
}

/// Settings of the front end itself.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// Informational messages on stderr when ≥ 1.
    pub debug: i32,
}

/// Sets up logging to stderr. The default level is `warn`; `-v` makes it
/// `info`, `-vv` `debug`, `-vvv` `trace`, `-q` `error`. Without `-v` or
/// `-q`, `RUST_LOG` (if set) takes the default's place and may name
/// modules; `-l SOURCE=LEVEL` directives come last and win. `json`: one
/// JSON object per line (`server.log_format: json`).
fn init_logging(cli: &Cli, json: bool) -> Result<(), Failure> {
    use tracing_subscriber::EnvFilter;
    let level = match (cli.verbose, cli.quiet) {
        (_, q) if q > 0 => "error",
        (0, _) => "warn",
        (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    };
    let flags = cli.verbose > 0 || cli.quiet > 0;
    let base = match std::env::var("RUST_LOG") {
        Ok(env) if !flags && !env.trim().is_empty() => {
            EnvFilter::try_new(&env).map_err(|e| Failure::usage(format!("RUST_LOG={env}: {e}")))?;
            env
        }
        _ => level.to_owned(),
    };
    let mut directives = vec![base];
    for d in &cli.log {
        // checked one by one, so that the error names the bad one
        let valid = d.contains('=')
            && EnvFilter::try_new(d).is_ok()
            && d.split_once('=')
                .is_some_and(|(src, lvl)| !src.is_empty() && lvl.parse::<tracing::Level>().is_ok());
        if !valid {
            return Err(Failure::usage(format!(
                "-l {d}: expected SOURCE=LEVEL, LEVEL one of error, warn, info, debug, trace"
            )));
        }
        directives.push(d.clone());
    }
    let filter = EnvFilter::try_new(directives.join(","))
        .map_err(|e| Failure::usage(format!("log settings: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Ok(())
}

/// The configuration: the defaults; then the file `-c FILE`, else
/// `$DISTKV_CONFIG`, else the first of `~/.distkv.cfg` and
/// `/etc/distkv.cfg` that exists; then `DISTKV_HOST`, `DISTKV_PORT` and
/// `DISTKV_AUTH` (the client's `connect.host`, `.port`, `.auth`); then the
/// `-C` overrides. Every key must be one that something reads.
fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let mut cfg = Config::new();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match cli
        .cfg
        .clone()
        .or_else(|| env("DISTKV_CONFIG").map(Into::into))
    {
        Some(f) => cfg.merge_file(&f)?,
        None => {
            let home = env("HOME").map(|h| std::path::Path::new(&h).join(".distkv.cfg"));
            let etc = Some(std::path::PathBuf::from("/etc/distkv.cfg"));
            if let Some(f) = [home, etc].into_iter().flatten().find(|f| f.is_file()) {
                cfg.merge_file(&f)?;
            }
        }
    }
    for (var, key) in [
        ("DISTKV_HOST", "connect.host"),
        ("DISTKV_PORT", "connect.port"),
        ("DISTKV_AUTH", "connect.auth"),
    ] {
        if let Some(v) = env(var) {
            cfg.set_str(key, &v)?;
        }
    }
    for c in &cli.conf {
        cfg.apply_override(c)?;
    }
    let ignored = cfg
        .check_keys()
        .map_err(|e| Failure::usage(e.to_string()))?;
    for key in ignored {
        output::info(&format!(
            "distkv: the setting {key} of the original DistKV has no effect here"
        ));
    }
    Ok(cfg)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let ui = Ui {
        debug: (i32::from(cli.verbose) - i32::from(cli.quiet) + 1).max(0),
    };
    let cfg = load_config(&cli)?;
    let json_logs = match cfg.get_str("server.log_format")?.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Failure::usage(format!(
                "server.log_format is text or json, not {other}"
            )));
        }
    };
    init_logging(&cli, json_logs)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Command::Dumpcfg => {
            output::print_raw(&cfg.to_yaml());
            Ok(())
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "distkv", &mut out);
            output::print_raw(&String::from_utf8_lossy(&out));
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Failure::error(format!("cannot render the manual: {e}")))?;
            output::print_raw(&String::from_utf8_lossy(&out));
            Ok(())
        }
        Command::GossipKey { id } => {
            let spec = distkv_auth::gossip_key::generate(&id);
            // checked like a configured key, so a bad id is refused here
            distkv_auth::gossip_key::GossipKeyRing::new(&[spec.as_str()], "", Default::default())
                .map_err(|e| Failure::usage(e.to_string()))?;
            output::print_raw(&format!("{spec}\n"));
            Ok(())
        }
        Command::Server(args) => rt.block_on(server::run(&cfg, args)),
        Command::Client(args) => {
            output::set_format(args.output);
            let opts = data::connect_options(&cfg, &args)?;
            match args.cmd {
                ClientCommand::Data { cmd } => rt.block_on(data::run(ui, opts, cmd)),
                ClientCommand::Log { cmd } => rt.block_on(data::log(opts, cmd)),
                ClientCommand::Status => rt.block_on(data::status(opts)),
                ClientCommand::Auth(a) => rt.block_on(auth::run(opts, a)),
                ClientCommand::Acl { cmd } => rt.block_on(acl::run(opts, cmd)),
                ClientCommand::Msg { cmd } => rt.block_on(msg::run(opts, cmd)),
                ClientCommand::Internal { cmd } => rt.block_on(internal::run(opts, cmd)),
                ClientCommand::Type { cmd } => rt.block_on(types::run(opts, cmd)),
                ClientCommand::Codec { cmd } => rt.block_on(types::run_codec(opts, cmd)),
                ClientCommand::Code { cmd } => rt.block_on(code::run(opts, cmd)),
                ClientCommand::Error { cmd } => rt.block_on(code::errors(opts, cmd)),
                ClientCommand::Run(a) => rt.block_on(code::jobs(opts, a, code::limits(&cfg)?)),
            }
        }
    }
}

/// Prints a failure (if it says anything) and turns it into the exit
/// status.
fn finish(r: Result<(), Failure>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { text, code }) => {
            if !text.is_empty() {
                output::print_error(&text);
            }
            ExitCode::from(code)
        }
    }
}

/// `distkv ARGS…`.
pub fn main() -> ExitCode {
    finish(run(Cli::parse()))
}

/// `distkv-server ARGS…`: `distkv [OPTIONS] server ARGS…` as a program of
/// its own (`--log` for per-module levels, as `-l` is `--load` here).
pub fn server_main() -> ExitCode {
    finish(run(ServerCli::parse().into_cli()))
}
