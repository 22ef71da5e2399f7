//! A server's data directory (`distkv server --data DIR`): one command
//! line for the first start and every restart.
//!
//! The directory holds state logs named `distkv-YYYYMMDDTHHMMSS.mmmZ.state`
//! (UTC; the names sort by time). Each log begins with a full dump and
//! then records every change, so the newest *complete* one holds
//! everything; the file `complete` names it once its dump has been written.
//! At start the server loads that log and every newer one (a newer one may
//! have been cut short by a crash while dumping), then starts a new log.
//! Every `server.log_rotate` it starts another, and once that one is
//! complete it deletes the oldest logs beyond `server.log_keep` (never the
//! complete one, nor anything newer).
//!
//! The directory logic is plain and synchronous; the server calls it from
//! blocking tasks.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The file naming the newest complete state log.
const COMPLETE: &str = "complete";
/// The state logs' name prefix and suffix.
const PREFIX: &str = "distkv-";
const SUFFIX: &str = ".state";

/// Where a server keeps its state logs, and how it rotates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// The directory (created if missing).
    pub path: PathBuf,
    /// How often a new log is started (`None`: only at start).
    pub rotate: Option<Duration>,
    /// How many logs to keep (at least 1).
    pub keep: usize,
}

/// What a start does with the directory: the logs to load, oldest first,
/// and the new log to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartPlan {
    /// Existing logs to load, oldest first (empty on a first start).
    pub load: Vec<PathBuf>,
    /// The new state log.
    pub save: PathBuf,
}

/// Whether `name` is a state log's file name.
fn is_log(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(SUFFIX) && name.len() > PREFIX.len() + SUFFIX.len()
}

/// The logs to load: the complete one and everything newer; everything when
/// none is known to be complete. `names` are sorted.
fn names_to_load<'a>(names: &'a [String], complete: Option<&str>) -> &'a [String] {
    match complete.and_then(|c| names.iter().position(|n| n == c)) {
        Some(i) => &names[i..],
        None => names,
    }
}

/// The logs to delete: the oldest beyond `keep`, never the complete one or
/// a newer one. Without a complete log nothing is deleted. `names` are
/// sorted.
fn names_to_prune<'a>(names: &'a [String], complete: Option<&str>, keep: usize) -> &'a [String] {
    let Some(c) = complete.and_then(|c| names.iter().position(|n| n == c)) else {
        return &[];
    };
    let excess = names.len().saturating_sub(keep.max(1));
    &names[..excess.min(c)]
}

