//! Runners (code-and-runners.md §3): client processes that start stored
//! procedures when their jobs are due.
//!
//! Jobs say what to run and when (`.distkv run any JOB…`, `.distkv run
//! at NODE JOB…` for one node, `.distkv run all JOB…` for every node, the
//! original's places); the runner that executes a job writes its state (`.distkv state
//! any JOB…`, `.distkv state at NODE JOB…`, `.distkv state all NODE
//! JOB…`). Runners of a group find each other by pinging through their
//! servers (`msg_send` / `msg_monitor` on `run.run-any` or
//! `run.run-at.NODE`); of the `any` runners heard from recently the one
//! with the smallest name starts the due jobs, so a job runs on exactly
//! one runner while the network is whole, and another one takes over
//! within a few cycles when it dies (marking the dead runner's running
//! jobs failed).
//!
//! A job's code sees the job's `data` entries as variables, plus `_node`
//! (this runner), `_entry` (the job) and `_runners` (the runners of the
//! group heard from recently, itself included).
//!
//! Job fields: `code` (path below `.distkv code proc`), `data` (named
//! values for the code), `target` (unix time to start), `repeat` (seconds
//! after a success), `delay` (seconds after a failure, times
//! base^failures, base `backoff` or 2), `ok_after`, `info`. State fields: `started`, `stopped`,
//! `node`, `result`, `backoff`, `error`, and `output`: what the last run
//! printed (`print(text)`, one line each, at most
//! [`MAX_OUTPUT`] bytes; absent when it printed
//! nothing). Printed lines also go to the log (target `distkv::run`) and,
//! as they are printed, to [`RunnerConfig::print`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use distkv_code::Limits;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value};
use futures_util::StreamExt;

use crate::code::{CodeRoot, MAX_OUTPUT, Output};
use crate::error_log::ErrorLog;
pub use crate::jobs::{JobScope, RunnerKind, job_paths};
use crate::{Client, ClientError, TreeOptions, WriteOptions};

/// Where a runner passes on what its jobs print, line by line, as they
/// print it: the job's path (relative to its kind's job subtree) and the
/// line, without its newline.
#[derive(Clone)]
pub struct PrintSink(pub Arc<PrintFn>);

/// The function behind a [`PrintSink`]: job path, printed line.
pub type PrintFn = dyn Fn(&Path, &str) + Send + Sync;

impl std::fmt::Debug for PrintSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrintSink")
    }
}

/// A runner's settings.
///
/// ```no_run
/// # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
/// use std::sync::Arc;
/// use distkv_client::runner::{PrintSink, RunnerConfig, RunnerKind, run};
///
/// let cfg = RunnerConfig {
///     name: "r1".into(),
///     scope: RunnerKind::Any.into(),
///     cycle: std::time::Duration::from_secs(1),
///     limits: distkv_code::Limits::default(),
///     print: Some(PrintSink(Arc::new(|_job, line| println!("{line}")))),
/// };
/// run(client, cfg).await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// This runner's name (unique in the group).
    pub name: String,
    /// Which jobs: the runner kind and the job group.
    pub scope: JobScope,
    /// How often runners ping their group.
    pub cycle: Duration,
    /// Limits for each run.
    pub limits: Limits,
    /// Where to pass on what jobs print (besides their state's `output`
    /// and the log); `None`: nowhere else.
    pub print: Option<PrintSink>,
}

/// Marks a job's `output` whose end was dropped.
const TRUNCATED: &str = "\n[output truncated]\n";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn num(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Int(i)) => *i as f64,
        Some(Value::UInt(u)) => *u as f64,
        Some(Value::Float(f)) => *f,
        _ => 0.0,
    }
}

/// When job `job` with state `state` should start next (§3.4); `None`:
/// not (again).
pub fn next_start(job: &Value, state: Option<&Value>) -> Option<f64> {
    job.get("code")?;
    let st = |k| state.and_then(|s| s.get(k));
    if st("node").is_some_and(|n| !n.is_nil()) {
        return None;
    }
    let target = num(job.get("target"));
    let started = num(st("started"));
    if target > 0.0 && target > started {
        return Some(target);
    }
    let backoff = num(st("backoff"));
    let stopped = num(st("stopped"));
    if backoff > 0.0 {
        let delay = job.get("delay").map_or(100.0, |d| num(Some(d)));
        let base = match num(job.get("backoff")) {
            b if b > 1.0 => b.min(10.0),
            _ => 2.0,
        };
        return Some(stopped + delay * base.powf(backoff.min(20.0)));
    }
    let repeat = num(job.get("repeat"));
    (repeat > 0.0).then_some(stopped + repeat)
}

fn set_fields(v: &mut Value, fields: &[(&str, Value)]) {
    if !matches!(v, Value::Map(_)) {
        *v = Value::Map(Default::default());
    }
    if let Value::Map(m) = v {
        for (k, val) in fields {
            match m.iter_mut().find(|(key, _)| key.as_str() == Some(k)) {
                Some(slot) => slot.1 = val.clone(),
                None => m.push((Value::from(*k), val.clone())),
            }
        }
    }
}

