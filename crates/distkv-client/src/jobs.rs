//! Jobs for runners (code-and-runners.md §3), as an administration tool
//! writes and reads them: where a job and its state are stored, changing
//! a job's fields, listing jobs with their states. Running jobs is
//! [`runner`](crate::runner)'s job (with the `code` feature).
//!
//! ```no_run
//! # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::jobs::JobError> {
//! use distkv_client::jobs::{JobChange, RunnerKind};
//! use distkv_tree::{Path, PathElem, Value};
//!
//! let change = JobChange {
//!     code: Some(vec![Value::from("the"), Value::from("answer")]),
//!     repeat: Some(60.0),
//!     start_in: Some(0.0),
//!     ..JobChange::default()
//! };
//! let scope = RunnerKind::Any.into();
//! client.job_update(&scope, &Path::from_strs(&["hello"]), &change).await?;
//! for job in client.job_list(&scope, &Path::root()).await? {
//!     println!("{}: {:?}", job.path, job.state);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use distkv_proto::ErrorClass;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

use crate::{Client, ClientError, TreeOptions, WriteOptions};

/// Which jobs a runner runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerKind {
    /// Jobs any runner of the group may run (one at a time).
    Any,
    /// The jobs of this node only.
    Single(String),
    /// Jobs every node runs, each with its own state; the name is this
    /// runner's.
    All(String),
}

/// The group of jobs a runner works on when none is named, as the
/// original calls it; its jobs keep the 0.7.1 layout (no group element).
pub const DEFAULT_GROUP: &str = "default";

/// A set of jobs: those of one runner kind in one job group.
///
/// Runners of a group run only that group's jobs and co-ordinate only
/// with each other. The default group keeps the original 0.7.1's layout
/// (`.distkv run any JOB…`); a named group `G` lives in its own subtree
/// (`.distkv run group G any JOB…`, and `… state group G …`), which no
/// job path of the default group can reach.
///
/// ```
/// use distkv_client::jobs::{JobScope, RunnerKind};
/// use distkv_tree::Path;
///
/// let (job, state) = JobScope::new(RunnerKind::Any, Some("lights"))
///     .paths(&Path::from_strs(&["on"]));
/// assert_eq!(job, Path::from_strs(&[".distkv", "run", "group", "lights", "any", "on"]));
/// assert_eq!(state, Path::from_strs(&[".distkv", "state", "group", "lights", "any", "on"]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobScope {
    /// Which runners.
    pub kind: RunnerKind,
    /// The job group; `None` is the default group.
    pub group: Option<String>,
}

impl From<RunnerKind> for JobScope {
    fn from(kind: RunnerKind) -> JobScope {
        JobScope { kind, group: None }
    }
}

impl JobScope {
    /// The jobs of `kind` in `group` (`None` or [`DEFAULT_GROUP`]: the
    /// default group).
    pub fn new(kind: RunnerKind, group: Option<&str>) -> JobScope {
        JobScope {
            kind,
            group: group.filter(|g| *g != DEFAULT_GROUP).map(str::to_owned),
        }
    }

    /// The group's name as the original shows it.
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or(DEFAULT_GROUP)
    }

    /// `.distkv WORD [group G] any|at NODE|all [RUNNER]`, the runner's
    /// name only with `runner_too` (states of `all` jobs are per runner).
    fn place(&self, word: &str, runner_too: bool) -> Path {
        let mut p = Path::from_strs(&[".distkv", word]);
        if let Some(g) = &self.group {
            p.0.push(PathElem::from("group"));
            p.0.push(PathElem::from(g.as_str()));
        }
        match &self.kind {
            RunnerKind::Any => p.0.push(PathElem::from("any")),
            RunnerKind::Single(n) => {
                p.0.push(PathElem::from("at"));
                p.0.push(PathElem::from(n.as_str()));
            }
            RunnerKind::All(n) => {
                p.0.push(PathElem::from("all"));
                if runner_too {
                    p.0.push(PathElem::from(n.as_str()));
                }
            }
        }
        p
    }

    /// Where these jobs are stored: `.distkv run any`, `.distkv run at
    /// NODE` or `.distkv run all`, as the original keeps them (with
    /// `group G` after `run` for a named group).
    pub fn jobs(&self) -> Path {
        self.place("run", false)
    }

    /// Where these jobs' states are stored: `.distkv state any`,
    /// `.distkv state at NODE` or `.distkv state all RUNNER` (with `group
    /// G` after `state` for a named group).
    pub fn states(&self) -> Path {
        self.place("state", true)
    }

    /// Where job `job` (relative path) is stored, and its state.
    pub fn paths(&self, job: &Path) -> (Path, Path) {
        let mut j = self.jobs();
        j.0.extend(job.elems().iter().cloned());
        let mut s = self.states();
        s.0.extend(job.elems().iter().cloned());
        (j, s)
    }

    /// The message topic the runners of these jobs ping each other on
    /// (the original's actor groups `run.run-any` and `run.run-at`; a
    /// named group's runners use their own).
    pub fn topic(&self) -> String {
        let kind = match &self.kind {
            RunnerKind::Any => "run-any".to_owned(),
            RunnerKind::Single(n) => format!("run-at.{n}"),
            RunnerKind::All(_) => "run-all".to_owned(),
        };
        match &self.group {
            None => format!("run.{kind}"),
            Some(g) => format!("run.group.{g}.{kind}"),
        }
    }
}