/// A log's file name for a time: `distkv-20261206T093000.123Z.state`.
fn name_at(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{PREFIX}{y:04}{m:02}{day:02}T{:02}{:02}{:02}.{:03}Z{SUFFIX}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

impl DataDir {
    /// A data directory rotating daily and keeping 7 logs.
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        DataDir {
            path: path.into(),
            rotate: Some(Duration::from_secs(86_400)),
            keep: 7,
        }
    }

    /// The state logs in the directory, sorted (oldest first).
    fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.path)? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                if is_log(n) && e.file_type()?.is_file() {
                    names.push(n.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The name in `complete`, if it names a log.
    fn complete(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path.join(COMPLETE)).ok()?;
        let name = text.trim();
        is_log(name).then(|| name.to_owned())
    }

    /// A new log's path, after every existing one.
    pub fn next_log(&self, now: SystemTime) -> std::io::Result<PathBuf> {
        let names = self.names()?;
        let mut t = now;
        loop {
            let name = name_at(t);
            if names
                .last()
                .is_none_or(|last| name.as_str() > last.as_str())
            {
                return Ok(self.path.join(name));
            }
            t += Duration::from_millis(1);
        }
    }

    /// Creates the directory if needed and plans a start at `now`.
    pub fn plan_start(&self, now: SystemTime) -> std::io::Result<StartPlan> {
        std::fs::create_dir_all(&self.path)?;
        let names = self.names()?;
        let complete = self.complete();
        let load = names_to_load(&names, complete.as_deref())
            .iter()
            .map(|n| self.path.join(n))
            .collect();
        Ok(StartPlan {
            load,
            save: self.next_log(now)?,
        })
    }

    /// Records `log` as the newest complete log (its dump is written),
    /// replacing `complete` atomically.
    pub fn mark_complete(&self, log: &Path) -> std::io::Result<()> {
        let Some(name) = log.file_name().and_then(|n| n.to_str()) else {
            return Err(std::io::Error::other("a state log needs a UTF-8 file name"));
        };
        let tmp = self.path.join(format!("{COMPLETE}.tmp"));
        std::fs::write(&tmp, format!("{name}\n"))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, self.path.join(COMPLETE))
    }

    /// Deletes the oldest logs beyond [`DataDir::keep`]; returns them.
    pub fn prune(&self) -> std::io::Result<Vec<PathBuf>> {
        let names = self.names()?;
        let complete = self.complete();
        let mut gone = Vec::new();
        for n in names_to_prune(&names, complete.as_deref(), self.keep) {
            let p = self.path.join(n);
            std::fs::remove_file(&p)?;
            gone.push(p);
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| format!("{PREFIX}{s}{SUFFIX}")).collect()
    }

    #[test]
    fn names_sort_by_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_549_400_123);
        assert_eq!(name_at(t), "distkv-20261206T093000.123Z.state");
        assert_eq!(name_at(UNIX_EPOCH), "distkv-19700101T000000.000Z.state");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(name_at(leap), "distkv-20000229T000000.000Z.state");
        assert!(name_at(t) < name_at(t + Duration::from_millis(1)));
        assert!(is_log(&name_at(t)) && !is_log("complete") && !is_log("distkv-.state"));
    }

    #[test]
    fn loads_from_the_newest_complete_log() {
        let all = names(&["1", "2", "3", "4"]);
        assert_eq!(names_to_load(&all, Some(&all[1])), &all[1..]);
        assert_eq!(names_to_load(&all, Some(&all[3])), &all[3..]);
        // unknown or missing marker: everything, oldest first
        assert_eq!(names_to_load(&all, None), &all[..]);
        assert_eq!(names_to_load(&all, Some("distkv-9.state")), &all[..]);
        assert!(names_to_load(&[], None).is_empty());
    }

    #[test]
    fn prunes_only_what_the_complete_log_makes_redundant() {
        let all = names(&["1", "2", "3", "4", "5"]);
        assert_eq!(names_to_prune(&all, Some(&all[4]), 2), &all[..3]);
        // the complete one and newer ones stay, whatever keep says
        assert_eq!(names_to_prune(&all, Some(&all[1]), 1), &all[..1]);
        assert_eq!(names_to_prune(&all, Some(&all[4]), 0), &all[..4]);
        assert!(names_to_prune(&all, None, 1).is_empty());
        assert!(names_to_prune(&all, Some(&all[4]), 7).is_empty());
    }

    #[test]
    fn a_directory_round() {
        let dir = std::env::temp_dir().join(format!("distkv-data-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = DataDir {
            keep: 2,
            ..DataDir::new(&dir)
        };
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = d.plan_start(t0).expect("plans");
        assert!(first.load.is_empty());
        std::fs::write(&first.save, b"x").expect("write");
        // the same millisecond again: a later name
        let again = d.next_log(t0).expect("next");
        assert!(again > first.save);
        d.mark_complete(&first.save).expect("mark");
        let second = d.plan_start(t0 + Duration::from_secs(1)).expect("plans");
        assert_eq!(second.load, vec![first.save.clone()]);
        std::fs::write(&second.save, b"y").expect("write");
        // a crash before the second log's dump completed: load both
        assert_eq!(
            d.plan_start(t0 + Duration::from_secs(2))
                .expect("plans")
                .load,
            vec![first.save.clone(), second.save.clone()]
        );
        let third = d.next_log(t0 + Duration::from_secs(3)).expect("next");
        std::fs::write(&third, b"z").expect("write");
        d.mark_complete(&third).expect("mark");
        assert_eq!(d.prune().expect("prunes"), vec![first.save.clone()]);
        assert_eq!(d.names().expect("lists").len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
