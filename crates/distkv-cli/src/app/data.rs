//! `distkv client data …`.

use crate::config::Config;
use crate::literal;
use crate::render::{DictBuilder, path_words};
use crate::repr;
use distkv_client::import::{BadRecord, ImportError, ImportReport, MsgpackRecords, Position};
use distkv_client::{Client, ClientError, ConnectOptions, TreeOptions, WatchItem, WriteOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{NodeEvent, Path, PathElem, Value};
use futures_util::StreamExt;

use crate::app::args::{
    ClientArgs, DataCommand, DeleteArgs, GetArgs, ListArgs, SetArgs, UpdateArgs, WatchArgs,
};
use crate::app::output;
use crate::app::{Failure, Ui};

/// Connection settings from the configuration and `client` options.
pub fn connect_options(cfg: &Config, args: &ClientArgs) -> Result<ConnectOptions, Failure> {
    let mut o = ConnectOptions::default();
    let settings: distkv_client::ConnectSettings = cfg
        .section("connect")
        .map_err(|e| Failure::usage(e.to_string()))?;
    settings.apply(&mut o);
    if let Some(h) = &args.host {
        o.host = h.clone();
    }
    if let Some(p) = args.port {
        o.port = p;
    }
    let auth = match &args.auth {
        Some(a) => Some(a.clone()),
        None => cfg.get_str("connect.auth")?,
    };
    if let Some(a) = auth {
        o.login = Some(crate::app::login::credentials(
            &a,
            &distkv_auth::Registry::builtin(),
        )?);
    }
    o.tls = crate::app::tls::client(cfg)?.map(|(config, server_name)| distkv_client::ClientTls {
        config,
        server_name,
    });
    Ok(o)
}

/// Describes a client error the way the original CLI did.
/// The exit status says what kind of failure it was: 3 when the server
/// cannot be reached, 4 for logins, 1 for what the server refused.
pub fn client_failure(e: ClientError, opts: &ConnectOptions) -> Failure {
    use crate::app::{EXIT_CONNECTION, EXIT_LOGIN};
    match e {
        ClientError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Failure::with_code(
                format!(
                    "ConnectionRefusedError: {} Connect call failed ('{}', {})",
                    io.raw_os_error().unwrap_or(111),
                    opts.host,
                    opts.port
                ),
                EXIT_CONNECTION,
            )
        }
        ClientError::Io(io) => Failure::with_code(format!("OSError: {io}"), EXIT_CONNECTION),
        e @ (ClientError::Timeout(_) | ClientError::Tls(_) | ClientError::Closed) => {
            Failure::with_code(e.to_string(), EXIT_CONNECTION)
        }
        e @ ClientError::Auth(_) => Failure::with_code(e.to_string(), EXIT_LOGIN),
        other => Failure::error(other.to_string()),
    }
}

/// How a data command fails.
enum CmdError {
    /// The client library reported an error.
    Client(ClientError),
    /// Already described (or nothing to say): exit with this failure.
    Done(Failure),
}

impl From<ClientError> for CmdError {
    fn from(e: ClientError) -> CmdError {
        CmdError::Client(e)
    }
}

impl From<Failure> for CmdError {
    fn from(f: Failure) -> CmdError {
        CmdError::Done(f)
    }
}

/// The path named by the command line's words. A word is a string
/// element, except one starting with `:`, which is typed: `:t`, `:f`
/// (True, False), `:n` (None), `:e` (the empty string), `::…` (a string
/// starting with `:`), and otherwise `:` followed by a Python literal, as
/// `-e` evaluates values: `:5` (the integer), `:-5`, `:5.5`, `:'5'` (the
/// string), `:b'x'` (bytes).
fn words_to_path(words: &[String]) -> Result<Path, Failure> {
    words
        .iter()
        .map(|w| typed_elem(w))
        .collect::<Result<Vec<_>, _>>()
        .map(Path)
}

