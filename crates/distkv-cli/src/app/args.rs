//! The command line grammar.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// distkv: a distributed, masterless key-value store.
#[derive(Parser, Debug)]
#[command(name = "distkv", version, about)]
pub struct Cli {
    /// More log output (repeatable): -v info, -vv debug, -vvv trace (the
    /// default is warnings; -v/-q win over RUST_LOG).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = false)]
    pub verbose: u8,
    /// Fewer informational messages (repeatable).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    pub quiet: u8,
    /// Per-module log level, SOURCE=LEVEL (repeatable; e.g.
    /// distkv_server::replication=debug).
    #[arg(short = 'l', long = "log", value_name = "SOURCE=LEVEL")]
    pub log: Vec<String>,
    /// Insecure speed-ups for testing.
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// A YAML configuration file, merged over the defaults.
    #[arg(short = 'c', long = "cfg", value_name = "FILE")]
    pub cfg: Option<PathBuf>,
    /// Override one configuration value (KEY=VALUE; KEY alone deletes).
    #[arg(short = 'C', long = "conf", value_name = "KEY=VALUE")]
    pub conf: Vec<String>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
}

/// `distkv-server`: the server's options and the global ones (but `-l`
/// is `--load`, per-module log levels are `--log`).
#[derive(Parser, Debug)]
#[command(
    name = "distkv-server",
    version,
    about = "Run a distkv server (the same as `distkv server`)."
)]
pub struct ServerCli {
    /// More log output (repeatable): -v info, -vv debug, -vvv trace.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (repeatable).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    pub quiet: u8,
    /// Per-module log level, SOURCE=LEVEL (repeatable).
    #[arg(long = "log", value_name = "SOURCE=LEVEL")]
    pub log: Vec<String>,
    /// A YAML configuration file, merged over the defaults.
    #[arg(short = 'c', long = "cfg", value_name = "FILE")]
    pub cfg: Option<PathBuf>,
    /// Override one configuration value (KEY=VALUE; KEY alone deletes).
    #[arg(short = 'C', long = "conf", value_name = "KEY=VALUE")]
    pub conf: Vec<String>,
    /// The server's own options.
    #[command(flatten)]
    pub server: ServerArgs,
}

impl ServerCli {
    /// The same command as `distkv [OPTIONS] server ARGS…`.
    pub fn into_cli(self) -> Cli {
        Cli {
            verbose: self.verbose,
            quiet: self.quiet,
            log: self.log,
            debug: false,
            cfg: self.cfg,
            conf: self.conf,
            cmd: Command::Server(self.server),
        }
    }
}

/// The top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a distkv server.
    Server(ServerArgs),
    /// Talk to a distkv server.
    Client(ClientArgs),
    /// Print the effective configuration as YAML.
    Dumpcfg,
    /// Print a new network key for `server.gossip_key` (ID:BASE64 of 32
    /// random bytes). Give the same key to every server of the network.
    GossipKey {
        /// The key's id (letters, digits, '_', '-', '.'), used to rotate
        /// keys.
        #[arg(default_value = "k1")]
        id: String,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or
    /// powershell), e.g. `distkv completions bash > /etc/bash_completion.d/distkv`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `distkv man | man -l -`.
    Man,
}

