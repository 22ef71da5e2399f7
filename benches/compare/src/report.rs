//! The results: a Markdown table (throughput with ratios against
//! distkv-rs, latency, peak memory, the targets) and a JSON file.

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use crate::Plan;
use crate::systems::Proc;
use crate::workload::Measure;

/// One workload's result.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The workload's name.
    pub workload: String,
    /// What it measured.
    pub measure: Measure,
}

/// One system's results, or why it did not run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SystemRun {
    /// Why the system was skipped.
    pub skipped: Option<String>,
    /// Remarks (such as reduced counts).
    pub note: Option<String>,
    /// Peak RSS of the (largest) server process, KiB.
    pub peak_rss_kib: Option<u64>,
    /// RSS of the server the workloads used first, at the end, KiB.
    pub rss_kib: Option<u64>,
    /// The workloads' results.
    pub rows: Vec<Row>,
}

impl SystemRun {
    /// A system that ran; `main` is the server most clients used, `all`
    /// every server process.
    pub fn ran(main: &Proc, all: &[&Proc], rows: Vec<Row>) -> SystemRun {
        SystemRun {
            peak_rss_kib: all.iter().filter_map(|p| p.peak_rss_kib()).max(),
            rss_kib: main.rss_kib(),
            rows,
            ..Default::default()
        }
    }

    /// Adds a remark, if there is one.
    pub fn noting(mut self, note: Option<String>) -> SystemRun {
        if note.is_some() {
            self.note = note;
        }
        self
    }

    /// A system that could not run.
    pub fn skipped(why: &str) -> SystemRun {
        SystemRun {
            skipped: Some(why.to_string()),
            ..Default::default()
        }
    }

    fn rate(&self, workload: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == workload)
            .map(|r| r.measure.ops_per_s)
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |k| k / 1024 / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    format!("{cores} cores ({cpu}), {mem} GiB, Linux {kernel}")
}

