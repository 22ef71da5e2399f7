//! The errors subsystem and the runners' jobs, as the errors and jobs
//! pages show them: `GET /api/errors`, `POST /api/resolve`, `GET
//! /api/jobs`. Both read their subtrees of `.distkv` with bounded walks
//! (at most [`MAX_ITEMS`] entries each, `truncated` beyond).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use distkv_client::jobs::{JobPlace, job_place};
use distkv_client::{Client, ClientError, TreeItem, TreeOptions, WriteOptions};
use distkv_proto::ErrorClass;
use distkv_tree::{Path, PathElem, Value};
use serde_json::{Value as Json, json};

use crate::ConsoleError;
use crate::api::{body_chain, body_path, chain};
use crate::json;

/// Entries read per walk of a subtree.
pub const MAX_ITEMS: usize = 2000;

/// Where the error records are.
fn errors_root() -> Path {
    distkv_client::error_log::default_prefix()
}

/// The entries with values at and below `root` down to `max_depth`
/// levels, at most [`MAX_ITEMS`] (then `true`); none if nothing was ever
/// stored there.
async fn walk(
    c: &Client,
    root: &Path,
    max_depth: Option<usize>,
) -> Result<(Vec<TreeItem>, bool), ConsoleError> {
    let missing = |e: &ClientError| match e {
        ClientError::Server(e) => e.class() == Some(ErrorClass::Key),
        _ => false,
    };
    let opts = TreeOptions {
        nchain: 1,
        max_depth,
        ..TreeOptions::default()
    };
    let mut s = match c.get_tree(root, &opts).await {
        Ok(s) => s,
        Err(e) if missing(&e) => return Ok((Vec::new(), false)),
        Err(e) => return Err(ConsoleError::from_client(&e)),
    };
    let mut out = Vec::new();
    while let Some(item) = s.next_existing().await {
        let item = match item {
            Ok(i) => i,
            Err(e) if out.is_empty() && missing(&e) => break,
            Err(e) => return Err(ConsoleError::from_client(&e)),
        };
        if item.value.is_none() {
            continue;
        }
        if out.len() == MAX_ITEMS {
            return Ok((out, true));
        }
        out.push(item);
    }
    Ok((out, false))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A number field as a float (0 otherwise).
#[allow(clippy::cast_precision_loss)] // times and counts, for sorting
fn number(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        _ => v.as_u64().map_or(0.0, |u| u as f64),
    }
}

fn field(v: &Value, k: &str) -> Json {
    v.get(k).map_or(Json::Null, json::value)
}

/// Whether a record is open: `resolved` missing, nil or false.
fn is_open(v: &Value) -> bool {
    v.get("resolved")
        .is_none_or(|r| r.is_nil() || r == &Value::Bool(false))
}

/// One record as the page shows it.
fn record(item: &TreeItem, details: Vec<Json>) -> Json {
    let v = item.value.as_ref().unwrap_or(&Value::Nil);
    let about = v
        .get("path")
        .cloned()
        .and_then(|p| Path::from_value(p).ok())
        .map_or_else(|| field(v, "path"), |p| json::path(&p));
    let node = item.path.elems().get(2).map_or(Json::Null, json::elem);
    json!({
        "at": json::path(&item.path),
        "node": node,
        "chain": chain(item.chain.as_ref()),
        "open": is_open(v),
        "subsystem": field(v, "subsystem"),
        "path": about,
        "message": field(v, "message"),
        "severity": field(v, "severity"),
        "count": field(v, "count"),
        "created": field(v, "created"),
        "last_seen": field(v, "last_seen"),
        "resolved": field(v, "resolved"),
        "details": details,
    })
}

