//! `distkv client type`: types (`None type …`) and matches
//! (`None match …`), written with the internal actions.

use crate::literal;
use distkv_client::{Client, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};

use crate::app::Failure;
use crate::app::args::TypeCommand;
use crate::app::data::client_failure;
use crate::app::output;

fn system_path(kind: &str, words: &[String]) -> Path {
    let mut p = vec![PathElem::Str(kind.into())];
    p.extend(words.iter().map(|w| PathElem::from(w.as_str())));
    Path(p)
}

fn read(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::error(format!("{}: {e}", path.display())))
}

/// Prints the system record `None KIND PATH…` (a Python literal, or YAML).
async fn print_record(
    client: &Client,
    kind: &str,
    path: &[String],
    yaml: bool,
) -> Result<(), distkv_client::ClientError> {
    let r = client
        .request(
            MapBuilder::new()
                .set("action", "get_value_internal")
                .set("path", system_path(kind, path).to_value()),
        )
        .await?;
    let v = r.get("value").cloned().unwrap_or(Value::Nil);
    if yaml {
        output::print_yaml(&v);
    } else {
        output::print_repr(&v);
    }
    Ok(())
}

/// Runs a type command.
pub async fn run(opts: ConnectOptions, cmd: TypeCommand) -> Result<(), Failure> {
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e| client_failure(e, &opts);
    match cmd {
        TypeCommand::Set {
            good,
            bad,
            script,
            schema,
            path,
        } => {
            let values = |items: &[String]| -> Result<Value, Failure> {
                Ok(Value::Array(
                    items
                        .iter()
                        .map(|t| literal::parse(t).map_err(|e| Failure::error(e.to_string())))
                        .collect::<Result<_, _>>()?,
                ))
            };
            let code = script.as_deref().map(read).transpose()?;
            let schema = match schema.as_deref() {
                Some(f) => {
                    let text = read(f)?;
                    crate::yaml::load(&text)
                        .map_err(|e| Failure::error(format!("{}: {e}", f.display())))?
                }
                None => Value::Nil,
            };
            let record = MapBuilder::new()
                .set("good", values(&good)?)
                .set("bad", values(&bad)?)
                .set("code", code.map_or(Value::Nil, Value::from))
                .set("schema", schema)
                .build();
            client
                .request(
                    MapBuilder::new()
                        .set("action", "set_value_internal")
                        .set("path", system_path("type", &path).to_value())
                        .set("value", record),
                )
                .await
                .map_err(fail)?;
        }
        TypeCommand::Get { yaml, path } => {
            print_record(&client, "type", &path, yaml)
                .await
                .map_err(fail)?;
        }
        TypeCommand::Match {
            types,
            delete,
            path,
        } => {
            let p = system_path("match", &path).to_value();
            if delete {
                client
                    .request(
                        MapBuilder::new()
                            .set("action", "delete_value_internal")
                            .set("path", p),
                    )
                    .await
                    .map_err(fail)?;
            } else if types.is_empty() {
                let r = client
                    .request(
                        MapBuilder::new()
                            .set("action", "get_value_internal")
                            .set("path", p),
                    )
                    .await
                    .map_err(fail)?;
                let words: Vec<String> = r
                    .get("value")
                    .and_then(|v| v.get("type"))
                    .and_then(Value::as_array)
                    .unwrap_or(&[])
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                output::print_line(&words.join(" "));
            } else {
                let t = Value::Array(types.into_iter().map(Value::from).collect());
                client
                    .request(
                        MapBuilder::new()
                            .set("action", "set_value_internal")
                            .set("path", p)
                            .set("value", MapBuilder::new().set("type", t).build()),
                    )
                    .await
                    .map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// Runs a codec command.
pub async fn run_codec(
    opts: ConnectOptions,
    cmd: crate::app::args::CodecCommand,
) -> Result<(), Failure> {
    use crate::app::args::CodecCommand;
    let pairs = |items: &[String]| -> Result<Value, Failure> {
        let vals: Vec<Value> = items
            .iter()
            .map(|t| literal::parse(t).map_err(|e| Failure::error(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Value::Array(
            vals.chunks(2).map(|c| Value::Array(c.to_vec())).collect(),
        ))
    };
    // Arguments are checked before connecting.
    let request = match &cmd {
        CodecCommand::Set {
            encode,
            decode,
            input,
            output,
            path,
        } => {
            let code = |f: &Option<std::path::PathBuf>| -> Result<Value, Failure> {
                Ok(f.as_deref()
                    .map(read)
                    .transpose()?
                    .map_or(Value::Nil, Value::from))
            };
            let record = MapBuilder::new()
                .set("encode", code(encode)?)
                .set("decode", code(decode)?)
                .set("in", pairs(input)?)
                .set("out", pairs(output)?)
                .build();
            Some(
                MapBuilder::new()
                    .set("action", "set_value_internal")
                    .set("path", system_path("codec", path).to_value())
                    .set("value", record),
            )
        }
        CodecCommand::Convert {
            codec,
            delete,
            name,
            path,
        } => {
            let mut words = vec![name.clone()];
            words.extend(path.iter().cloned());
            let p = system_path("conv", &words).to_value();
            Some(if *delete {
                MapBuilder::new()
                    .set("action", "delete_value_internal")
                    .set("path", p)
            } else {
                let c = Value::Array(codec.iter().cloned().map(Value::from).collect());
                MapBuilder::new()
                    .set("action", "set_value_internal")
                    .set("path", p)
                    .set("value", MapBuilder::new().set("codec", c).build())
            })
        }
        CodecCommand::Get { .. } => None,
    };
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e| client_failure(e, &opts);
    match (request, cmd) {
        (Some(req), _) => {
            client.request(req).await.map_err(fail)?;
        }
        (None, CodecCommand::Get { yaml, path }) => {
            print_record(&client, "codec", &path, yaml)
                .await
                .map_err(fail)?;
        }
        (None, _) => {}
    }
    Ok(())
}