async fn read_tree(
    client: &Client,
    root: &Path,
) -> Result<HashMap<Path, (Value, Option<distkv_tree::Chain>)>, ClientError> {
    let opts = TreeOptions {
        nchain: 1,
        ..TreeOptions::default()
    };
    let mut out = HashMap::new();
    let mut s = match client.get_tree(root, &opts).await {
        Ok(s) => s,
        Err(ClientError::Server(e)) if e.class() == Some(distkv_proto::ErrorClass::Key) => {
            return Ok(out);
        }
        Err(e) => return Err(e),
    };
    while let Some(item) = s.next_existing().await {
        let item = item?;
        if let Some(v) = item.value {
            let rel = Path(item.path.elems()[root.len()..].to_vec());
            out.insert(rel, (v, item.chain));
        }
    }
    Ok(out)
}

/// Runs a runner until the connection ends.
pub async fn run(client: Client, cfg: RunnerConfig) -> Result<(), ClientError> {
    let code = Arc::new(CodeRoot::start(client.clone(), &cfg.name, cfg.limits.clone()).await?);
    let errors = ErrorLog::new(client.clone(), cfg.name.clone());
    let members: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let topic = cfg.scope.topic();
    // hear the group
    let mut mon = client.msg_monitor(&topic).await?;
    let heard = members.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = mon.next().await {
            if let Some(n) = msg
                .get("data")
                .and_then(|d| d.get("node"))
                .and_then(Value::as_str)
            {
                lock(&heard).insert(n.to_owned(), Instant::now());
            }
        }
    });
    let running: Arc<Mutex<HashSet<Path>>> = Arc::default();
    let mut last_ping = Instant::now() - cfg.cycle;
    // when this runner first heard its own ping: from then on it hears the
    // group, and after a silence period it knows who else is there
    let mut hearing_since: Option<Instant> = None;
    let mut recovered_own = false;
    loop {
        if last_ping.elapsed() >= cfg.cycle {
            client
                .msg_send(
                    &topic,
                    MapBuilder::new().set("node", cfg.name.as_str()).build(),
                )
                .await?;
            last_ping = Instant::now();
        }
        let live: Vec<String> = {
            let m = lock(&members);
            m.iter()
                .filter(|(_, t)| t.elapsed() < cfg.cycle * 3)
                .map(|(n, _)| n.clone())
                .chain(std::iter::once(cfg.name.clone()))
                .collect()
        };
        if hearing_since.is_none() && lock(&members).contains_key(&cfg.name) {
            hearing_since = Some(Instant::now());
        }
        // wait one silence period, once the group is audible, before
        // deciding who leads
        let settled = hearing_since.is_some_and(|t| t.elapsed() >= cfg.cycle * 3);
        let leader = match cfg.scope.kind {
            RunnerKind::Any => settled && live.iter().min() == Some(&cfg.name),
            RunnerKind::Single(_) | RunnerKind::All(_) => true,
        };
        if leader {
            let jobs = read_tree(&client, &cfg.scope.jobs()).await?;
            let states = read_tree(&client, &cfg.scope.states()).await?;
            for (job_path, (job, _)) in &jobs {
                let state = states.get(job_path);
                let st_node = state
                    .and_then(|(s, _)| s.get("node"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                // a runner that is gone (or this one, restarted) left the
                // job marked running: it failed
                if let Some(n) = &st_node {
                    let mine_stale = *n == cfg.name && !recovered_own;
                    let gone = *n != cfg.name && !live.contains(n);
                    if (mine_stale || gone) && !lock(&running).contains(job_path) {
                        let why = if mine_stale {
                            "Runner restarted"
                        } else {
                            "Runner gone"
                        };
                        fail_stale(&client, &cfg, job_path, state, why).await?;
                    }
                    continue;
                }
                let Some(at) = next_start(job, state.map(|(s, _)| s)) else {
                    continue;
                };
                if at > now() || lock(&running).contains(job_path) {
                    continue;
                }
                lock(&running).insert(job_path.clone());
                let (client, cfg2, code, errors, running) = (
                    client.clone(),
                    cfg.clone(),
                    code.clone(),
                    errors.clone(),
                    running.clone(),
                );
                let (job_path, job, state) = (job_path.clone(), job.clone(), state.cloned());
                let mut group = live.clone();
                group.sort();
                group.dedup();
                tokio::spawn(async move {
                    let ctx = JobContext {
                        client: &client,
                        cfg: &cfg2,
                        code: &code,
                        errors: &errors,
                        group,
                    };
                    if let Err(e) = run_job(&ctx, &job_path, &job, state).await {
                        tracing::warn!(job = %job_path, error = %e, "running a job failed");
                    }
                    lock(&running).remove(&job_path);
                });
            }
            recovered_own = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if client.is_closed() {
            return Err(ClientError::Closed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn fail_stale(
    client: &Client,
    cfg: &RunnerConfig,
    job: &Path,
    state: Option<&(Value, Option<distkv_tree::Chain>)>,
    why: &str,
) -> Result<(), ClientError> {
    let (_, state_path) = job_paths(&cfg.scope, job);
    let (mut s, chain) = state.cloned().unwrap_or((Value::Nil, None));
    let backoff = num(s.get("backoff")) as i64 + 1;
    set_fields(
        &mut s,
        &[
            ("node", Value::Nil),
            ("stopped", Value::Float(now())),
            ("backoff", Value::Int(backoff)),
            ("error", Value::from(why)),
        ],
    );
    let opts = WriteOptions {
        chain: chain.map(|c| Some(c.head().clone())),
        ..WriteOptions::default()
    };
    // someone else may have fixed it meanwhile: then nothing to do
    let _ = client.set_with(&state_path, Some(s), &opts).await;
    tracing::warn!(job = %job, why, "a running job was left behind");
    Ok(())
}

/// What a job run needs of its runner.
struct JobContext<'a> {
    client: &'a Client,
    cfg: &'a RunnerConfig,
    code: &'a CodeRoot,
    errors: &'a ErrorLog,
    /// The runners of the group heard from recently.
    group: Vec<String>,
}

async fn run_job(
    ctx: &JobContext<'_>,
    job_path: &Path,
    job: &Value,
    state: Option<(Value, Option<distkv_tree::Chain>)>,
) -> Result<(), ClientError> {
    let JobContext {
        client,
        cfg,
        code,
        errors,
        ..
    } = *ctx;
    let (full_job, state_path) = job_paths(&cfg.scope, job_path);
    let (mut s, chain) = state.unwrap_or((Value::Nil, None));
    let t0 = now();
    set_fields(
        &mut s,
        &[
            ("started", Value::Float(t0)),
            ("node", Value::from(cfg.name.as_str())),
        ],
    );
    // claim the job: only if nobody changed its state meanwhile
    let claim = WriteOptions {
        chain: Some(chain.map(|c| c.head().clone())),
        nchain: Some(1),
        ..WriteOptions::default()
    };
    let reply = match client.set_with(&state_path, Some(s.clone()), &claim).await {
        Ok(r) => r,
        Err(ClientError::Server(_)) => return Ok(()), // taken by someone else
        Err(e) => return Err(e),
    };
    let code_path =
        Path::from_value(job.get("code").cloned().unwrap_or(Value::Nil)).unwrap_or_default();
    let data = job
        .get("data")
        .and_then(Value::as_map)
        .unwrap_or(&[])
        .to_vec();
    let mut extra: Vec<(String, Value)> = data
        .iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v.clone())))
        .collect();
    extra.push(("_node".into(), Value::from(cfg.name.as_str())));
    extra.push(("_entry".into(), job.clone()));
    // who else is there: the runner's view of its group
    extra.push((
        "_runners".into(),
        Value::Array(ctx.group.iter().map(|n| Value::from(n.as_str())).collect()),
    ));
    let printed = {
        let (sink, job) = (cfg.print.clone(), job_path.clone());
        Output::new(MAX_OUTPUT).with_live(Box::new(move |line| {
            tracing::info!(target: "distkv::run", job = %job, "{line}");
            if let Some(sink) = &sink {
                (sink.0)(&job, line);
            }
        }))
    };
    let (result, printed) = code
        .call_printing(&code_path, Vec::new(), extra, printed)
        .await;
    let t1 = now();
    let ok_after = num(job.get("ok_after"));
    let mut fields = vec![("node", Value::Nil), ("stopped", Value::Float(t1))];
    match &result {
        Ok(v) => {
            fields.push(("result", v.clone()));
            fields.push(("backoff", Value::Int(0)));
            fields.push(("error", Value::Nil));
            let _ = errors.working("run", &full_job).await;
        }
        Err(e) => {
            // a run that lasted `ok_after` had started fine: its failure
            // counts as the first one, not on top of earlier ones
            let long_enough = ok_after > 0.0 && t1 - t0 >= ok_after;
            let backoff = if long_enough {
                1
            } else {
                num(s.get("backoff")) as i64 + 1
            };
            fields.push(("backoff", Value::Int(backoff)));
            fields.push(("error", Value::from(e.to_string().as_str())));
            // the original's runner warns, naming the error record:
            // "Error ('.distkv', 'error', 'test1', 16373) test1: …"
            match errors
                .record("run", &full_job, &e.to_string(), 3, Value::Nil)
                .await
            {
                Ok(at) => tracing::warn!("Error {at} {}: {e}", cfg.name),
                Err(re) => {
                    tracing::warn!(job = %full_job, error = %e, record = %re, "a job failed; recording the error failed");
                }
            }
        }
    }
    let mut output = printed.text().to_owned();
    if printed.truncated() {
        output.push_str(TRUNCATED);
    }
    fields.push(("output", Value::from(output.as_str())));
    set_fields(&mut s, &fields);
    if output.is_empty() {
        if let Value::Map(m) = &mut s {
            m.retain(|(k, _)| k.as_str() != Some("output"));
        }
    }
    let opts = WriteOptions {
        chain: reply.chain.map(|c| Some(c.head().clone())),
        ..WriteOptions::default()
    };
    if let Err(e) = client.set_with(&state_path, Some(s), &opts).await {
        tracing::warn!(job = %job_path, error = %e, "the job's state changed while it ran");
    }
    Ok(())
}