fn num(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The head of a table with a column per system that ran.
fn table_head(md: &mut String, ran: &[&(&str, SystemRun)]) {
    let _ = write!(md, "| workload |");
    for (n, _) in ran {
        let _ = write!(md, " {n} |");
    }
    let _ = write!(md, "\n|---|");
    for _ in ran {
        let _ = write!(md, "---:|");
    }
    md.push('\n');
}

/// The Markdown report.
pub fn markdown(plan: &Plan, runs: &[(&str, SystemRun)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {}.", machine());
    if plan.client_threads > 0 {
        let _ = writeln!(
            md,
            "Clients: a Tokio runtime of {} worker thread(s) for every system's client.",
            plan.client_threads
        );
    }
    let _ = writeln!(
        md,
        "Workload: {} keys of 16 bytes, 8-byte values; {} operations per pipelined row (16 requests in flight per connection on 16 connections, 64 on one), {} per sequential row on 1 connection (4× that on 16); {} watched updates (written with 16 in flight).\n",
        num(plan.keys as f64),
        num(plan.ops.max(plan.keys) as f64),
        num(plan.seq_ops as f64),
        num(plan.watch as f64)
    );
    let ran: Vec<&(&str, SystemRun)> = runs.iter().filter(|(_, r)| r.skipped.is_none()).collect();
    let base = runs.iter().find(|(n, _)| *n == "distkv-rs").map(|(_, r)| r);
    let workloads: Vec<String> = ran
        .first()
        .map(|(_, r)| r.rows.iter().map(|x| x.workload.clone()).collect())
        .unwrap_or_default();

    let _ = writeln!(
        md,
        "Operations per second (ratio: distkv-rs ÷ this system):\n"
    );
    table_head(&mut md, &ran);
    for w in &workloads {
        let _ = write!(md, "| {w} |");
        for (n, r) in &ran {
            let cell = match r.rows.iter().find(|x| &x.workload == w) {
                Some(row) => {
                    let m = &row.measure;
                    let mut c = num(m.ops_per_s);
                    if let Some(b) = base.and_then(|b| b.rate(w))
                        && *n != "distkv-rs"
                        && m.ops_per_s > 0.0
                    {
                        let _ = write!(c, " ({:.1}×)", b / m.ops_per_s);
                    }
                    if m.errors > 0 {
                        let _ = write!(c, " ({} errors)", m.errors);
                    }
                    c
                }
                None => "–".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }

    let _ = writeln!(md, "\nLatency p50 / p99 in microseconds:\n");
    table_head(&mut md, &ran);
    for w in &workloads {
        let _ = write!(md, "| {w} |");
        for (_, r) in &ran {
            let cell = r
                .rows
                .iter()
                .find(|x| &x.workload == w)
                .map_or("–".to_string(), |x| {
                    format!(
                        "{} / {}",
                        num(x.measure.p50_us as f64),
                        num(x.measure.p99_us as f64)
                    )
                });
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    let _ = write!(md, "| peak RSS of a server, MiB |");
    for (_, r) in &ran {
        let _ = write!(
            md,
            " {} |",
            r.peak_rss_kib
                .map_or("–".to_string(), |k| num(k as f64 / 1024.0))
        );
    }
    md.push('\n');

    let notes: Vec<String> = runs
        .iter()
        .filter_map(|(n, r)| {
            r.skipped
                .as_ref()
                .map(|s| format!("- {n}: skipped: {s}"))
                .or_else(|| r.note.as_ref().map(|s| format!("- {n}: {s}")))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\n{}", notes.join("\n"));
    }
    md.push_str(&targets(runs));
    md
}

fn targets(runs: &[(&str, SystemRun)]) -> String {
    let get = |n: &str| {
        runs.iter()
            .find(|(x, r)| *x == n && r.skipped.is_none())
            .map(|(_, r)| r)
    };
    let Some(us) = get("distkv-rs") else {
        return String::new();
    };
    let best = |r: &SystemRun, op: &str| {
        r.rows
            .iter()
            .filter(|x| x.workload.starts_with(op))
            .map(|x| x.measure.ops_per_s)
            .fold(0.0, f64::max)
    };
    let mut t = String::from(
        "\nTargets (the best set or get row of each system):\n\n| target | measured | met |\n|---|---:|:---:|\n",
    );
    let mut line = |name: &str, value: String, ok: bool| {
        let _ = writeln!(
            t,
            "| {name} | {value} | {} |",
            if ok { "yes" } else { "**no**" }
        );
    };
    let (s, g) = (best(us, "set"), best(us, "get"));
    line("pipelined sets ≥ 100,000/s", num(s), s >= 100_000.0);
    line("pipelined gets ≥ 150,000/s", num(g), g >= 150_000.0);
    let ratio = |other: &str, op: &str| get(other).map(|r| best(us, op) / best(r, op).max(1e-9));
    if let Some(x) = ratio("DistKV 0.7.1 (Python)", "set") {
        line(
            "set rate ≥ 150× the Python DistKV's",
            format!("{x:.0}×"),
            x >= 150.0,
        );
    }
    if let Some(x) = ratio("etcd", "set") {
        line("set rate ≥ 2× etcd's", format!("{x:.1}×"), x >= 2.0);
    }
    if let Some(x) = ratio("Redis", "set") {
        line(
            "pipelined sets ≥ 0.5× Redis's",
            format!("{x:.2}×"),
            x >= 0.5,
        );
    }
    if let Some(x) = ratio("Redis", "get") {
        line(
            "pipelined gets ≥ 0.5× Redis's",
            format!("{x:.2}×"),
            x >= 0.5,
        );
    }
    t
}

/// The machine-readable results.
pub fn json(plan: &Plan, runs: &[(&str, SystemRun)]) -> Result<String> {
    #[derive(Serialize)]
    struct Out<'a> {
        machine: String,
        plan: &'a Plan,
        systems: Vec<Named<'a>>,
    }
    #[derive(Serialize)]
    struct Named<'a> {
        system: &'a str,
        #[serde(flatten)]
        run: &'a SystemRun,
    }
    let out = Out {
        machine: machine(),
        plan,
        systems: runs
            .iter()
            .map(|(n, r)| Named { system: n, run: r })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&out)?)
}