/// `distkv server`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ServerArgs {
    /// Serf agent host (server.serf.host).
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Serf agent RPC port (server.serf.port).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Create a NEW network with this root value ('-' stores None).
    #[arg(short = 'i', long = "init", allow_hyphen_values = true)]
    pub init: Option<String>,
    /// Evaluate the -i value as a Python literal.
    #[arg(short = 'e', long = "eval")]
    pub eval: bool,
    /// Run a single node without a Serf agent (server.backend=local).
    #[arg(long = "standalone")]
    pub standalone: bool,
    /// Keep the state in DIR: load the newest state logs there when there
    /// are any (otherwise join the network, or start with -i), write a new
    /// log there and rotate it (server.log_rotate, server.log_keep). The
    /// same command line serves the first start and every restart.
    #[arg(long = "data", value_name = "DIR", conflicts_with_all = ["load", "save"])]
    pub data: Option<std::path::PathBuf>,
    /// Load a state file (dump and/or change log) before serving; repeat
    /// for several files, oldest first.
    #[arg(short = 'l', long = "load", value_name = "FILE")]
    pub load: Vec<std::path::PathBuf>,
    /// Load a damaged state file up to the damage instead of refusing it.
    #[arg(long = "load-damaged")]
    pub load_damaged: bool,
    /// Write a state log (full dump, then every change) to FILE, as
    /// `client log dest FILE` would, from the moment the server has data.
    #[arg(short = 's', long = "save", value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
    /// The loaded files (-l) are complete: ticks they lack are not
    /// fetched from other servers.
    #[arg(short = 'a', long = "authoritative")]
    pub authoritative: bool,
    /// Serve at once, fetching changes still missing after the initial
    /// copy while serving instead of first.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// This server's unique node name.
    pub name: String,
    /// Copy the initial data (or catch up after -l) from these servers
    /// only, in this order.
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

/// `distkv client`.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ClientArgs {
    /// Server host (connect.host).
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Server port (connect.port).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Login parameters: "METHOD key=value …".
    #[arg(short = 'a', long = "auth")]
    pub auth: Option<String>,
    /// How to print data: default (as the original: Python literals),
    /// yaml, or json (paths as arrays; see the README for bytes and other
    /// msgpack types).
    #[arg(short = 'o', long = "output", value_enum, default_value = "default")]
    pub output: crate::app::output::Format,
    /// Print help (of this command and of every command below it; `-h`
    /// is the host, as in the original).
    #[arg(long = "help", action = ArgAction::Help, global = true)]
    pub help: Option<bool>,
    /// The client command.
    #[command(subcommand)]
    pub cmd: ClientCommand,
}

/// `distkv client …`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Read and write data.
    Data {
        /// The data command.
        #[command(subcommand)]
        cmd: DataCommand,
    },
    /// The server's state logs and dumps (files on the server's host).
    Log {
        /// The log command.
        #[command(subcommand)]
        cmd: LogCommand,
    },
    /// The server's state: name, backend, entries, connections, watchers,
    /// state log, the servers it knows with their ticks, the changes it
    /// misses, and its replication counters.
    Status,
    /// Authentication: methods and users.
    Auth(AuthArgs),
    /// Types of values and where they apply.
    Type {
        /// The type command.
        #[command(subcommand)]
        cmd: TypeCommand,
    },
    /// Stored procedures and modules (Rhai).
    Code {
        /// The code command.
        #[command(subcommand)]
        cmd: CodeCommand,
    },
    /// Jobs and runners.
    Run(RunArgs),
    /// The errors subsystem.
    Error {
        /// The error command.
        #[command(subcommand)]
        cmd: ErrorCommand,
    },
    /// Codecs and converters: per-user translation of values.
    Codec {
        /// The codec command.
        #[command(subcommand)]
        cmd: CodecCommand,
    },
    /// Access control lists.
    Acl {
        /// The ACL command.
        #[command(subcommand)]
        cmd: AclCommand,
    },
    /// Messages through the servers' transport (Serf events, MQTT
    /// topics): send one, or print those sent to a topic.
    Msg {
        /// The msg command.
        #[command(subcommand)]
        cmd: MsgCommand,
    },
    /// The server's internal state: its bookkeeping of ticks, and the
    /// system subtree.
    Internal {
        /// The internal command.
        #[command(subcommand)]
        cmd: InternalCommand,
    },
}

/// `distkv client msg …`.
#[derive(Subcommand, Debug)]
pub enum MsgCommand {
    /// Send a message to every monitor of TOPIC (through any server of
    /// the network).
    Send {
        /// The data (a string unless -e; default None).
        #[arg(short = 'v', long = "value", allow_hyphen_values = true)]
        value: Option<String>,
        /// Evaluate the value as a Python literal.
        #[arg(short = 'e', long = "eval")]
        eval: bool,
        /// The topic (e.g. `test` or `run.run-any`).
        topic: String,
    },
    /// Print the messages sent to TOPIC, one per line (the data), until
    /// interrupted.
    Monitor {
        /// Stop after N messages.
        #[arg(short = 'n', long = "count", value_name = "N")]
        count: Option<u64>,
        /// Print the topic with the data (and say on stderr when the
        /// monitor is ready).
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// YAML output.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// The topic.
        topic: String,
    },
}

