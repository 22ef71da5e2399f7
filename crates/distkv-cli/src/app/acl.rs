//! `distkv client acl`: ACLs are entries below `None acl NAME`; each
//! command is one call of `distkv_client::acl`.

use distkv_client::acl::FlagChange;
use distkv_client::{Client, ClientError, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};

use crate::app::Failure;
use crate::app::args::AclCommand;
use crate::app::data::client_failure;
use crate::app::output;

/// Runs an ACL command: parse, one call of the client library, print.
pub async fn run(opts: ConnectOptions, cmd: AclCommand) -> Result<(), Failure> {
    // Flags are checked before connecting.
    let change = match &cmd {
        AclCommand::Set { modes, .. } => {
            Some(FlagChange::parse(modes).map_err(|e| Failure::error(e.to_string()))?)
        }
        _ => None,
    };
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e: ClientError| client_failure(e, &opts);
    let words = |w: &[String]| Path(w.iter().map(|w| PathElem::from(w.as_str())).collect());
    match cmd {
        AclCommand::List { yaml } => {
            let names = client.acl_names().await.map_err(fail)?;
            if yaml {
                output::print_yaml(&Value::Array(names.into()));
            } else {
                for n in names {
                    output::print_line(n.as_str().unwrap_or(&n.to_string()));
                }
            }
        }
        AclCommand::Dump { yaml, name, path } => {
            let entries = client
                .acl_entries(&name, &words(&path))
                .await
                .map_err(fail)?;
            let mut list = Vec::new();
            for (rel, v) in entries {
                let mut shown: Vec<String> = path.clone();
                shown.extend(rel.elems().iter().map(|e| match e.as_str() {
                    Some(s) => s.to_owned(),
                    None => e.to_string(),
                }));
                let shown = shown.join(" ");
                if yaml {
                    list.push(Value::Map(vec![(Value::from(shown), v)].into()));
                } else {
                    output::print_line(&format!("{shown}: {}", crate::repr::repr(&v)));
                }
            }
            if yaml {
                output::print_yaml(&Value::Array(list.into()));
            }
        }
        AclCommand::Get { name, path } => {
            let flags = client.acl_get(&name, &words(&path)).await.map_err(fail)?;
            output::print_line(flags.as_deref().unwrap_or("-"));
        }
        AclCommand::Set {
            verbose,
            yaml,
            name,
            path,
            ..
        } => {
            let Some(change) = change else {
                return Ok(());
            };
            let done = client
                .acl_update(&name, &words(&path), &change)
                .await
                .map_err(fail)?;
            let show = |v: &Option<String>| v.as_deref().map_or(Value::Nil, Value::from);
            if yaml {
                output::print_yaml(
                    &MapBuilder::new()
                        .set("old", show(&done.old))
                        .set("new", show(&done.new))
                        .build(),
                );
            } else if verbose {
                output::print_repr(
                    &MapBuilder::new()
                        .set("old", show(&done.old))
                        .set("new", show(&done.new))
                        .set(
                            "chain",
                            done.reply.get("chain").cloned().unwrap_or(Value::Nil),
                        )
                        .set(
                            "tock",
                            done.reply.get("tock").cloned().unwrap_or(Value::Nil),
                        )
                        .build(),
                );
            }
        }
        AclCommand::Test {
            verbose,
            mode,
            acl,
            path,
        } => {
            let r = client
                .acl_test(&Path::from_strs(&path), mode.as_deref(), acl.as_deref())
                .await
                .map_err(fail)?;
            if verbose {
                output::print_repr(&r);
            } else {
                match r.get("access") {
                    Some(Value::Bool(true)) => output::print_line("+"),
                    Some(Value::Str(s)) => output::print_line(s),
                    _ => output::print_line("-"),
                }
            }
        }
    }
    Ok(())
}
