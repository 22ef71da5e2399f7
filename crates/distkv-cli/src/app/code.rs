//! `distkv client code` and `distkv client error`.

use distkv_client::error_log::{ErrorLog, ErrorQuery, ErrorReport};
use distkv_client::jobs::{JobChange, JobDeleted, JobError};
use distkv_client::procedures::Procedure;
use distkv_client::{Client, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value};

use crate::app::Failure;
use crate::app::args::{CodeCommand, ErrorCommand, ModuleCommand};
use crate::app::data::client_failure;
use crate::app::output;

fn script(file: Option<&std::path::Path>) -> Result<String, Failure> {
    match file {
        Some(f) => {
            std::fs::read_to_string(f).map_err(|e| Failure::error(format!("{}: {e}", f.display())))
        }
        None => crate::app::script_input::whole("to run here"),
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
            let proc = Procedure {
                is_async,
                ..Procedure::new(script(file.as_deref())?).with_vars(vars)
            };
            let client = connect(&opts).await?;
            client
                .proc_set(&Path::from_strs(&path), &proc)
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
                .proc_get(&Path::from_strs(&path))
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
            for name in client.proc_names().await.map_err(fail)? {
                output::print_line(&crate::render::path_words(&name));
            }
        }
        CodeCommand::Delete { path } => {
            let client = connect(&opts).await?;
            client
                .proc_delete(&Path::from_strs(&path))
                .await
                .map_err(fail)?;
        }
        CodeCommand::Module { cmd } => match cmd {
            ModuleCommand::Set { script: file, path } => {
                let code = script(file.as_deref())?;
                let client = connect(&opts).await?;
                client
                    .module_set(&Path::from_strs(&path), &code)
                    .await
                    .map_err(fail)?;
            }
            ModuleCommand::Get { path } => {
                let client = connect(&opts).await?;
                let v = client
                    .module_get(&Path::from_strs(&path))
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
        ErrorCommand::List {
            all,
            subsystem,
            node,
            yaml,
            as_dict,
            path,
        } => {
            let below = Path::from_strs(&path);
            let query = ErrorQuery {
                all,
                subsystem,
                node,
                below: below.clone(),
            };
            let reports = log.query(&query).await.map_err(fail)?;
            if let Some(key) = as_dict {
                let mut d = crate::render::DictBuilder::new();
                let mut at: Vec<(Path, Vec<(Value, Value)>)> = Vec::new();
                for r in reports {
                    // nested by path below the one asked for, as the
                    // original shortens it
                    let full = r.record.path();
                    let p = Path(full.elems().get(below.len()..).unwrap_or_default().to_vec());
                    let sub = Value::from(r.record.subsystem());
                    let shown = report_value(r);
                    match at.iter_mut().find(|(q, _)| *q == p) {
                        Some((_, subs)) => subs.push((sub, shown)),
                        None => at.push((p, vec![(sub, shown)])),
                    }
                }
                for (p, subs) in at {
                    d.add(
                        &p,
                        vec![(Value::from(key.as_str()), Value::Map(subs.into()))],
                    );
                }
                output::print_yaml(&d.build());
            } else if yaml {
                let list = reports.into_iter().map(report_value).collect();
                output::print_yaml(&Value::Array(list));
            } else {
                for r in reports {
                    let r = r.record;
                    output::print_line(&format!(
                        "{} {}: {} ({}×{})",
                        r.subsystem(),
                        crate::render::path_words(&r.path()),
                        r.message(),
                        r.count(),
                        if r.is_open() { "" } else { ", resolved" }
                    ));
                }
            }
        }
        ErrorCommand::Dump { all, subsystem } => {
            let mut list = Vec::new();
            for r in log.list(all).await.map_err(fail)? {
                if subsystem.as_deref().is_some_and(|s| s != r.subsystem()) {
                    continue;
                }
                list.push(Value::Map(
                    vec![(Value::from(crate::render::path_words(&r.at)), r.value)].into(),
                ));
            }
            output::print_yaml(&Value::Array(list.into()));
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

/// An error record for YAML output: its fields, where it is stored
/// (`at`, path words) and the reporting nodes' details (`details`).
fn report_value(r: ErrorReport) -> Value {
    let mut fields = match r.record.value {
        Value::Map(m) => m,
        other => vec![(Value::from("value"), other)].into(),
    };
    fields.push((
        Value::from("at"),
        Value::from(crate::render::path_words(&r.record.at)),
    ));
    if !r.details.is_empty() {
        let details = r
            .details
            .into_iter()
            .map(|(n, v)| (Value::from(n), v))
            .collect();
        fields.push((Value::from("details"), Value::Map(details)));
    }
    Value::Map(fields)
}

/// Runs a `run` command.
pub async fn jobs(
    opts: ConnectOptions,
    args: crate::app::args::RunArgs,
    limits: distkv_code::Limits,
) -> Result<(), Failure> {
    use crate::app::args::RunCommand;
    use distkv_client::jobs::{JobScope, RunnerKind};
    use distkv_client::runner::RunnerConfig;
    let fail = |e| client_failure(e, &opts);
    let kind = match (args.all_nodes, args.node) {
        (true, n) => RunnerKind::All(n.unwrap_or_default()),
        (false, Some(n)) => RunnerKind::Single(n),
        (false, None) => RunnerKind::Any,
    };
    // `-g -` lists the nodes that have jobs of their own, and only that
    let nodes_only = args.group.as_deref() == Some("-");
    if nodes_only && kind != RunnerKind::Any {
        return Err(Failure::usage(
            "'-g -' doesn't make sense with '-n' or '-A'",
        ));
    }
    if nodes_only && !matches!(args.cmd, RunCommand::Info) {
        return Err(Failure::usage(
            "'-g -' only makes sense with the 'info' command",
        ));
    }
    if let Some(g) = args.group.as_deref().filter(|_| !nodes_only) {
        if g.is_empty() || g.contains('.') {
            return Err(Failure::usage(format!(
                "'{g}' is not a group name (not empty, no '.')"
            )));
        }
    }
    let scope = JobScope::new(kind.clone(), args.group.as_deref());
    let client = connect(&opts).await?;
    match args.cmd {
        RunCommand::All { name, cycle } => {
            let name = name.unwrap_or_else(|| {
                let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
                format!("{}-{}", host.trim(), std::process::id())
            });
            let kind = match kind {
                RunnerKind::All(_) => RunnerKind::All(name.clone()),
                k => k,
            };
            let cfg = RunnerConfig {
                name,
                scope: JobScope { kind, ..scope },
                cycle: std::time::Duration::from_secs_f64(cycle.clamp(0.1, 3600.0)),
                limits,
                // what jobs print shows on the runner's output
                print: Some(distkv_client::runner::PrintSink(std::sync::Arc::new(
                    |_, line| output::print_line(line),
                ))),
            };
            distkv_client::runner::run(client, cfg)
                .await
                .map_err(fail)?;
        }
        RunCommand::Set(set) => {
            let crate::app::args::JobSetArgs {
                code,
                eval,
                backoff,
                time,
                repeat,
                delay,
                info,
                ok,
                var,
                eval_var,
                path_var,
                path,
            } = *set;
            let code = match code {
                None => None,
                Some(c) if eval => Some(
                    match crate::literal::parse(&c).map_err(|e| Failure::usage(e.to_string()))? {
                        Value::Array(a) => a.into(),
                        other => vec![other],
                    },
                ),
                Some(c) => Some(c.split_whitespace().map(Value::from).collect()),
            };
            let start_in = match time.as_deref() {
                None | Some("-") => None,
                Some("now") => Some(0.0),
                Some(t) => Some(t.parse::<f64>().map_err(|_| {
                    Failure::usage(format!("'{t}' is not a number of seconds or 'now'"))
                })?),
            };
            let mut data = Vec::new();
            for pair in var.chunks(2) {
                if let [name, value] = pair {
                    data.push((name.clone(), Some(Value::from(value.as_str()))));
                }
            }
            for pair in eval_var.chunks(2) {
                if let [name, value] = pair {
                    let v = match value.as_str() {
                        "-" => None,
                        lit => Some(
                            crate::literal::parse(lit)
                                .map_err(|e| Failure::usage(format!("-E {name}: {e}")))?,
                        ),
                    };
                    data.push((name.clone(), v));
                }
            }
            for pair in path_var.chunks(2) {
                if let [name, value] = pair {
                    let p = Path::from_strs(&value.split_whitespace().collect::<Vec<_>>());
                    data.push((name.clone(), Some(p.to_value())));
                }
            }
            let change = JobChange {
                code,
                backoff,
                start_in,
                repeat,
                delay,
                info,
                ok_after: ok,
                clear_target: time.as_deref() == Some("-"),
                data,
            };
            match client
                .job_update(&scope, &Path::from_strs(&path), &change)
                .await
            {
                Ok(()) => {}
                Err(JobError::NoCode) => {
                    return Err(Failure::usage("A new job needs code (-c PATH)"));
                }
                Err(JobError::Client(e)) => return Err(fail(e)),
            }
        }
        RunCommand::Get { path } => {
            match client
                .job_get(&scope, &Path::from_strs(&path))
                .await
                .map_err(fail)?
            {
                Some(v) => output::print_yaml(&v),
                None => return Err(Failure::error("Not found (yet?)")),
            }
        }
        RunCommand::State { result, path } => {
            match client
                .job_state(&scope, &Path::from_strs(&path))
                .await
                .map_err(fail)?
            {
                Some(v) if result => output::print_repr(v.get("result").unwrap_or(&Value::Nil)),
                Some(v) => output::print_yaml(&v),
                None => return Err(Failure::error("Not found (yet?)")),
            }
        }
        RunCommand::Delete { force, path } => {
            let done = client
                .job_delete(&scope, &Path::from_strs(&path), force)
                .await
                .map_err(fail)?;
            match done {
                JobDeleted::Missing | JobDeleted::StillRunning => {
                    return Err(Failure::error(done.to_string()));
                }
                JobDeleted::Deleted | JobDeleted::DeletedUnclean => {
                    output::print_line(&done.to_string());
                }
            }
        }
        RunCommand::Info => {
            let scopes = client.job_scopes().await.map_err(fail)?;
            let mut shown: Vec<&str> = Vec::new();
            for s in &scopes {
                let name = match (&s.kind, &kind) {
                    (RunnerKind::Single(n), _) if nodes_only => n.as_str(),
                    (RunnerKind::Any, RunnerKind::Any)
                    | (RunnerKind::All(_), RunnerKind::All(_))
                        if !nodes_only =>
                    {
                        s.group_name()
                    }
                    (RunnerKind::Single(n), RunnerKind::Single(m)) if n == m => s.group_name(),
                    _ => continue,
                };
                if !shown.contains(&name) {
                    shown.push(name);
                }
            }
            shown.sort_unstable();
            for name in shown {
                output::print_line(name);
            }
        }
        RunCommand::Monitor { count } => {
            if count == Some(0) {
                return Err(Failure::usage("-n needs a number of pings above 0"));
            }
            let topic = scope.topic();
            return crate::app::msg::monitor(&client, &topic, count, &opts, |item| match item {
                distkv_client::msg::MsgItem::Message(m) => match m.data {
                    Ok(data) => {
                        output::print_yaml(&data);
                        output::print_line("---");
                        true
                    }
                    Err(_) => false,
                },
                distkv_client::msg::MsgItem::Ready => false,
            })
            .await;
        }
        RunCommand::List {
            state,
            state_only,
            path,
        } => {
            let below = Path::from_strs(&path);
            let mut list = Vec::new();
            for job in client.job_list(&scope, &below).await.map_err(fail)? {
                let mut full = below.clone();
                full.0.extend(job.path.elems().iter().cloned());
                let name = Value::from(crate::render::path_words(&full));
                let st = job.state.unwrap_or(Value::Nil);
                let shown = if state_only {
                    st
                } else if state {
                    MapBuilder::new()
                        .set("job", job.job)
                        .set("state", st)
                        .build()
                } else {
                    job.job
                };
                list.push(Value::Map(vec![(name, shown)].into()));
            }
            output::print_yaml(&Value::Array(list.into()));
        }
    }
    Ok(())
}

/// Script limits from the configuration's `code` section (checked by
/// distkv-code).
pub fn limits(cfg: &crate::config::Config) -> Result<distkv_code::Limits, Failure> {
    let settings: distkv_code::LimitSettings = cfg
        .section("code")
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut l = distkv_code::Limits::default();
    settings
        .apply(&mut l)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(l)
}