/// `distkv client internal …`.
#[derive(Subcommand, Debug)]
pub enum InternalCommand {
    /// The server's tick bookkeeping, as YAML: with no option only its
    /// name and tick.
    State {
        /// Each node's last tick.
        #[arg(short = 'n', long = "nodes")]
        nodes: bool,
        /// The ticks of deletions, per node.
        #[arg(short = 'd', long = "deleted")]
        deleted: bool,
        /// The ticks missing here, per node.
        #[arg(short = 'm', long = "missing")]
        missing: bool,
        /// The ticks other servers reported missing, per node.
        #[arg(short = 'r', long = "remote-missing")]
        remote_missing: bool,
        /// The ticks seen, per node.
        #[arg(short = 'k', long = "known")]
        known: bool,
    },
    /// The deleter group: the servers that must all have seen a deletion
    /// before its tombstone is purged. Without arguments: show it; with
    /// NODEs: add them (with -d: remove them); -d alone: empty it.
    Deleter {
        /// Remove instead of add.
        #[arg(short = 'd', long = "delete")]
        delete: bool,
        /// Server names.
        nodes: Vec<String>,
    },
    /// Repair the tick bookkeeping (dangerous; super-root users only):
    /// count TICKs of NODE as known (superseded, not to be fetched), or
    /// with -d as deletions. Without TICKs: those the server misses of
    /// NODE (of every node when NODE is ''). Prints what changed.
    Mark {
        /// Mark as deleted. Default: known.
        #[arg(short = 'd', long = "deleted")]
        deleted: bool,
        /// Accepted for the original's sake (the node the change is faked
        /// as coming from); the server ignores it, as the original's does.
        #[arg(short = 'n', long = "node", value_name = "NODE")]
        source: Option<String>,
        /// Tell every server, not only this one.
        #[arg(short = 'b', long = "broadcast")]
        broadcast: bool,
        /// The node whose ticks these are ('' with no TICK: every node).
        node: String,
        /// The ticks.
        ticks: Vec<u64>,
    },
    /// Which of NODE's TICKs were deletions on this server (super-root
    /// users only); they are broadcast too, so that servers still holding
    /// what was deleted learn it. Prints them.
    #[command(name = "check-deleted", alias = "check_deleted")]
    CheckDeleted {
        /// The node whose ticks these are.
        node: String,
        /// The ticks.
        #[arg(required = true)]
        ticks: Vec<u64>,
    },
    /// The ticks of NODE whose changes are still in the data (tombstones
    /// included), one a line: with -c only those of entries NODE changed
    /// last, which must be none before NODE can be killed (super-root
    /// users only).
    Enum {
        /// Print at most this many ticks.
        #[arg(short = 'n', long = "num", value_name = "NUM")]
        num: Option<u64>,
        /// Only the entries NODE changed last.
        #[arg(short = 'c', long = "current")]
        current: bool,
        /// Also print each entry's path, after its tick.
        #[arg(short = 'p', long = "path")]
        path: bool,
        /// The node.
        node: String,
    },
    /// Retire NODE, a server gone for good (super-root users only): its
    /// changes are filtered out of every chain and its tick bookkeeping
    /// is dropped, on every server. Refused while NODE still changed some
    /// entry last (see `internal enum -c`; overwrite those first). Prints
    /// what changed.
    Kill {
        /// The node.
        node: String,
    },
    /// The system subtree at and below PATH, as nested YAML (a value under
    /// the key `_`).
    Dump {
        /// The path below the system subtree.
        path: Vec<String>,
    },
}