fn typed_elem(word: &str) -> Result<PathElem, Failure> {
    let Some(rest) = word.strip_prefix(':') else {
        return Ok(PathElem::Str(word.into()));
    };
    let value = match rest {
        "t" => Value::Bool(true),
        "f" => Value::Bool(false),
        "n" => Value::Nil,
        "e" => Value::from(""),
        _ if rest.starts_with(':') => Value::from(rest),
        "" => {
            return Err(Failure::usage(
                "path element ':' names no value (write '::' for the string ':')",
            ));
        }
        _ => literal::parse(rest)
            .map_err(|e| Failure::usage(format!("path element {word:?}: {e}")))?,
    };
    PathElem::from_value(value).map_err(|e| {
        Failure::usage(format!(
            "path element {word:?} is not a key: {e} (keys are strings, numbers, bools, None or bytes)"
        ))
    })
}

fn value_arg(text: &str, eval: bool) -> Result<Value, Failure> {
    if eval {
        Ok(literal::parse(text)?)
    } else {
        Ok(Value::from(text))
    }
}

fn last_arg(last: &Option<Vec<String>>) -> Result<Option<NodeEvent>, Failure> {
    match last.as_deref() {
        None => Ok(None),
        Some([node, tick]) => {
            let tick: u64 = tick
                .parse()
                .map_err(|_| Failure::usage(format!("'{tick}' is not a tick number")))?;
            Ok(Some(NodeEvent::new(node.as_str(), tick)))
        }
        Some(_) => Err(Failure::usage("--last needs NODE and TICK")),
    }
}

/// The `-p PREV` and `-l NODE TICK` preconditions.
fn preconditions(
    prev: Option<&str>,
    eval: bool,
    last: &Option<Vec<String>>,
) -> Result<(Option<Value>, Option<NodeEvent>), Failure> {
    let prev = prev.map(|p| value_arg(p, eval)).transpose()?;
    Ok((prev, last_arg(last)?))
}

/// Runs one data command.
pub async fn run(ui: Ui, opts: ConnectOptions, cmd: DataCommand) -> Result<(), Failure> {
    // Check arguments before connecting.
    if let DataCommand::Get(a) = &cmd {
        if !a.recursive && (a.mindepth.is_some() || a.maxdepth.is_some()) {
            return Err(Failure::usage(
                "'mindepth' and 'maxdepth' only work with 'recursive'",
            ));
        }
    }
    let mut new_value = None;
    if let DataCommand::Set(a) = &cmd {
        new_value = Some(match &a.value {
            Some(text) => value_arg(text, a.eval)?,
            None if a.stdin => stdin_value(a.eval)?,
            None => {
                return Err(Failure::usage(
                    "You need to provide a value (-v VALUE, or --stdin)",
                ));
            }
        });
        a.prev
            .as_deref()
            .map(|p| value_arg(p, a.eval))
            .transpose()?;
        last_arg(&a.last)?;
    }
    if let DataCommand::Delete(a) = &cmd {
        if a.eval && a.prev.is_none() {
            return Err(Failure::usage(
                "You need to add a value that can be evaluated",
            ));
        }
        preconditions(a.prev.as_deref(), a.eval, &a.last)?;
    }
    // the input is opened (and YAML read) before connecting
    let mut update_input = match &cmd {
        DataCommand::Update(a) => Some(update_source(a)?),
        _ => None,
    };
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let r = match cmd {
        DataCommand::Get(a) if a.recursive => get_tree(&client, a).await,
        DataCommand::Get(a) => get(ui, &client, a).await,
        DataCommand::Set(a) => set(&client, a, new_value.unwrap_or_default()).await,
        DataCommand::Delete(a) => delete(&client, a).await,
        DataCommand::List(a) => list(&client, a).await,
        DataCommand::Watch(a) => watch(&client, a).await,
        DataCommand::Update(a) => update(&client, a, update_input.take()).await,
    };
    r.map_err(|e| match e {
        CmdError::Client(e) => client_failure(e, &opts),
        CmdError::Done(f) => f,
    })
}

type CmdResult = Result<(), CmdError>;