/// `GET /api/errors`: every record (`.distkv error NODE TOCK`), open
/// ones first, each most recent first, with the details of each
/// reporting node (`… NODE TOCK REPORTER`).
pub(crate) async fn errors(c: &Client) -> Result<Json, ConsoleError> {
    let root = errors_root();
    let (items, truncated) = walk(c, &root, Some(3)).await?;
    let depth = root.len();
    let mut details: HashMap<Path, Vec<Json>> = HashMap::new();
    let mut records = Vec::new();
    for item in &items {
        match item.path.len() - depth {
            2 => records.push(item),
            3 => {
                let parent = Path(item.path.elems()[..depth + 2].to_vec());
                let reporter = item.path.elems().last().map_or(Json::Null, json::elem);
                let value = item.value.as_ref().map_or(Json::Null, json::value);
                details
                    .entry(parent)
                    .or_default()
                    .push(json!({"reporter": reporter, "value": value}));
            }
            _ => {}
        }
    }
    let mut out: Vec<(bool, f64, Json)> = records
        .into_iter()
        .map(|item| {
            let v = item.value.as_ref().unwrap_or(&Value::Nil);
            let seen = v
                .get("last_seen")
                .or_else(|| v.get("created"))
                .map_or(0.0, number);
            let d = details.remove(&item.path).unwrap_or_default();
            (is_open(v), seen, record(item, d))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let records: Vec<Json> = out.into_iter().map(|(_, _, r)| r).collect();
    Ok(json!({"errors": records, "truncated": truncated}))
}

/// `POST /api/resolve`: `{at, chain}`, the record at `at` (`.distkv
/// error NODE TOCK`) marked resolved now, if it is still as the user saw
/// it (its chain head). Returns the record.
pub(crate) async fn resolve(c: &Client, body: &Json) -> Result<Json, ConsoleError> {
    let at = body_path(body, "at")?;
    let root = errors_root();
    if at.len() != root.len() + 2 || at.elems()[..root.len()] != *root.elems() {
        return Err(ConsoleError::BadRequest(
            "at: not an error record (.distkv error NODE TOCK)".into(),
        ));
    }
    let Some(seen) = body_chain(body)? else {
        return Err(ConsoleError::BadRequest(
            "chain: the record's chain head as you saw it".into(),
        ));
    };
    let entry = c
        .get_entry(&at, 1)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let Some(Value::Map(mut fields)) = entry.value else {
        return Err(ConsoleError::Conflict(
            "the record is gone or is no record; reload the errors".into(),
        ));
    };
    fields.retain(|(k, _)| k.as_str() != Some("resolved"));
    fields.push((Value::from("resolved"), Value::Float(now())));
    let value = Value::Map(fields);
    let opts = WriteOptions {
        chain: Some(Some(seen)),
        nchain: Some(1),
        ..WriteOptions::default()
    };
    let r = c
        .set_with(&at, Some(value.clone()), &opts)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let item = TreeItem {
        path: at,
        value: Some(value),
        chain: r.chain,
        tock: r.tock,
        raw: Value::Nil,
    };
    Ok(record(&item, Vec::new()))
}

/// `GET /api/jobs`: the jobs of `.distkv run [group G] any|at NODE|all`
/// (places found by [`job_place`]) with the
/// states the runners wrote in `.distkv state any|at NODE|all RUNNER`.
pub(crate) async fn jobs(c: &Client) -> Result<Json, ConsoleError> {
    let run = Path::from_strs(&[".distkv", "run"]);
    let state = Path::from_strs(&[".distkv", "state"]);
    let (jobs, jobs_cut) = walk(c, &run, None).await?;
    let (states, states_cut) = walk(c, &state, None).await?;
    // (group, kind, node of `at`, job path) → [(runner of `all`, state)]
    type Key = (
        Option<PathElem>,
        &'static str,
        Option<PathElem>,
        Vec<PathElem>,
    );
    let mut by_job: HashMap<Key, Vec<Json>> = HashMap::new();
    for s in &states {
        let Some(at) = job_place(&s.path.elems()[state.len()..]) else {
            continue;
        };
        let group = at.group.cloned();
        let value = s.value.as_ref().map_or(Json::Null, json::value);
        let (key, runner) = match at.kind {
            // the states of `all` jobs are per runner
            "all" => {
                let Some((runner, job)) = at.rest.split_first() else {
                    continue;
                };
                ((group, "all", None, job.to_vec()), json::elem(runner))
            }
            kind => (
                (group, kind, at.node.cloned(), at.rest.to_vec()),
                Json::Null,
            ),
        };
        by_job
            .entry(key)
            .or_default()
            .push(json!({"runner": runner, "state": value}));
    }
    let mut out = Vec::new();
    for j in &jobs {
        let Some(JobPlace {
            group,
            kind,
            node,
            rest: job,
        }) = job_place(&j.path.elems()[run.len()..])
        else {
            continue;
        };
        let states = by_job
            .remove(&(group.cloned(), kind, node.cloned(), job.to_vec()))
            .unwrap_or_default();
        out.push(json!({
            "group": group.map_or(Json::Null, json::elem),
            "kind": kind,
            "node": node.map_or(Json::Null, json::elem),
            "path": json::path(&Path(job.to_vec())),
            "at": json::path(&j.path),
            "job": j.value.as_ref().map_or(Json::Null, json::value),
            "states": states,
        }));
    }
    Ok(json!({"jobs": out, "truncated": jobs_cut || states_cut}))
}
