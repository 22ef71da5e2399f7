//! The JSON calls: one level of the tree, writes with the chain the user
//! saw.

use std::time::Duration;

use distkv_client::{Client, ClientError, TreeOptions, WriteOptions};
use distkv_tree::{Chain, NodeEvent, Path, PathElem, Precondition, TockClock, Tree};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};

use crate::ConsoleError;
use crate::json;

/// Children listed per level unless the request asks for fewer.
pub const DEFAULT_LIMIT: usize = 200;
/// The most children listed per level.
pub const MAX_LIMIT: usize = 1000;
/// Chain links shown per entry.
const NCHAIN: i64 = 3;

/// A query string: `path` (a JSON array) and `limit`.
pub(crate) struct Query {
    pub path: Path,
    pub limit: usize,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ConsoleError> {
        let mut path = Path::root();
        let mut limit = DEFAULT_LIMIT;
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "path" => {
                    let j: Json = serde_json::from_str(&v)
                        .map_err(|e| ConsoleError::BadRequest(format!("path: not JSON ({e})")))?;
                    path = json::to_path(&j)
                        .map_err(|e| ConsoleError::BadRequest(format!("path: {e}")))?;
                }
                "limit" => {
                    limit = v
                        .parse::<usize>()
                        .map_err(|_| ConsoleError::BadRequest("limit: a count".into()))?
                        .clamp(1, MAX_LIMIT);
                }
                other => {
                    return Err(ConsoleError::BadRequest(format!(
                        "unknown parameter {other:?}"
                    )));
                }
            }
        }
        Ok(Query { path, limit })
    }
}

/// A chain as JSON: its links, most recent first.
pub(crate) fn chain(c: Option<&Chain>) -> Json {
    match c {
        None => Json::Null,
        Some(c) => Json::Array(
            c.links()
                .iter()
                .map(|l| json!({"node": &*l.node, "tick": l.tick}))
                .collect(),
        ),
    }
}

/// One entry's fields: `has_value`, `value` (when it has one), `chain`,
/// `tock`.
pub(crate) fn entry(value: Option<&distkv_tree::Value>, c: Option<&Chain>, tock: u64) -> Json {
    let mut o = serde_json::Map::new();
    o.insert("has_value".into(), Json::Bool(value.is_some()));
    if let Some(v) = value {
        o.insert("value".into(), json::value(v));
    }
    o.insert("chain".into(), chain(c));
    o.insert("tock".into(), json!(tock));
    Json::Object(o)
}

fn level() -> TreeOptions {
    TreeOptions {
        nchain: NCHAIN,
        min_depth: Some(1),
        max_depth: Some(1),
        empty: true,
    }
}

/// How many `has_children` probes of one page run at once.
const PROBES_AT_ONCE: usize = 8;

/// How often a probe the server refused for its stream limit is tried
/// again, and the wait before the first retry (it doubles, up to
/// [`PROBE_RETRY_MAX_WAIT`]).
const PROBE_RETRIES: u32 = 12;
const PROBE_RETRY_WAIT: Duration = Duration::from_millis(5);
const PROBE_RETRY_MAX_WAIT: Duration = Duration::from_millis(200);

/// Whether `path` has a child: the first item of a one-level walk (the
/// stream is dropped after it, which stops the walk).
///
/// The walk is a stream on the server, and a server configured with few
/// streams per connection (`server.max_streams`) refuses it while the
/// page's other probes, or the walks before them, still run: then it is
/// tried again a little later, so a page takes longer instead of failing.
async fn has_children(c: &Client, path: &Path) -> Result<bool, ConsoleError> {
    let mut wait = PROBE_RETRY_WAIT;
    let mut retries = 0;
    loop {
        match probe_children(c, path).await {
            Err(ClientError::Server(e)) if e.is_stream_limit() && retries < PROBE_RETRIES => {
                retries += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(PROBE_RETRY_MAX_WAIT);
            }
            r => return r.map_err(|e| ConsoleError::from_client(&e)),
        }
    }
}