/// Where job `job` (relative path) of `scope` is stored, and its state.
pub fn job_paths(scope: &JobScope, job: &Path) -> (Path, Path) {
    scope.paths(job)
}

/// Where a path below `.distkv run` or `.distkv state` belongs: as
/// [`job_place`] finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlace<'a> {
    /// The group (`None`: the default group).
    pub group: Option<&'a PathElem>,
    /// `any`, `at` or `all`.
    pub kind: &'static str,
    /// The node of an `at` place.
    pub node: Option<&'a PathElem>,
    /// The rest: the job's path (for states of `all` jobs, the runner's
    /// name first).
    pub rest: &'a [PathElem],
}

/// Splits `rel`, a path relative to `.distkv run` or `.distkv state`,
/// into its group, kind, node and job; `None` when it is not a job's
/// place.
///
/// ```
/// use distkv_client::jobs::job_place;
/// use distkv_tree::Path;
///
/// let p = Path::from_strs(&["group", "g", "at", "n1", "a"]);
/// let place = job_place(p.elems()).unwrap();
/// assert_eq!((place.kind, place.rest.len()), ("at", 1));
/// ```
pub fn job_place(rel: &[PathElem]) -> Option<JobPlace<'_>> {
    let (group, rel) = match rel {
        [PathElem::Str(g), name, rest @ ..] if g == "group" => (Some(name), rest),
        _ => (None, rel),
    };
    let (kind, node, rest) = match rel.split_first()? {
        (PathElem::Str(k), rest) if k == "any" => ("any", None, rest),
        (PathElem::Str(k), rest) if k == "all" => ("all", None, rest),
        (PathElem::Str(k), rest) if k == "at" => {
            let (node, rest) = rest.split_first()?;
            ("at", Some(node), rest)
        }
        _ => return None,
    };
    Some(JobPlace {
        group,
        kind,
        node,
        rest,
    })
}

/// Why a job could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// There is no job at this path yet, and the change names no code.
    #[error("a new job needs code")]
    NoCode,
    /// The server refused, or the connection failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Fields to change in a job; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobChange {
    /// The procedure to run: its path below `.distkv code proc`.
    pub code: Option<Vec<Value>>,
    /// The base of the delay's growth after failures.
    pub backoff: Option<f64>,
    /// Start this many seconds from now (`target`).
    pub start_in: Option<f64>,
    /// Seconds between the end of a successful run and the next start.
    pub repeat: Option<f64>,
    /// Seconds after a failure before the next start.
    pub delay: Option<f64>,
    /// A description.
    pub info: Option<String>,
    /// Seconds after which a run counts as started well (`ok_after`):
    /// its failure then counts as the first one.
    pub ok_after: Option<f64>,
    /// Do not start the job again (`target` cleared); `start_in` wins.
    pub clear_target: bool,
    /// Entries of the job's `data` (the code's named values) to set
    /// (`Some`) or to remove (`None`), in order.
    pub data: Vec<(String, Option<Value>)>,
}

