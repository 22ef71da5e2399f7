//! `distkv client type` and `codec`: each command is one call of
//! `distkv_client::validation`.

use crate::literal;
use distkv_client::validation::{CodecRecord, TypeRecord};
use distkv_client::{Client, ConnectOptions};
use distkv_tree::{Path, PathElem, Value};

use crate::app::Failure;
use crate::app::args::TypeCommand;
use crate::app::data::client_failure;
use crate::app::output;
use crate::app::script_input;

/// Words as a path (each a string element, as typed).
fn words(w: &[String]) -> Path {
    Path(w.iter().map(|w| PathElem::from(w.as_str())).collect())
}

/// Words as a path of text elements (type and codec names).
fn names(w: &[String]) -> Path {
    Path(w.iter().map(|w| PathElem::Str(w.as_str().into())).collect())
}

fn read(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::error(format!("{}: {e}", path.display())))
}

/// Python literals.
fn literals(items: &[String]) -> Result<Vec<Value>, Failure> {
    items
        .iter()
        .map(|t| literal::parse(t).map_err(|e| Failure::error(e.to_string())))
        .collect()
}

/// Prints the system record `None KIND PATH…` (a Python literal, or YAML).
async fn print_record(
    client: &Client,
    kind: &str,
    path: &[String],
    yaml: bool,
) -> Result<(), distkv_client::ClientError> {
    let v = client.system_record(kind, &words(path)).await?;
    if yaml {
        output::print_yaml(&v);
    } else {
        output::print_repr(&v);
    }
    Ok(())
}

/// Runs a type command: parse, one call of the client library, print.
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
            let schema = match schema.as_deref() {
                Some(f) => {
                    let text = read(f)?;
                    crate::yaml::load(&text)
                        .map_err(|e| Failure::error(format!("{}: {e}", f.display())))?
                }
                None => Value::Nil,
            };
            let code = match (script.as_deref(), &schema) {
                (Some(f), _) => Some(read(f)?),
                // neither file: the check on standard input, as the
                // original's tutorial enters it
                (None, Value::Nil) => {
                    Some(script_input::whole("to check 'value'")?).filter(|s| !s.trim().is_empty())
                }
                (None, _) => None,
            };
            let record = TypeRecord {
                good: literals(&good)?,
                bad: literals(&bad)?,
                code,
                schema,
            };
            client
                .type_set(&words(&path), &record)
                .await
                .map_err(fail)?;
        }
        TypeCommand::List { yaml, path } => {
            print_list(&client, "type", &path, yaml)
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
            let at = words(&path);
            if delete {
                client.type_match_delete(&at).await.map_err(fail)?;
            } else if types.is_empty() {
                let bound = client.type_match(&at).await.map_err(fail)?;
                let shown: Vec<String> = bound
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                output::print_line(&shown.join(" "));
            } else {
                client
                    .type_match_set(&at, &names(&types))
                    .await
                    .map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// Runs a codec command: parse, one call of the client library, print.
pub async fn run_codec(
    opts: ConnectOptions,
    cmd: crate::app::args::CodecCommand,
) -> Result<(), Failure> {
    use crate::app::args::CodecCommand;
    let pairs = |items: &[String]| -> Result<Vec<(Value, Value)>, Failure> {
        let vals = literals(items)?;
        if vals.len() % 2 != 0 {
            return Err(Failure::usage("-i and -o take pairs of values"));
        }
        Ok(vals
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect())
    };
    // Arguments are checked (and files read) before connecting.
    if let CodecCommand::Convert {
        codec,
        delete: false,
        list: false,
        ..
    } = &cmd
    {
        if codec.is_empty() {
            return Err(Failure::usage(
                "Give the codec (-c NAME…), or -d to delete, or -l to list",
            ));
        }
    }
    let record = match &cmd {
        CodecCommand::Set {
            encode,
            decode,
            input,
            output,
            ..
        } => {
            let (encode, decode) = match (encode.as_deref(), decode.as_deref()) {
                // neither file: both scripts on standard input, the
                // encoder ending at the first empty line
                (None, None) => (
                    Some(script_input::paragraph("to encode 'value'")?),
                    Some(script_input::whole("to decode 'value'")?),
                ),
                (e, d) => (e.map(read).transpose()?, d.map(read).transpose()?),
            };
            let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
            Some(CodecRecord {
                encode: blank(encode),
                decode: blank(decode),
                input: pairs(input)?,
                output: pairs(output)?,
            })
        }
        _ => None,
    };
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e| client_failure(e, &opts);
    match cmd {
        CodecCommand::Set { path, .. } => {
            if let Some(r) = record {
                client.codec_set(&words(&path), &r).await.map_err(fail)?;
            }
        }
        CodecCommand::Convert {
            codec,
            delete,
            list,
            name,
            path,
        } => {
            if list {
                let found = client
                    .converters(name.as_deref(), &words(&path))
                    .await
                    .map_err(fail)?;
                for c in found {
                    let at = crate::render::path_words(&c.path);
                    let codec = crate::render::path_words(&c.codec);
                    output::print_line(&format!("{} {at}: {codec}", c.group));
                }
                return Ok(());
            }
            let Some(name) = name else {
                return Err(Failure::usage("NAME is required without -l"));
            };
            if delete {
                client
                    .converter_delete(&name, &words(&path))
                    .await
                    .map_err(fail)?;
            } else {
                client
                    .converter_set(&name, &words(&path), &names(&codec))
                    .await
                    .map_err(fail)?;
            }
        }
        CodecCommand::List { yaml, path } => {
            print_list(&client, "codec", &path, yaml)
                .await
                .map_err(fail)?;
        }
        CodecCommand::Get { yaml, path } => {
            print_record(&client, "codec", &path, yaml)
                .await
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// Prints the records `None KIND …` below `path`: their paths, one per
/// line, or with `yaml` a YAML list of `{path: record}`.
async fn print_list(
    client: &distkv_client::Client,
    kind: &str,
    path: &[String],
    yaml: bool,
) -> Result<(), distkv_client::ClientError> {
    let records = client.system_records(kind, &words(path)).await?;
    if yaml {
        let list = records
            .into_iter()
            .map(|(p, v)| Value::Map(vec![(Value::from(crate::render::path_words(&p)), v)].into()))
            .collect();
        output::print_yaml(&Value::Array(list));
    } else {
        for (p, _) in records {
            output::print_line(&crate::render::path_words(&p));
        }
    }
    Ok(())
}