/// Runs one `log` command (prints nothing on success).
/// `distkv client status`: a summary of the server's `get_state`, as YAML
/// (or JSON with `-o json`).
pub async fn status(opts: ConnectOptions) -> Result<(), Failure> {
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let flags = distkv_client::StateQuery {
        nodes: true,
        missing: true,
        stats: true,
        ..Default::default()
    };
    let st = client.get_state(&flags).await?;
    let stats = st.raw.get("stats").cloned().unwrap_or(Value::Nil);
    let stat = |k: &str| stats.get(k).cloned().unwrap_or(Value::Nil);
    let nodes = st
        .nodes
        .iter()
        .map(|(n, t)| {
            let tick = t.map_or(Value::Nil, Value::from_u64);
            (Value::from(n.as_str()), tick)
        })
        .collect();
    let missing = st
        .missing
        .iter()
        .map(|(n, r)| (Value::from(n.as_str()), Value::from(r.to_string().as_str())))
        .collect();
    let replication = distkv_proto::wire::REPLICATION_COUNTERS
        .into_iter()
        .map(|k| (Value::from(k), stat(k)))
        .collect();
    let mut out = MapBuilder::new().set("server", st.node.as_str());
    for k in distkv_proto::wire::STATUS_FIGURES {
        out.push(k, stat(k));
    }
    let out = out
        .set("nodes", Value::Map(nodes))
        .set("missing", Value::Map(missing))
        .set("replication", Value::Map(replication))
        .build();
    if output::format() == output::Format::Json {
        output::print_json(&out);
    } else {
        output::print_yaml(&out);
    }
    Ok(())
}

pub async fn log(opts: ConnectOptions, cmd: crate::app::args::LogCommand) -> Result<(), Failure> {
    use crate::app::args::LogCommand;
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    match cmd {
        LogCommand::Dest { incremental, path } => client.log_to(&path, !incremental).await,
        // every save is full: -f changes nothing
        LogCommand::Save { full: _, path } => client.save(&path).await,
        LogCommand::Stop => client.log_stop().await,
    }
    .map_err(|e| client_failure(e, &opts))
}

fn without_seq(mut v: Value) -> Value {
    if let Value::Map(m) = &mut v {
        m.retain(|(k, _)| k.as_str() != Some("seq"));
    }
    v
}

async fn get(ui: Ui, client: &Client, a: GetArgs) -> CmdResult {
    let path = words_to_path(&a.path)?;
    let reply = client.get_entry(&path, a.chain).await?.raw;
    if a.verbose {
        print_value(&reply, a.yaml);
        return Ok(());
    }
    match reply.get("value") {
        None => {
            if ui.debug >= 1 {
                output::info(&format!("No data at {path}"));
            }
            Err(Failure::silent().into())
        }
        Some(v) if a.yaml || output::format() != output::Format::Default => {
            output::print_yaml(v);
            Ok(())
        }
        Some(v) => {
            output::print_line(&repr::top_level(v));
            Ok(())
        }
    }
}

fn print_value(v: &Value, yaml: bool) {
    if yaml {
        output::print_yaml(v);
    } else {
        output::print_repr(v);
    }
}

async fn get_tree(client: &Client, a: GetArgs) -> CmdResult {
    let path = words_to_path(&a.path)?;
    let opts = TreeOptions {
        nchain: a.chain,
        min_depth: a.mindepth,
        max_depth: a.maxdepth,
        empty: false,
    };
    let mut stream = client.get_tree(&path, &opts).await?;
    let mut dict = a.as_dict.as_ref().map(|_| DictBuilder::new());
    let mut list = Vec::new();
    while let Some(item) = stream.next().await {
        let item = item?;
        if let (Some(d), Some(key)) = (dict.as_mut(), a.as_dict.as_ref()) {
            let mut fields = Vec::new();
            if let Some(v) = &item.value {
                fields.push((Value::from(key.as_str()), v.clone()));
            }
            if a.verbose {
                for (k, v) in item.raw.as_map().unwrap_or(&[]) {
                    let name = k.as_str().unwrap_or("");
                    if !matches!(name, "value" | "path" | "depth" | "seq") {
                        fields.push((k.clone(), v.clone()));
                    }
                }
            } else if let Some(c) = item.raw.get("chain") {
                fields.push((Value::Str("chain".into()), c.clone()));
            }
            d.add(&item.path, fields);
            continue;
        }
        let Some(value) = &item.value else { continue };
        if output::format() == output::Format::Json && !a.verbose {
            output::print_json_entry(&item.path, value);
        } else if a.yaml || output::format() == output::Format::Yaml {
            let shown = if a.verbose {
                without_seq(item.raw.clone())
            } else {
                value.clone()
            };
            list.push(Value::Map(
                vec![(Value::from(path_words(&item.path)), shown)].into(),
            ));
        } else if a.verbose {
            let mut raw = without_seq(item.raw.clone());
            if let Value::Map(m) = &mut raw {
                for (k, v) in m.iter_mut() {
                    if k.as_str() == Some("path") {
                        *v = item.path.to_value();
                    }
                }
                m.retain(|(k, _)| k.as_str() != Some("depth"));
            }
            output::print_repr(&raw);
        } else {
            output::print_line(&format!(
                "{}: {}",
                path_words(&item.path),
                repr::repr(value)
            ));
        }
    }
    if let Some(d) = dict {
        print_value(&d.build(), a.yaml);
    } else if !list.is_empty() || a.yaml {
        output::print_yaml(&Value::Array(list.into()));
    }
    Ok(())
}