impl JobChange {
    /// `job` with this change applied, `now` being the current unix time.
    /// A field that is changed moves to the end of the record, as the
    /// original writes it.
    pub fn apply(&self, job: &mut Value, now: f64) {
        let data = (!self.data.is_empty()).then(|| {
            let mut data = match job.get("data") {
                Some(Value::Map(m)) => m.clone(),
                _ => Default::default(),
            };
            for (name, value) in &self.data {
                match value {
                    Some(v) => match data.iter_mut().find(|(k, _)| k.as_str() == Some(name)) {
                        Some(slot) => slot.1 = v.clone(),
                        None => data.push((Value::from(name.as_str()), v.clone())),
                    },
                    None => data.retain(|(k, _)| k.as_str() != Some(name)),
                }
            }
            Value::Map(data)
        });
        let mut set = |k: &str, v: Value| {
            if let Value::Map(m) = job {
                m.retain(|(key, _)| key.as_str() != Some(k));
                m.push((Value::from(k), v));
            }
        };
        if let Some(c) = &self.code {
            set("code", Value::Array(c[..].into()));
        }
        if let Some(b) = self.backoff {
            set("backoff", Value::Float(b));
        }
        if let Some(t) = self.start_in {
            set("target", Value::Float(now + t));
        } else if self.clear_target {
            set("target", Value::Nil);
        }
        if let Some(r) = self.repeat {
            set("repeat", Value::Float(r));
        }
        if let Some(d) = self.delay {
            set("delay", Value::Float(d));
        }
        if let Some(i) = &self.info {
            set("info", Value::from(i.as_str()));
        }
        if let Some(k) = self.ok_after {
            set("ok_after", Value::Float(k));
        }
        if let Some(data) = data {
            set("data", data);
        }
    }
}

/// What [`Client::job_delete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobDeleted {
    /// There is no such job.
    Missing,
    /// The job and its state are gone.
    Deleted,
    /// The job is running: it was kept, but will not start again
    /// (`target` cleared; delete it again once it stopped, or force it).
    StillRunning,
    /// The job was running and was deleted anyway (forced): the runner
    /// still finishes the run and writes its state.
    DeletedUnclean,
}

impl std::fmt::Display for JobDeleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobDeleted::Missing => "Does not exist.",
            JobDeleted::Deleted => "Deleted.",
            JobDeleted::StillRunning => "Still running, not deleted ('target' cleared).",
            JobDeleted::DeletedUnclean => "Deleted (unclean!).",
        })
    }
}