async fn probe_children(c: &Client, path: &Path) -> Result<bool, ClientError> {
    let opts = TreeOptions {
        nchain: 0,
        ..level()
    };
    let mut s = c.get_tree(path, &opts).await?;
    match s.next_existing().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(e),
    }
}

/// `GET /api/tree`: the entry at the path and at most `limit` of its
/// children (`truncated` when there are more), each with whether it has
/// children of its own.
pub(crate) async fn tree(c: &Client, q: &Query) -> Result<Json, ConsoleError> {
    let here = c
        .get_entry(&q.path, NCHAIN)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let mut s = c
        .get_tree(&q.path, &level())
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let mut items = Vec::new();
    let mut truncated = false;
    while let Some(item) = s.next_existing().await {
        let item = item.map_err(|e| ConsoleError::from_client(&e))?;
        if items.len() == q.limit {
            truncated = true;
            break;
        }
        items.push(item);
    }
    drop(s);
    // A few probes at a time: each is a stream on the server, and a page of
    // a thousand all at once would meet the server's limit on open streams
    // (`server.max_streams`) while earlier walks still wind down.
    let probes: Vec<_> = items.iter().map(|i| has_children(c, &i.path)).collect();
    let kids: Vec<_> = futures_util::stream::iter(probes)
        .buffered(PROBES_AT_ONCE)
        .collect()
        .await;
    let mut children = Vec::with_capacity(items.len());
    for (item, kids) in items.iter().zip(kids) {
        let mut e = entry(item.value.as_ref(), item.chain.as_ref(), item.tock);
        if let Json::Object(o) = &mut e {
            let name = item.path.elems().last().map_or(Json::Null, json::elem);
            o.insert("name".into(), name);
            o.insert("has_children".into(), Json::Bool(kids?));
        }
        children.push(e);
    }
    let mut out = entry(here.value.as_ref(), here.chain.as_ref(), here.tock);
    if let Json::Object(o) = &mut out {
        o.insert("path".into(), json::path(&q.path));
        o.insert("children".into(), Json::Array(children));
        o.insert("truncated".into(), Json::Bool(truncated));
        o.insert("bindings".into(), bindings(c, &q.path).await);
    }
    Ok(out)
}

/// The type and the converters that apply to `path`: `{type, codecs:
/// [{group, codec}]}` (type and codec as path arrays; `type` null when
/// none matches), or null when the system subtree cannot be read (a user
/// who is not super-root).
async fn bindings(c: &Client, path: &Path) -> Json {
    let match_root = Path(vec![PathElem::Nil, PathElem::Str("match".into())]);
    let (Ok(matches), Ok(converters)) = (
        c.internal_tree(&match_root).await,
        c.converters(None, &Path::root()).await,
    ) else {
        return Json::Null;
    };
    let mut tree = Tree::new("console", 1);
    tree.mark_ready();
    let clock = TockClock::default();
    for (p, v) in matches {
        let mut full = match_root.clone();
        full.0.extend(p.0);
        let _ = tree.local_change(&full, Some(v), &Precondition::default(), &clock);
    }
    let type_path = distkv_acl::matching_record(&tree, &match_root, path)
        .and_then(|r| r.get("type"))
        .and_then(|t| match t {
            distkv_tree::Value::Str(s) => Some(Path(vec![PathElem::Str(s.clone())])),
            other => Path::from_value(other.clone()).ok(),
        });
    // the converters, a pattern tree per group
    let mut groups: Vec<String> = Vec::new();
    let conv_root = |g: &str| {
        Path(vec![
            PathElem::Nil,
            PathElem::Str("conv".into()),
            PathElem::Str(g.into()),
        ])
    };
    for cv in converters {
        let mut full = conv_root(&cv.group);
        full.0.extend(cv.path.0);
        let record = distkv_tree::Value::Map(vec![("codec".into(), cv.codec.to_value())].into());
        let _ = tree.local_change(&full, Some(record), &Precondition::default(), &clock);
        if !groups.contains(&cv.group) {
            groups.push(cv.group);
        }
    }
    let codecs: Vec<Json> = groups
        .iter()
        .filter_map(|g| {
            let r = distkv_acl::matching_record(&tree, &conv_root(g), path)?;
            let codec = Path::from_value(r.get("codec")?.clone()).ok()?;
            Some(json!({"group": g, "codec": json::path(&codec)}))
        })
        .collect();
    json!({
        "type": type_path.as_ref().map_or(Json::Null, json::path),
        "codecs": codecs,
    })
}