fn write_options(
    chain: Option<i64>,
    new: bool,
    last: Option<NodeEvent>,
    prev: Option<Value>,
) -> WriteOptions {
    WriteOptions {
        chain: if new { Some(None) } else { last.map(Some) },
        prev,
        nchain: Some(chain.unwrap_or(0)),
        idem: false,
    }
}

/// The most a value read from standard input may hold (the largest
/// frame a server accepts by default).
const MAX_STDIN: u64 = 16 << 20;

/// The value of `data set --stdin`: standard input without one final
/// newline; a string (a Python literal with `-e`), or bytes when it is not
/// UTF-8.
fn stdin_value(eval: bool) -> Result<Value, Failure> {
    use std::io::Read;
    let mut data = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut data)
        .map_err(|e| Failure::error(format!("cannot read standard input: {e}")))?;
    if data.len() as u64 > MAX_STDIN {
        return Err(Failure::usage(format!(
            "standard input holds more than {MAX_STDIN} bytes"
        )));
    }
    if data.last() == Some(&b'\n') {
        data.pop();
        if data.last() == Some(&b'\r') {
            data.pop();
        }
    }
    match String::from_utf8(data) {
        Ok(text) => value_arg(&text, eval),
        Err(_) if eval => Err(Failure::usage("-e: standard input is not UTF-8 text")),
        Err(e) => Ok(Value::Bytes(e.into_bytes().into())),
    }
}

/// `data set`, with the value already read (from -v or standard input).
async fn set(client: &Client, a: SetArgs, value: Value) -> CmdResult {
    let (prev, last) = preconditions(a.prev.as_deref(), a.eval, &a.last)?;
    let opts = write_options(a.chain, a.new, last, prev);
    let reply = client
        .set_with(&words_to_path(&a.path)?, Some(value), &opts)
        .await?
        .raw;
    if a.yaml {
        output::print_yaml(&reply);
    } else if a.chain.is_some() {
        output::print_repr(&reply);
    }
    Ok(())
}

async fn delete(client: &Client, a: DeleteArgs) -> CmdResult {
    let path = words_to_path(&a.path)?;
    if a.recursive {
        let nchain = a.chain.unwrap_or(0);
        if nchain == 0 {
            output::print_repr(&client.delete_tree_reply(&path).await?);
        } else {
            let mut s = client.delete_tree_changes(&path, nchain).await?;
            while let Some(item) = s.next().await {
                output::print_repr(&item?);
            }
        }
        return Ok(());
    }
    let (prev, last) = preconditions(a.prev.as_deref(), a.eval, &a.last)?;
    let opts = write_options(a.chain, false, last, prev);
    let reply = client.set_with(&path, None, &opts).await?.raw;
    output::print_repr(&reply);
    Ok(())
}

async fn list(client: &Client, a: ListArgs) -> CmdResult {
    let names = client.enumerate(&words_to_path(&a.path)?).await?;
    if a.yaml {
        output::print_yaml(&Value::Array(names.iter().map(|n| n.to_value()).collect()));
    } else {
        for n in names {
            match n.as_str() {
                Some(s) => output::print_line(s),
                None => output::print_line(&n.to_string()),
            }
        }
    }
    Ok(())
}

