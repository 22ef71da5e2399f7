//! `distkv client acl`: ACLs are entries below `None acl NAME`; these
//! commands read and write them with the internal actions.

use distkv_acl::{AclError, AclFlags};
use distkv_client::{Client, ClientError, ConnectOptions};
use distkv_proto::PathLengthener;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

use crate::app::Failure;
use crate::app::args::AclCommand;
use crate::app::data::client_failure;
use crate::app::output;

/// `acl NAME PATH…` relative to the system subtree.
fn acl_path(name: &str, words: &[String]) -> Path {
    let mut p = vec![PathElem::Str("acl".into()), PathElem::Str(name.into())];
    p.extend(words.iter().map(|w| PathElem::from(w.as_str())));
    Path(p)
}

fn internal(action: &str, path: &Path) -> MapBuilder {
    MapBuilder::new()
        .set("action", format!("{action}_internal"))
        .set("path", path.to_value())
}

/// The new flags for MODES given the old ones; `None`: delete the entry.
fn new_flags(modes: &str, old: Option<&str>) -> Result<Option<String>, Failure> {
    let bad = |e: AclError| Failure::error(e.to_string());
    let old = AclFlags::parse(old.unwrap_or("")).unwrap_or_default();
    Ok(match modes {
        "-" => None,
        m if m.starts_with('+') => Some(
            old.union(AclFlags::parse(&m[1..]).map_err(bad)?)
                .to_string(),
        ),
        m if m.starts_with('-') => Some(
            old.without(AclFlags::parse(&m[1..]).map_err(bad)?)
                .to_string(),
        ),
        m => Some(AclFlags::parse(m).map_err(bad)?.to_string()),
    })
}

/// Runs an ACL command.
pub async fn run(opts: ConnectOptions, cmd: AclCommand) -> Result<(), Failure> {
    // Flags are checked before connecting.
    if let AclCommand::Set { modes, .. } = &cmd {
        new_flags(modes, None)?;
    }
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e: ClientError| client_failure(e, &opts);
    match cmd {
        AclCommand::List { yaml } => {
            let path = Path(vec![PathElem::Str("acl".into())]);
            let r = client
                .request(internal("enumerate", &path).set("empty", true))
                .await
                .map_err(fail)?;
            let names: Vec<Value> = r
                .get("result")
                .and_then(Value::as_array)
                .unwrap_or(&[])
                .to_vec();
            if yaml {
                output::print_yaml(&Value::Array(names));
            } else {
                for n in names {
                    output::print_line(n.as_str().unwrap_or(&n.to_string()));
                }
            }
        }
        AclCommand::Dump { yaml, name, path } => {
            let start = acl_path(&name, &path);
            let mut s = client
                .request_stream(internal("get_tree", &start).set("nchain", 0))
                .await
                .map_err(fail)?;
            let mut longer = PathLengthener::new(Path::root());
            let mut list = Vec::new();
            while let Some(item) = s.next().await {
                let item = item.map_err(fail)?;
                let full = longer
                    .lengthen_item(&item)
                    .map_err(|e| Failure::error(e.to_string()))?;
                let Some(v) = item.get("value") else { continue };
                let mut words: Vec<String> = path.clone();
                words.extend(full.elems().iter().map(|e| match e.as_str() {
                    Some(s) => s.to_owned(),
                    None => e.to_string(),
                }));
                let shown = words.join(" ");
                if yaml {
                    list.push(Value::Map(vec![(Value::from(shown), v.clone())]));
                } else {
                    output::print_line(&format!("{shown}: {}", crate::repr::repr(v)));
                }
            }
            if yaml {
                output::print_yaml(&Value::Array(list));
            }
        }
        AclCommand::Get { name, path } => {
            let r = client
                .request(internal("get_value", &acl_path(&name, &path)))
                .await
                .map_err(fail)?;
            match r.get("value").and_then(Value::as_str) {
                Some(f) => output::print_line(f),
                None => output::print_line("-"),
            }
        }
        AclCommand::Set {
            verbose,
            yaml,
            modes,
            name,
            path,
        } => {
            let p = acl_path(&name, &path);
            let old = client
                .request(internal("get_value", &p).set("nchain", 1))
                .await
                .map_err(fail)?;
            let old_flags = old.get("value").and_then(Value::as_str).map(str::to_owned);
            let new = new_flags(&modes, old_flags.as_deref())?;
            let chain = match old.get("chain") {
                Some(Value::Map(c)) if old_flags.is_some() => Value::Map(c.clone()),
                _ => Value::Nil,
            };
            let reply = match &new {
                Some(f) => {
                    client
                        .request(
                            internal("set_value", &p)
                                .set("value", f.as_str())
                                .set("chain", chain.clone())
                                .set("nchain", 1),
                        )
                        .await
                }
                None => {
                    client
                        .request(
                            internal("delete_value", &p)
                                .set("chain", chain.clone())
                                .set("nchain", 1),
                        )
                        .await
                }
            }
            .map_err(fail)?;
            let show = |v: &Option<String>| v.as_deref().map_or(Value::Nil, Value::from);
            if yaml {
                output::print_yaml(
                    &MapBuilder::new()
                        .set("old", show(&old_flags))
                        .set("new", show(&new))
                        .build(),
                );
            } else if verbose {
                output::print_repr(
                    &MapBuilder::new()
                        .set("old", show(&old_flags))
                        .set("new", show(&new))
                        .set("chain", reply.get("chain").cloned().unwrap_or(Value::Nil))
                        .set("tock", reply.get("tock").cloned().unwrap_or(Value::Nil))
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
            let mut m = MapBuilder::new()
                .set("action", "test_acl")
                .set("path", Path::from_strs(&path).to_value());
            if let Some(mode) = mode {
                m.push("mode", mode);
            }
            if let Some(a) = acl {
                m.push("acl", a);
            }
            let r = client.request(m).await.map_err(fail)?;
            if verbose {
                let mut shown = MapBuilder::new();
                for (k, v) in r.as_map().unwrap_or(&[]) {
                    if let Some(k) = k.as_str().filter(|k| *k != "seq") {
                        shown.push(k, v.clone());
                    }
                }
                output::print_repr(&shown.build());
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