fn bad(t: &str) -> ConsoleError {
    ConsoleError::BadRequest(t.to_owned())
}

/// The body's `path`.
pub(crate) fn body_path(body: &Json, field: &str) -> Result<Path, ConsoleError> {
    body.get(field)
        .ok_or_else(|| bad(&format!("{field}: missing")))
        .and_then(|p| json::to_path(p).map_err(|e| bad(&format!("{field}: {e}"))))
}

/// The body's `chain`: the head the user saw (`{node, tick}`), or `None`
/// for `null` (no value).
pub(crate) fn body_chain(body: &Json) -> Result<Option<NodeEvent>, ConsoleError> {
    match body.get("chain") {
        None => Err(bad(
            "chain: missing (the chain head you saw, or null for no value)",
        )),
        Some(Json::Null) => Ok(None),
        Some(h) => {
            let node = h.get("node").and_then(Json::as_str);
            let tick = h.get("tick").and_then(Json::as_u64);
            match (node, tick) {
                (Some(n), Some(t)) => Ok(Some(NodeEvent::new(n, t))),
                _ => Err(bad("chain: {node, tick} or null")),
            }
        }
    }
}

/// `POST /api/set` (`value` given) and `/api/delete`: `{path, value,
/// chain}` where `chain` is the head the user saw (`{node, tick}`) or
/// `null` when the entry had no value. Returns the entry's new state.
pub(crate) async fn set(c: &Client, body: &Json, with_value: bool) -> Result<Json, ConsoleError> {
    let path = body_path(body, "path")?;
    let value = if with_value {
        let v = body.get("value").ok_or_else(|| bad("value: missing"))?;
        Some(json::to_value(v).map_err(|e| bad(&format!("value: {e}")))?)
    } else {
        None
    };
    let seen = body_chain(body)?;
    if !with_value && seen.is_none() {
        return Err(bad("chain: null; there is no value to delete"));
    }
    let opts = WriteOptions {
        chain: Some(seen),
        nchain: Some(NCHAIN),
        ..WriteOptions::default()
    };
    let r = c
        .set_with(&path, value.clone(), &opts)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let mut out = entry(value.as_ref(), r.chain.as_ref(), r.tock);
    if let Json::Object(o) = &mut out {
        o.insert("path".into(), json::path(&path));
        o.insert("changed".into(), Json::Bool(r.changed));
    }
    Ok(out)
}

/// `POST /api/delete_tree`: `{path, chain}`, every value at and below
/// `path`. The entry at `path` is checked against the chain the user saw
/// (`null`: it had no value, and must still have none); its value, if
/// any, is deleted with that precondition first, then the rest of the
/// subtree (whose entries the user has not necessarily seen, and which
/// are not checked). Returns `{path, deleted}`.
pub(crate) async fn delete_tree(c: &Client, body: &Json) -> Result<Json, ConsoleError> {
    let path = body_path(body, "path")?;
    let seen = body_chain(body)?;
    if path.is_empty() {
        return Err(bad("path: the whole tree is not deleted from the console"));
    }
    let mut deleted = 0;
    match seen {
        Some(head) => {
            let opts = WriteOptions {
                chain: Some(Some(head)),
                nchain: Some(0),
                ..WriteOptions::default()
            };
            let r = c
                .set_with(&path, None, &opts)
                .await
                .map_err(|e| ConsoleError::from_client(&e))?;
            deleted += u64::from(r.changed);
        }
        None => {
            let now = c
                .get_entry(&path, 0)
                .await
                .map_err(|e| ConsoleError::from_client(&e))?;
            if now.value.is_some() {
                return Err(ConsoleError::Conflict(
                    "the entry changed since you saw it (it has a value now); reload it and try \
                     again"
                        .into(),
                ));
            }
        }
    }
    deleted += c
        .delete_tree(&path)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    Ok(json!({"path": json::path(&path), "deleted": deleted}))
}