async fn watch(client: &Client, a: WatchArgs) -> CmdResult {
    let path = words_to_path(&a.path)?;
    let opts = TreeOptions {
        nchain: a.chain,
        ..TreeOptions::default()
    };
    let mut s = client.watch(&path, a.state, &opts).await?;
    while let Some(item) = s.next().await {
        let shown = match item? {
            WatchItem::UpToDate => MapBuilder::new().set("state", "uptodate").build(),
            WatchItem::Entry(e) => {
                let mut raw = without_seq(e.raw);
                if let Value::Map(m) = &mut raw {
                    m.retain(|(k, _)| !matches!(k.as_str(), Some("depth")));
                    for (k, v) in m.iter_mut() {
                        if k.as_str() == Some("path") {
                            *v = e.path.to_value();
                        }
                    }
                }
                raw
            }
        };
        print_value(&shown, a.yaml);
    }
    // A watch only ends when the connection does.
    Err(Failure::with_code(
        "ConnectionClosed: the server ended the watch",
        crate::app::EXIT_CONNECTION,
    )
    .into())
}

/// The records of `data update`: a msgpack reader, or the YAML
/// documents read in advance (those before a damaged one, then its error).
enum UpdateInput {
    Msgpack(MsgpackRecords<Box<dyn std::io::Read>>),
    Yaml(Vec<Result<(Value, Position), BadRecord>>),
}

/// Opens the input of `data update` (a file, else stdin).
fn update_source(a: &UpdateArgs) -> Result<UpdateInput, Failure> {
    use std::io::Read;
    let reader: Box<dyn Read> = match &a.infile {
        Some(f) => Box::new(std::io::BufReader::new(
            std::fs::File::open(f).map_err(|e| Failure::error(format!("{}: {e}", f.display())))?,
        )),
        None => Box::new(std::io::stdin()),
    };
    if !a.yaml {
        return Ok(UpdateInput::Msgpack(MsgpackRecords::new(reader)));
    }
    let mut bytes = Vec::new();
    reader
        .take(MAX_YAML_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::error(format!("cannot read the input: {e}")))?;
    if bytes.len() as u64 > MAX_YAML_INPUT {
        return Err(Failure::error(format!(
            "YAML input over {MAX_YAML_INPUT} bytes: split it, or use msgpack"
        )));
    }
    let mut docs = Vec::new();
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = Position {
                record: 1,
                ..Position::default()
            };
            let reason = format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to());
            docs.push(Err(BadRecord { at, reason }));
            return Ok(UpdateInput::Yaml(docs));
        }
    };
    let r = crate::yaml::load_stream(&text, &mut |v, line| {
        let at = Position {
            record: docs.len() as u64 + 1,
            offset: None,
            line: Some(line),
        };
        docs.push(Ok((v, at)));
        true
    });
    if let Err(e) = r {
        let at = Position {
            record: docs.len() as u64 + 1,
            ..Position::default()
        };
        docs.push(Err(BadRecord {
            at,
            reason: format!("not YAML: {e}"),
        }));
    }
    Ok(UpdateInput::Yaml(docs))
}

/// The most YAML `data update` reads (it is read whole before storing).
const MAX_YAML_INPUT: u64 = 256 << 20;

async fn update(client: &Client, a: UpdateArgs, input: Option<UpdateInput>) -> CmdResult {
    let below = words_to_path(&a.path)?;
    let records: Box<dyn Iterator<Item = Result<(Value, Position), BadRecord>>> = match input {
        Some(UpdateInput::Msgpack(m)) => Box::new(m),
        Some(UpdateInput::Yaml(docs)) => Box::new(docs.into_iter()),
        None => Box::new(std::iter::empty()),
    };
    let r = if a.keep_going {
        client.import_keep_going(&below, records).await
    } else {
        client
            .import(&below, records)
            .await
            .map(|stored| ImportReport {
                stored,
                skipped: Vec::new(),
            })
    };
    match r {
        Ok(report) => {
            output::print_line(&format!("{}", report.stored));
            for bad in &report.skipped {
                output::print_error(&format!("skipped {}: {}", bad.at, bad.reason));
            }
            if report.skipped.is_empty() {
                Ok(())
            } else {
                Err(Failure::silent().into())
            }
        }
        Err(e @ ImportError::Bad { .. }) => Err(Failure::error(e.to_string()).into()),
        Err(ImportError::Client { at, source, stored }) => {
            output::print_error(&format!(
                "at {at}; {stored} records stored before it, none after"
            ));
            Err(CmdError::Client(source))
        }
    }
}
