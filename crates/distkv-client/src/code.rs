//! Stored procedures (code-and-runners.md §2): Rhai function bodies kept
//! at `.distkv code proc NAME…` as `{code, vars, is_async}`.
//!
//! [`CodeRoot`] mirrors the procedure subtree, compiles every entry when
//! it arrives (compile errors go to the errors subsystem, subsystem
//! `compile`, and are marked resolved when a fixed version compiles), and
//! runs procedures with a host API: `get(path)`, `set(path, value)`,
//! `delete(path)` on the tree through this client, `wait_change(path,
//! seconds)` (the entry's next value, or `()` when nothing changed in
//! time, never longer than the run may last), `log(text)`, `now()`.
//! Nothing else is reachable from a script. What a script prints
//! (`print(text)`) is collected per call, bounded
//! ([`CodeRoot::call_printing`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use distkv_code::rhai::{self, Dynamic, EvalAltResult};
use distkv_code::{CodeError, Engine, Limits, Script, from_dynamic, to_dynamic};
pub use distkv_code::{MAX_OUTPUT, Output};
use distkv_tree::{Path, Value};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::error_log::ErrorLog;
use crate::{Client, ClientError, TreeOptions, WatchItem};

pub use crate::procedures::{module_prefix, proc_prefix};

/// Why a procedure could not be called.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// There is no compiled code at this path (missing, or it does not
    /// compile).
    #[error("EmptyCode: no code at {0}")]
    EmptyCode(Path),
    /// The code failed.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn rt_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    e.to_string().into()
}

fn path_arg(d: &Dynamic) -> Result<Path, Box<EvalAltResult>> {
    match from_dynamic(d) {
        Value::Array(a) => Path::from_value(Value::Array(a)).map_err(rt_err),
        Value::Str(s) => Ok(Path::from_strs(&s.split_whitespace().collect::<Vec<_>>())),
        other => Err(rt_err(format!("a path is an array of names, not {other}"))),
    }
}

/// An engine whose scripts can use the tree through `client`.
fn host_engine(client: &Client, limits: Limits) -> Engine {
    let mut engine = Engine::new(limits);
    let handle = tokio::runtime::Handle::current();
    let r = engine.register();
    let (c, h) = (client.clone(), handle.clone());
    r.register_fn(
        "get",
        move |p: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            let path = path_arg(&p)?;
            let v = h.block_on(c.get(&path)).map_err(rt_err)?;
            Ok(v.as_ref().map_or(Dynamic::UNIT, to_dynamic))
        },
    );
    let (c, h) = (client.clone(), handle.clone());
    r.register_fn(
        "set",
        move |p: Dynamic, v: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let path = path_arg(&p)?;
            h.block_on(c.set(&path, from_dynamic(&v))).map_err(rt_err)?;
            Ok(())
        },
    );
    let (c, h) = (client.clone(), handle);
    r.register_fn(
        "delete",
        move |p: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let path = path_arg(&p)?;
            h.block_on(c.delete(&path)).map_err(rt_err)?;
            Ok(())
        },
    );
    let (c, h) = (client.clone(), tokio::runtime::Handle::current());
    r.register_fn(
        "wait_change",
        move |p: Dynamic, secs: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            let path = path_arg(&p)?;
            let secs = secs
                .as_float()
                .or_else(|_| secs.as_int().map(|i| i as f64))
                .unwrap_or(0.0);
            // NaN (which `clamp` keeps) waits no time
            let secs = if secs.is_nan() {
                0.0
            } else {
                secs.clamp(0.0, 86_400.0)
            };
            // never past the run's own deadline
            let limit = distkv_code::time_left().unwrap_or_default();
            let wait = std::time::Duration::from_secs_f64(secs).min(limit);
            let changed = h.block_on(async {
                let opts = TreeOptions {
                    max_depth: Some(0),
                    ..TreeOptions::default()
                };
                let mut w = c.watch(&path, false, &opts).await?;
                let next = async {
                    while let Some(item) = w.next().await {
                        if let WatchItem::Entry(e) = item? {
                            return Ok::<_, ClientError>(Some(e.value));
                        }
                    }
                    Ok(None)
                };
                match tokio::time::timeout(wait, next).await {
                    Ok(r) => r,
                    Err(_) => Ok(None),
                }
            });
            match changed.map_err(rt_err)? {
                Some(Some(v)) => Ok(to_dynamic(&v)),
                _ => Ok(Dynamic::UNIT),
            }
        },
    );
    r.register_fn("log", |msg: Dynamic| {
        tracing::info!(target: "distkv::code", "{msg}");
    });
    r.register_fn("now", || -> rhai::FLOAT {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    });
    engine
}

/// A compiled procedure.
#[derive(Clone, Debug)]
struct Compiled {
    script: Script,
}

