//! `distkv client code` and `distkv client error`.

use std::io::{IsTerminal, Read};

use distkv_client::code::{module_prefix, proc_prefix};
use distkv_client::errors::ErrorLog;
use distkv_client::{Client, ConnectOptions, TreeOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

use crate::Failure;
use crate::args::{CodeCommand, ErrorCommand, ModuleCommand};
use crate::data::client_failure;
use crate::output;

fn under(prefix: Path, words: &[String]) -> Path {
    let mut p = prefix;
    p.0.extend(words.iter().map(|w| PathElem::Str(w.clone())));
    p
}

fn script(file: Option<&std::path::Path>) -> Result<String, Failure> {
    match file {
        Some(f) => {
            std::fs::read_to_string(f).map_err(|e| Failure::error(format!("{}: {e}", f.display())))
        }
        None => {
            if std::io::stdin().is_terminal() {
                output::info("Enter the Rhai script to run here.");
            }
            let mut s = String::new();
            std::io::stdin()
                .take(1 << 20)
                .read_to_string(&mut s)
                .map_err(|e| Failure::error(format!("stdin: {e}")))?;
            Ok(s)
        }
    }
}

async fn connect(opts: &ConnectOptions) -> Result<Client, Failure> {
    Client::connect_with(opts)
        .await
        .map_err(|e| client_failure(e, opts))
}

/// Runs a code command.
pub async fn run(opts: ConnectOptions, cmd: CodeCommand) -> Result<(), Failure> {
    let fail = |e| client_failure(e, &opts);
    match cmd {
        CodeCommand::Set {
            script: file,
            vars,
            is_async,
            path,
        } => {
            let code = script(file.as_deref())?;
            let record = MapBuilder::new()
                .set("code", code)
                .set(
                    "is_async",
                    if is_async {
                        Value::Bool(true)
                    } else {
                        Value::Nil
                    },
                )
                .set(
                    "vars",
                    Value::Array(vars.into_iter().map(Value::Str).collect()),
                )
                .build();
            let client = connect(&opts).await?;
            client
                .set(&under(proc_prefix(), &path), record)
                .await
                .map_err(fail)?;
        }
        CodeCommand::Get {
            script: file,
            yaml,
            path,
        } => {
            let client = connect(&opts).await?;
            let v = client
                .get(&under(proc_prefix(), &path))
                .await
                .map_err(fail)?
                .ok_or_else(|| Failure::error(format!("No code at {}", path.join(" "))))?;
            let mut shown = v.clone();
            if let Some(f) = file {
                let code = v.get("code").and_then(Value::as_str).unwrap_or("");
                std::fs::write(&f, code)
                    .map_err(|e| Failure::error(format!("{}: {e}", f.display())))?;
                if let Value::Map(m) = &mut shown {
                    m.retain(|(k, _)| k.as_str() != Some("code"));
                }
            }
            if yaml {
                output::print_yaml(&shown);
            } else {
                output::print_repr(&shown);
            }
        }
        CodeCommand::List => {
            let client = connect(&opts).await?;
            let prefix = proc_prefix();
            let mut s = match client.get_tree(&prefix, &TreeOptions::default()).await {
                Ok(s) => s,
                Err(e) => return Err(fail(e)),
            };
            while let Some(item) = s.next().await {
                let Ok(item) = item else { break };
                if item.value.as_ref().and_then(|v| v.get("code")).is_some() {
                    let rel = Path(item.path.elems()[prefix.len()..].to_vec());
                    output::print_line(&distkv_cli::render::path_words(&rel));
                }
            }
        }
        CodeCommand::Delete { path } => {
            let client = connect(&opts).await?;
            client
                .delete(&under(proc_prefix(), &path))
                .await
                .map_err(fail)?;
        }
        CodeCommand::Module { cmd } => match cmd {
            ModuleCommand::Set { script: file, path } => {
                let code = script(file.as_deref())?;
                let client = connect(&opts).await?;
                let record = MapBuilder::new().set("code", code).build();
                client
                    .set(&under(module_prefix(), &path), record)
                    .await
                    .map_err(fail)?;
            }
            ModuleCommand::Get { path } => {
                let client = connect(&opts).await?;
                let v = client
                    .get(&under(module_prefix(), &path))
                    .await
                    .map_err(fail)?
                    .ok_or_else(|| Failure::error(format!("No module at {}", path.join(" "))))?;
                output::print_repr(&v);
            }
        },
    }
    Ok(())
}

/// Runs an error command.
pub async fn errors(opts: ConnectOptions, cmd: ErrorCommand) -> Result<(), Failure> {
    let fail = |e| client_failure(e, &opts);
    let client = connect(&opts).await?;
    let log = ErrorLog::new(client, "cli");
    match cmd {
        ErrorCommand::List { all } => {
            for r in log.list(all).await.map_err(fail)? {
                output::print_line(&format!(
                    "{} {}: {} ({}×{})",
                    r.subsystem(),
                    distkv_cli::render::path_words(&r.path()),
                    r.message(),
                    r.count(),
                    if r.is_open() { "" } else { ", resolved" }
                ));
            }
        }
        ErrorCommand::Dump { all, subsystem } => {
            let mut list = Vec::new();
            for r in log.list(all).await.map_err(fail)? {
                if subsystem.as_deref().is_some_and(|s| s != r.subsystem()) {
                    continue;
                }
                list.push(Value::Map(vec![(
                    Value::Str(distkv_cli::render::path_words(&r.at)),
                    r.value,
                )]));
            }
            output::print_yaml(&Value::Array(list));
        }
        ErrorCommand::Resolve { subsystem, path } => {
            let target = Path::from_strs(&path);
            let mut n = 0;
            for r in log.list(false).await.map_err(fail)? {
                if r.path() == target && subsystem.as_deref().is_none_or(|s| s == r.subsystem()) {
                    log.resolve(&r).await.map_err(fail)?;
                    n += 1;
                }
            }
            if n == 0 {
                return Err(Failure::error(format!(
                    "No open error for {}",
                    path.join(" ")
                )));
            }
        }
    }
    Ok(())
}