/// A job with its state, as [`Client::job_list`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobListing {
    /// The job's path relative to the kind's job subtree.
    pub path: Path,
    /// The job record.
    pub job: Value,
    /// Its state record, if a runner has written one.
    pub state: Option<Value>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Client {
    /// Changes job `job` of `scope` (creating it: then `change` must name
    /// its code), keeping the fields `change` leaves alone.
    pub async fn job_update(
        &self,
        scope: &JobScope,
        job: &Path,
        change: &JobChange,
    ) -> Result<(), JobError> {
        let (path, _) = scope.paths(job);
        let mut record = self
            .get(&path)
            .await?
            .unwrap_or(Value::Map(Default::default()));
        if change.code.is_none() && record.get("code").is_none() {
            return Err(JobError::NoCode);
        }
        change.apply(&mut record, unix_now());
        self.set(&path, record).await?;
        Ok(())
    }

    /// Deletes job `job` of `scope` and its state. A running job (its
    /// state names a runner) is only kept from starting again, unless
    /// `force`; each write is conditional on what was read, so a change
    /// meanwhile makes it fail instead of losing the change.
    ///
    /// ```no_run
    /// # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
    /// use distkv_client::jobs::RunnerKind;
    /// use distkv_tree::Path;
    ///
    /// let scope = RunnerKind::Any.into();
    /// let done = client.job_delete(&scope, &Path::from_strs(&["a", "question"]), false).await?;
    /// println!("{done}");
    /// # Ok(()) }
    /// ```
    pub async fn job_delete(
        &self,
        scope: &JobScope,
        job: &Path,
        force: bool,
    ) -> Result<JobDeleted, ClientError> {
        let (path, state_path) = scope.paths(job);
        let entry = self.get_entry(&path, 1).await?;
        let Some(mut record) = entry.value else {
            return Ok(JobDeleted::Missing);
        };
        let state = self.get_entry(&state_path, 1).await?;
        let running = state
            .value
            .as_ref()
            .and_then(|v| v.get("node"))
            .is_some_and(|n| !n.is_nil());
        let cond = |chain: &Option<distkv_tree::Chain>| WriteOptions {
            chain: Some(chain.as_ref().map(|c| c.head().clone())),
            ..WriteOptions::default()
        };
        if running && !force {
            JobChange {
                clear_target: true,
                ..JobChange::default()
            }
            .apply(&mut record, unix_now());
            self.set_with(&path, Some(record), &cond(&entry.chain))
                .await?;
            return Ok(JobDeleted::StillRunning);
        }
        if state.value.is_some() {
            self.set_with(&state_path, None, &cond(&state.chain))
                .await?;
        }
        self.set_with(&path, None, &cond(&entry.chain)).await?;
        Ok(if running {
            JobDeleted::DeletedUnclean
        } else {
            JobDeleted::Deleted
        })
    }

    /// Job `job` of `scope`, if it exists.
    pub async fn job_get(
        &self,
        scope: &JobScope,
        job: &Path,
    ) -> Result<Option<Value>, ClientError> {
        self.get(&scope.paths(job).0).await
    }

    /// The state of job `job` of `scope`, if a runner has written one.
    pub async fn job_state(
        &self,
        scope: &JobScope,
        job: &Path,
    ) -> Result<Option<Value>, ClientError> {
        self.get(&scope.paths(job).1).await
    }

    /// The jobs of `scope` at and below `below`, in tree order, each with
    /// its state; paths are relative to `below`.
    pub async fn job_list(
        &self,
        scope: &JobScope,
        below: &Path,
    ) -> Result<Vec<JobListing>, ClientError> {
        let (root, state_root) = scope.paths(below);
        let jobs = self.values_below(&root).await?;
        let mut states: HashMap<Path, Value> =
            self.values_below(&state_root).await?.into_iter().collect();
        Ok(jobs
            .into_iter()
            .map(|(path, job)| JobListing {
                state: states.remove(&path),
                path,
                job,
            })
            .collect())
    }

    /// Every set of jobs that holds at least one job, in tree order: the
    /// original's `run info` lists their groups. `All` scopes carry an
    /// empty runner name.
    pub async fn job_scopes(&self) -> Result<Vec<JobScope>, ClientError> {
        let run = Path::from_strs(&[".distkv", "run"]);
        let mut out: Vec<JobScope> = Vec::new();
        for (path, _) in self.values_below(&run).await? {
            let Some(place) = job_place(path.elems()) else {
                continue;
            };
            if place.rest.is_empty() {
                continue;
            }
            // groups and nodes are names: other keys are not a runner's
            let kind = match (place.kind, place.node.map(PathElem::as_str)) {
                ("at", Some(Some(n))) => RunnerKind::Single(n.to_owned()),
                ("at", _) => continue,
                ("all", _) => RunnerKind::All(String::new()),
                _ => RunnerKind::Any,
            };
            let group = match place.group.map(PathElem::as_str) {
                None => None,
                Some(Some(g)) => Some(g.to_owned()),
                Some(None) => continue,
            };
            let scope = JobScope { kind, group };
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Every value at and below `root`, with paths relative to it; none
    /// when nothing was ever stored there.
    async fn values_below(&self, root: &Path) -> Result<Vec<(Path, Value)>, ClientError> {
        let missing = |e: &ClientError| match e {
            ClientError::Server(e) => e.class() == Some(ErrorClass::Key),
            _ => false,
        };
        let mut out = Vec::new();
        let mut stream = match self.get_tree(root, &TreeOptions::default()).await {
            Ok(s) => s,
            Err(e) if missing(&e) => return Ok(out),
            Err(e) => return Err(e),
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(item) => {
                    if let Some(v) = item.value {
                        out.push((Path(item.path.elems()[root.len()..].to_vec()), v));
                    }
                }
                Err(e) if out.is_empty() && missing(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_states_live_in_their_kinds_subtrees() {
        let job = Path::from_strs(&["a", "b"]);
        let (j, s) = job_paths(&RunnerKind::Single("n1".into()).into(), &job);
        assert_eq!(
            j,
            Path::from_strs(&[".distkv", "run", "at", "n1", "a", "b"])
        );
        assert_eq!(
            s,
            Path::from_strs(&[".distkv", "state", "at", "n1", "a", "b"])
        );
        let (j, s) = job_paths(&RunnerKind::All("me".into()).into(), &job);
        assert_eq!(j, Path::from_strs(&[".distkv", "run", "all", "a", "b"]));
        assert_eq!(
            s,
            Path::from_strs(&[".distkv", "state", "all", "me", "a", "b"])
        );
    }

    #[test]
    fn a_named_group_has_its_own_subtrees_and_topic() {
        let job = Path::from_strs(&["a"]);
        let g = JobScope::new(RunnerKind::Single("n1".into()), Some("g"));
        let (j, s) = g.paths(&job);
        assert_eq!(
            j,
            Path::from_strs(&[".distkv", "run", "group", "g", "at", "n1", "a"])
        );
        assert_eq!(
            s,
            Path::from_strs(&[".distkv", "state", "group", "g", "at", "n1", "a"])
        );
        assert_eq!(g.topic(), "run.group.g.run-at.n1");
        // the default group, by name or not, keeps the 0.7.1 layout
        let d = JobScope::new(RunnerKind::Any, Some(DEFAULT_GROUP));
        assert_eq!(d, RunnerKind::Any.into());
        assert_eq!(d.topic(), "run.run-any");
        assert_eq!(d.group_name(), "default");
        // and its places are found again
        let place = job_place(&j.elems()[2..]).expect("a job's place");
        assert_eq!(place.group, Some(&PathElem::from("g")));
        assert_eq!(
            (place.kind, place.node),
            ("at", Some(&PathElem::from("n1")))
        );
        assert_eq!(place.rest, job.elems());
        let any = Path::from_strs(&["any", "group"]);
        let place = job_place(any.elems()).expect("any");
        assert_eq!((place.group, place.kind), (None, "any"));
        assert_eq!(job_place(Path::from_strs(&["group", "g"]).elems()), None);
        assert_eq!(job_place(Path::from_strs(&["at"]).elems()), None);
    }

    #[test]
    fn a_change_keeps_other_fields_and_moves_changed_ones_last() {
        let mut job = Value::Map(
            vec![
                (
                    Value::from("code"),
                    Value::Array(vec![Value::from("x")].into()),
                ),
                (Value::from("repeat"), Value::Float(5.0)),
                (Value::from("info"), Value::from("old")),
            ]
            .into(),
        );
        JobChange {
            repeat: Some(10.0),
            start_in: Some(3.0),
            ..JobChange::default()
        }
        .apply(&mut job, 1000.0);
        let keys: Vec<_> = match &job {
            Value::Map(m) => m.iter().filter_map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(keys, ["code", "info", "target", "repeat"]);
        assert_eq!(job.get("repeat"), Some(&Value::Float(10.0)));
        assert_eq!(job.get("target"), Some(&Value::Float(1003.0)));
        assert_eq!(job.get("info").and_then(Value::as_str), Some("old"));
    }

    #[test]
    fn parameters_are_set_and_removed_and_the_target_cleared() {
        let mut job = Value::Map(
            vec![
                (
                    Value::from("code"),
                    Value::Array(vec![Value::from("x")].into()),
                ),
                (Value::from("target"), Value::Float(5.0)),
                (
                    Value::from("data"),
                    Value::Map(
                        vec![
                            (Value::from("a"), Value::Int(1)),
                            (Value::from("b"), Value::Int(2)),
                        ]
                        .into(),
                    ),
                ),
            ]
            .into(),
        );
        JobChange {
            data: vec![
                ("b".into(), None),
                ("a".into(), Some(Value::from("one"))),
                ("c".into(), Some(Value::Int(3))),
            ],
            ok_after: Some(2.5),
            clear_target: true,
            ..JobChange::default()
        }
        .apply(&mut job, 1000.0);
        assert_eq!(job.get("target"), Some(&Value::Nil));
        assert_eq!(job.get("ok_after"), Some(&Value::Float(2.5)));
        assert_eq!(
            job.get("data"),
            Some(&Value::Map(
                vec![
                    (Value::from("a"), Value::from("one")),
                    (Value::from("c"), Value::Int(3)),
                ]
                .into()
            ))
        );
    }
}