/// The procedures of a network, compiled and ready to call.
pub struct CodeRoot {
    client: Client,
    engine: Arc<Engine>,
    procs: Arc<Mutex<HashMap<Path, Compiled>>>,
    prefix: Path,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for CodeRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRoot")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for CodeRoot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CodeRoot {
    /// Mirrors the procedures below the default prefix, recording compile
    /// errors as node `node`. Returns once the current procedures are
    /// compiled.
    pub async fn start(
        client: Client,
        node: &str,
        limits: Limits,
    ) -> Result<CodeRoot, ClientError> {
        let prefix = proc_prefix();
        let engine = Arc::new(host_engine(&client, limits));
        let procs: Arc<Mutex<HashMap<Path, Compiled>>> = Arc::default();
        let errors = ErrorLog::new(client.clone(), node);
        let opts = TreeOptions::default();
        let mut stream = client.watch(&prefix, true, &opts).await?;
        let (tx, mut rx) = watch::channel(0u64);
        let (engine2, procs2, prefix2) = (engine.clone(), procs.clone(), prefix.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            let mut ready = false;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(WatchItem::UpToDate) => ready = true,
                    Ok(WatchItem::Entry(e)) => {
                        let rel = Path(e.path.elems()[prefix2.len()..].to_vec());
                        update(&engine2, &procs2, &errors, &e.path, rel, e.value).await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the code watch ended");
                        break;
                    }
                }
                if ready {
                    n += 1;
                    let _ = tx.send(n);
                }
            }
        });
        // wait for the initial state
        let _ = rx.changed().await;
        Ok(CodeRoot {
            client,
            engine,
            procs,
            prefix,
            changes: rx,
            task,
        })
    }

    /// Waits until the mirror has seen another change.
    pub async fn changed(&mut self) {
        let _ = self.changes.changed().await;
    }

    /// The names (paths below the prefix) of the compiled procedures.
    pub fn names(&self) -> Vec<Path> {
        let mut v: Vec<Path> = lock(&self.procs).keys().cloned().collect();
        v.sort();
        v
    }

    /// Calls the procedure `name` with `args` for its variables and
    /// `extra` named values, on a blocking thread. What it prints is
    /// dropped.
    pub async fn call(
        &self,
        name: &Path,
        args: Vec<Value>,
        extra: Vec<(String, Value)>,
    ) -> Result<Value, CallError> {
        self.call_printing(name, args, extra, Output::new(0))
            .await
            .0
    }

    /// Calls the procedure `name` as [`CodeRoot::call`] does, collecting
    /// what it prints into `out` (bounded by `out`'s size), which is
    /// returned with the result.
    ///
    /// ```no_run
    /// # async fn demo(root: distkv_client::code::CodeRoot) {
    /// use distkv_client::code::Output;
    /// use distkv_tree::Path;
    ///
    /// let (result, out) = root
    ///     .call_printing(&Path::from_strs(&["the", "answer"]), vec![], vec![], Output::default())
    ///     .await;
    /// print!("{}", out.text());
    /// println!("{result:?}");
    /// # }
    /// ```
    pub async fn call_printing(
        &self,
        name: &Path,
        args: Vec<Value>,
        extra: Vec<(String, Value)>,
        mut out: Output,
    ) -> (Result<Value, CallError>, Output) {
        let compiled = match lock(&self.procs).get(name).cloned() {
            Some(c) => c,
            None => {
                let mut full = self.prefix.clone();
                full.0.extend(name.elems().iter().cloned());
                return (Err(CallError::EmptyCode(full)), out);
            }
        };
        let engine = self.engine.clone();
        let _keep = self.client.clone();
        let run = tokio::task::spawn_blocking(move || {
            let extra: Vec<(&str, Value)> =
                extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let r = engine.run_printing(&compiled.script, &args, &extra, &mut out);
            (r, out)
        })
        .await;
        match run {
            Ok((r, out)) => (r.map_err(CallError::from), out),
            Err(e) => (
                Err(CodeError::Run(format!("the run failed: {e}")).into()),
                Output::new(0),
            ),
        }
    }
}

async fn update(
    engine: &Engine,
    procs: &Mutex<HashMap<Path, Compiled>>,
    errors: &ErrorLog,
    full: &Path,
    rel: Path,
    value: Option<Value>,
) {
    let Some(value) = value else {
        lock(procs).remove(&rel);
        return;
    };
    let Some(code) = value.get("code").and_then(Value::as_str) else {
        lock(procs).remove(&rel);
        return;
    };
    let vars: Vec<String> = value
        .get("vars")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let var_refs: Vec<&str> = vars.iter().map(String::as_str).collect();
    match engine.compile(&full.to_string(), code, &var_refs) {
        Ok(script) => {
            lock(procs).insert(rel, Compiled { script });
            if let Err(e) = errors.working("compile", full).await {
                tracing::warn!(error = %e, "cannot mark a compile error resolved");
            }
        }
        Err(e) => {
            lock(procs).remove(&rel);
            let line = match &e {
                CodeError::Compile { line, .. } => Value::from_u64(*line as u64),
                _ => Value::Nil,
            };
            let data = Value::Map(vec![(Value::from("line"), line)].into());
            if let Err(err) = errors
                .record("compile", full, &e.to_string(), 0, data)
                .await
            {
                tracing::warn!(error = %err, "cannot record a compile error");
            }
        }
    }
}