/// `distkv client type …`.
#[derive(Subcommand, Debug)]
pub enum TypeCommand {
    /// Store a type: example values and a check (Rhai code and/or a JSON
    /// schema).
    Set {
        /// A value of the type (Python literal); repeatable.
        #[arg(short = 'g', long = "good", allow_hyphen_values = true)]
        good: Vec<String>,
        /// A value not of the type (Python literal); repeatable.
        #[arg(short = 'b', long = "bad", allow_hyphen_values = true)]
        bad: Vec<String>,
        /// The Rhai code checking `value` (throw to reject); without -s
        /// and -S it is read from standard input.
        #[arg(short = 's', long = "script")]
        script: Option<std::path::PathBuf>,
        /// A JSON schema (JSON or YAML).
        #[arg(short = 'S', long = "schema")]
        schema: Option<std::path::PathBuf>,
        /// The type's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// The types (at and below PATH), one path per line.
    List {
        /// Each with its record, as YAML.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// Only types below this path.
        path: Vec<String>,
    },
    /// Show a type.
    Get {
        /// YAML output.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// The type's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Bind a type to the paths matching PATH (+ and # wildcards), show
    /// the binding (without -t), or delete it (-d).
    Match {
        /// The type path, one element per -t.
        #[arg(short = 't', long = "type")]
        types: Vec<String>,
        /// Delete the binding.
        #[arg(short = 'd', long = "delete")]
        delete: bool,
        /// The path pattern.
        #[arg(required = true)]
        path: Vec<String>,
    },
}

/// `distkv client run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The jobs of this node (single-node runner); default: any runner.
    /// With -A: the node whose state to show.
    #[arg(short = 'n', long = "node")]
    pub node: Option<String>,
    /// Jobs that every node runs.
    #[arg(short = 'A', long = "all-nodes")]
    pub all_nodes: bool,
    /// The job group (default: 'default'); '-' with `info` lists the
    /// nodes that have jobs of their own.
    #[arg(short = 'g', long = "group", allow_hyphen_values = true)]
    pub group: Option<String>,
    /// The run command.
    #[command(subcommand)]
    pub cmd: RunCommand,
}

/// `distkv client run …`.
#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Run the runner: start due jobs (never returns).
    All {
        /// This runner's name (default: the host name and process id).
        #[arg(long = "name")]
        name: Option<String>,
        /// Seconds between pings to the other runners.
        #[arg(long = "cycle", default_value_t = 1.0, value_parser = finite_number)]
        cycle: f64,
    },
    /// Create or change a job.
    Set(Box<JobSetArgs>),
    /// Delete a job and its state; a running job is only kept from
    /// starting again (without -f).
    Delete {
        /// Delete it even while it runs.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// The job's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Show a job.
    Get {
        /// The job's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Show a job's state.
    State {
        /// Just print the result of its last successful run.
        #[arg(short = 'r', long = "result")]
        result: bool,
        /// The job's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// The groups that have jobs of this kind (of this node with -n, for
    /// every node with -A); with `-g -`: the nodes that have jobs of their
    /// own.
    Info,
    /// Show the runners' pings (each a YAML document), as they are sent.
    Monitor {
        /// Stop after this many.
        #[arg(short = 'n', long = "count")]
        count: Option<u64>,
    },
    /// The jobs, as YAML.
    List {
        /// Add each job's state.
        #[arg(short = 's', long = "state")]
        state: bool,
        /// The states only.
        #[arg(short = 'S', long = "state-only")]
        state_only: bool,
        /// Only jobs below this path.
        path: Vec<String>,
    },
}

/// `distkv client run set`.
#[derive(Args, Debug)]
pub struct JobSetArgs {
    /// The procedure to run (its path words).
    #[arg(short = 'c', long = "code")]
    pub code: Option<String>,
    /// The -c value is a Python literal (a list of path elements).
    #[arg(short = 'e', long = "eval")]
    pub eval: bool,
    /// The back-off base after failures (default 2).
    #[arg(short = 'b', long = "backoff", value_parser = finite_number)]
    pub backoff: Option<f64>,
    /// Start after this many seconds, 'now', or '-' (not again).
    #[arg(short = 't', long = "time", allow_hyphen_values = true)]
    pub time: Option<String>,
    /// Seconds after a success to start again.
    #[arg(short = 'r', long = "repeat", value_parser = finite_number)]
    pub repeat: Option<f64>,
    /// Seconds after a failure before retrying (times 2^failures).
    #[arg(short = 'd', long = "delay", value_parser = finite_number)]
    pub delay: Option<f64>,
    /// A comment.
    #[arg(short = 'i', long = "info")]
    pub info: Option<String>,
    /// A run lasting this many seconds started well (ok_after): its
    /// failure counts as the first.
    #[arg(short = 'k', long = "ok", value_parser = finite_number)]
    pub ok: Option<f64>,
    /// A string parameter for the code (an entry of the job's data);
    /// repeatable.
    #[arg(short = 'v', long = "var", num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true)]
    pub var: Vec<String>,
    /// A parameter given as a Python literal; '-' removes it;
    /// repeatable.
    #[arg(short = 'E', long = "eval-var", num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true)]
    pub eval_var: Vec<String>,
    /// A path parameter (space-separated words); repeatable.
    #[arg(short = 'p', long = "path-var", num_args = 2, value_names = ["NAME", "VALUE"])]
    pub path_var: Vec<String>,
    /// The job's path.
    #[arg(required = true)]
    pub path: Vec<String>,
}

/// `distkv client code …`.
#[derive(Subcommand, Debug)]
pub enum CodeCommand {
    /// Store a procedure (a Rhai function body).
    Set {
        /// The script file (default: stdin).
        #[arg(short = 's', long = "script")]
        script: Option<std::path::PathBuf>,
        /// A variable the body uses; repeatable, in order.
        #[arg(short = 'V', long = "var")]
        vars: Vec<String>,
        /// The procedure is asynchronous.
        #[arg(short = 'a', long = "async")]
        is_async: bool,
        /// The procedure's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Show a procedure.
    Get {
        /// Write the code to this file instead of showing it.
        #[arg(short = 's', long = "script")]
        script: Option<std::path::PathBuf>,
        /// YAML output.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// The procedure's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// The stored procedures, one path per line.
    List,
    /// Delete a procedure.
    Delete {
        /// The procedure's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Modules.
    Module {
        /// The module command.
        #[command(subcommand)]
        cmd: ModuleCommand,
    },
}

/// `distkv client code module …`.
#[derive(Subcommand, Debug)]
pub enum ModuleCommand {
    /// Store a module.
    Set {
        /// The script file (default: stdin).
        #[arg(short = 's', long = "script")]
        script: Option<std::path::PathBuf>,
        /// The module's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Show a module.
    Get {
        /// The module's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
}

/// `distkv client error …`.
#[derive(Subcommand, Debug)]
pub enum ErrorCommand {
    /// The open errors (about PATH and below), one per line.
    List {
        /// Also resolved ones.
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// Only this subsystem.
        #[arg(short = 's', long = "subsystem")]
        subsystem: Option<String>,
        /// Only errors this node reported, with its details.
        #[arg(short = 'n', long = "node")]
        node: Option<String>,
        /// YAML: a list of the records, each with its details.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// YAML: one nested map by the errors' paths, at each path its
        /// records by subsystem under KEY (usually '_').
        #[arg(
            short = 'd',
            long = "as-dict",
            value_name = "KEY",
            conflicts_with = "yaml"
        )]
        as_dict: Option<String>,
        /// Only errors about this path and below.
        path: Vec<String>,
    },
    /// The error records as YAML.
    Dump {
        /// Also resolved ones.
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// Only this subsystem.
        #[arg(short = 's', long = "subsystem")]
        subsystem: Option<String>,
    },
    /// Mark the errors of PATH resolved.
    Resolve {
        /// Only this subsystem.
        #[arg(short = 's', long = "subsystem")]
        subsystem: Option<String>,
        /// The path the errors are about.
        #[arg(required = true)]
        path: Vec<String>,
    },
}

/// `distkv client codec …`.
#[derive(Subcommand, Debug)]
pub enum CodecCommand {
    /// Store a codec: Rhai code for each direction and example pairs.
    Set {
        /// The encoder (stored → user), a Rhai body using `value`. Without
        /// -e and -d both come from standard input: the encoder up to the
        /// first empty line, then the decoder.
        #[arg(short = 'e', long = "encode")]
        encode: Option<std::path::PathBuf>,
        /// The decoder (user → stored).
        #[arg(short = 'd', long = "decode")]
        decode: Option<std::path::PathBuf>,
        /// A decoding example: SOURCE RESULT (Python literals); repeatable.
        #[arg(short = 'i', long = "in", num_args = 2, value_names = ["SRC", "DST"], allow_hyphen_values = true)]
        input: Vec<String>,
        /// An encoding example: SOURCE RESULT; repeatable.
        #[arg(short = 'o', long = "out", num_args = 2, value_names = ["SRC", "DST"], allow_hyphen_values = true)]
        output: Vec<String>,
        /// The codec's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// The codecs (at and below PATH), one path per line.
    List {
        /// Each with its record, as YAML.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// Only codecs below this path.
        path: Vec<String>,
    },
    /// Show a codec.
    Get {
        /// YAML output.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// The codec's path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Apply a codec to the paths matching PATH for converter group NAME;
    /// with -l list the group's bindings (every group's without NAME).
    Convert {
        /// The codec path, one element per -c.
        #[arg(short = 'c', long = "codec")]
        codec: Vec<String>,
        /// Delete the entry.
        #[arg(short = 'd', long = "delete", conflicts_with = "codec")]
        delete: bool,
        /// List the bindings at and below PATH: `GROUP PATH: CODEC`, one
        /// per line.
        #[arg(short = 'l', long = "list", conflicts_with_all = ["codec", "delete"])]
        list: bool,
        /// The converter group.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// The path pattern.
        #[arg(required_unless_present = "list")]
        path: Vec<String>,
    },
}

/// `distkv client acl …`.
#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// The names of the ACLs.
    List {
        /// YAML: a list.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
    },
    /// The entries of an ACL.
    Dump {
        /// YAML output.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// The ACL.
        name: String,
        /// Below this path.
        path: Vec<String>,
    },
    /// The flags at a path of an ACL ('-' if none).
    Get {
        /// The ACL.
        name: String,
        /// The path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// Set the flags at a path of an ACL.
    Set {
        /// Show the old and new flags, chain and tock.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Show the old and new flags as YAML.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
        /// MODES: 'xyz' replace, '+xyz' add, '-xyz' remove, '-' delete.
        #[arg(short = 'a', long = "acl", allow_hyphen_values = true)]
        modes: String,
        /// The ACL.
        name: String,
        /// The path.
        #[arg(required = true)]
        path: Vec<String>,
    },
    /// What an ACL grants at a path: '+' / '-', or the letters.
    Test {
        /// The whole reply.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// The flag letter to test (default x).
        #[arg(short = 'm', long = "mode")]
        mode: Option<String>,
        /// Test this ACL instead of the own one.
        #[arg(short = 'a', long = "acl")]
        acl: Option<String>,
        /// The path.
        path: Vec<String>,
    },
}

/// `distkv client auth`.
#[derive(Args, Debug)]
pub struct AuthArgs {
    /// The auth method ('-': none). Default: the active one, else the
    /// only one with users.
    #[arg(short = 'm', long = "method", allow_hyphen_values = true)]
    pub method: Option<String>,
    /// The auth command.
    #[command(subcommand)]
    pub cmd: AuthCommand,
}

/// `distkv client auth …`.
#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// The configured auth methods.
    List,
    /// Make the method the active one ('-m -': turn auth off).
    Init {
        /// Switch even if another method is active.
        #[arg(short = 's', long = "switch")]
        switch: bool,
    },
    /// Manage the users of the method.
    User {
        /// The user command.
        #[command(subcommand)]
        cmd: UserCommand,
    },
}

/// `distkv client auth user …`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// The users, one per line.
    List {
        /// YAML: a map per user.
        #[arg(short = 'y', long = "yaml")]
        yaml: bool,
    },
    /// Create a user: KEY=VALUE parameters (KEY?=Label prompts without
    /// echo).
    Add {
        /// Aux data (acl=NAME, conv=NAME; codec=NAME is conv=NAME).
        #[arg(short = 'a', long = "add", alias = "aux", value_name = "KEY=VALUE")]
        aux: Vec<String>,
        /// The parameters.
        #[arg(required = true)]
        params: Vec<String>,
    },
    /// Modify a user.
    #[command(alias = "modify")]
    Mod {
        /// Aux data (acl=NAME, conv=NAME; codec=NAME is conv=NAME).
        #[arg(short = 'a', long = "add", alias = "aux", value_name = "KEY=VALUE")]
        aux: Vec<String>,
        /// The user (IDENT or name=IDENT).
        ident: String,
        /// The parameters.
        params: Vec<String>,
    },
    /// What the server knows of a user.
    Get {
        /// The user.
        ident: String,
    },
    /// Test a login on this connection; prints OK.
    Auth {
        /// The login ("METHOD key=value …"; default: root).
        #[arg(short = 'a', long = "auth")]
        auth: Option<String>,
    },
}

/// `distkv client log …`.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Write the state to PATH and then append every change.
    Dest {
        /// Only changes from now on, no initial dump.
        #[arg(short = 'i', long = "incremental")]
        incremental: bool,
        /// The file on the server.
        path: String,
    },
    /// Write a one-shot dump of the state to PATH: always a full one (the
    /// tick bookkeeping, every entry with its chain and tock, deletions
    /// and the system subtree included).
    Save {
        /// A full save (the original's later option; every save is full).
        #[arg(short = 'f', long = "full")]
        full: bool,
        /// The file on the server.
        path: String,
    },
    /// Stop the change log.
    Stop,
}

/// `distkv client data …`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Read a value, or a whole subtree with -r.
    Get(GetArgs),
    /// Store a value.
    Set(SetArgs),
    /// Delete a value, or a whole subtree with -r.
    Delete(DeleteArgs),
    /// List the names below a path that hold data.
    List(ListArgs),
    /// Print changes below a path as they happen.
    Watch(WatchArgs),
    /// Store a stream of records ({path, value} maps, msgpack or YAML
    /// documents) at or below PATH; stops at the first bad record.
    Update(UpdateArgs),
}

/// `data update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The file to read (default: standard input).
    #[arg(short = 'i', long = "infile", value_name = "FILE")]
    pub infile: Option<std::path::PathBuf>,
    /// The input is a stream of YAML documents (default: msgpack).
    #[arg(short = 'y', long = "yaml")]
    pub yaml: bool,
    /// Skip records that are not {path, value} below PATH or that the
    /// server refuses (each is named on stderr; the exit status is 1)
    /// instead of stopping there. Damaged input still stops the import.
    #[arg(short = 'k', long = "keep-going")]
    pub keep_going: bool,
    /// Every record's path must lie at or below this path.
    pub path: Vec<String>,
}

/// `data get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The whole subtree.
    #[arg(short = 'r', long = "recursive")]
    pub recursive: bool,
    /// YAML output.
    #[arg(short = 'y', long = "yaml")]
    pub yaml: bool,
    /// With -r: one nested map, values stored under KEY (usually '_').
    #[arg(short = 'd', long = "as-dict", value_name = "KEY")]
    pub as_dict: Option<String>,
    /// Print the complete reply.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Include N chain links.
    #[arg(short = 'c', long = "chain", value_name = "N", default_value_t = 0)]
    pub chain: i64,
    /// With -r: maximum depth.
    #[arg(short = 'm', long = "maxdepth", value_name = "N")]
    pub maxdepth: Option<usize>,
    /// With -r: minimum depth.
    #[arg(short = 'M', long = "mindepth", value_name = "N")]
    pub mindepth: Option<usize>,
    /// The path, as words; `:5`, `:5.5`, `:t`, `:f`, `:n`, `:e` are keys of
    /// other types (int, float, True, False, None, empty), `:LITERAL` any
    /// Python literal, `::x` the string `:x`.
    pub path: Vec<String>,
}

/// `data set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The value (a string unless -e).
    #[arg(short = 'v', long = "value", allow_hyphen_values = true)]
    pub value: Option<String>,
    /// Read the value from standard input instead of -v (one final
    /// newline is dropped; input that is not UTF-8 is stored as bytes
    /// unless -e).
    #[arg(long = "stdin", conflicts_with = "value")]
    pub stdin: bool,
    /// Evaluate VALUE and PREV as Python literals.
    #[arg(short = 'e', long = "eval")]
    pub eval: bool,
    /// Only if the entry has no value yet.
    #[arg(short = 'n', long = "new", conflicts_with_all = ["last", "prev"])]
    pub new: bool,
    /// Only if the last change was NODE's TICK.
    #[arg(short = 'l', long = "last", num_args = 2, value_names = ["NODE", "TICK"])]
    pub last: Option<Vec<String>>,
    /// Only if the current value is PREV.
    #[arg(short = 'p', long = "prev", allow_hyphen_values = true)]
    pub prev: Option<String>,
    /// Return N chain links (and print the reply).
    #[arg(short = 'c', long = "chain", value_name = "N")]
    pub chain: Option<i64>,
    /// Print the reply as YAML.
    #[arg(short = 'y', long = "yaml")]
    pub yaml: bool,
    /// The path, as words; `:5`, `:5.5`, `:t`, `:f`, `:n`, `:e` are keys of
    /// other types (int, float, True, False, None, empty), `:LITERAL` any
    /// Python literal, `::x` the string `:x`.
    pub path: Vec<String>,
}

/// `data delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The whole subtree.
    #[arg(short = 'r', long = "recursive", conflicts_with_all = ["last", "prev"])]
    pub recursive: bool,
    /// Only if the last change was NODE's TICK.
    #[arg(short = 'l', long = "last", num_args = 2, value_names = ["NODE", "TICK"])]
    pub last: Option<Vec<String>>,
    /// Only if the current value is PREV.
    #[arg(short = 'p', long = "prev", allow_hyphen_values = true)]
    pub prev: Option<String>,
    /// Evaluate PREV as a Python literal.
    #[arg(short = 'e', long = "eval")]
    pub eval: bool,
    /// Return N chain links.
    #[arg(short = 'c', long = "chain", value_name = "N")]
    pub chain: Option<i64>,
    /// The path, as words; `:5`, `:5.5`, `:t`, `:f`, `:n`, `:e` are keys of
    /// other types (int, float, True, False, None, empty), `:LITERAL` any
    /// Python literal, `::x` the string `:x`.
    pub path: Vec<String>,
}

/// `data list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// YAML output.
    #[arg(short = 'y', long = "yaml")]
    pub yaml: bool,
    /// The path, as words; `:5`, `:5.5`, `:t`, `:f`, `:n`, `:e` are keys of
    /// other types (int, float, True, False, None, empty), `:LITERAL` any
    /// Python literal, `::x` the string `:x`.
    pub path: Vec<String>,
}

/// `data watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Send the current state first.
    #[arg(short = 's', long = "state")]
    pub state: bool,
    /// Include N chain links.
    #[arg(short = 'c', long = "chain", value_name = "N", default_value_t = 0)]
    pub chain: i64,
    /// YAML output.
    #[arg(short = 'y', long = "yaml")]
    pub yaml: bool,
    /// The path, as words; `:5`, `:5.5`, `:t`, `:f`, `:n`, `:e` are keys of
    /// other types (int, float, True, False, None, empty), `:LITERAL` any
    /// Python literal, `::x` the string `:x`.
    pub path: Vec<String>,
}

/// A number of seconds (or a factor) on the command line: any finite
/// number; `nan` and `inf` are refused.
fn finite_number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("{s} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}
