//! `distkv server --data DIR`: the same command line for the first start
//! and every restart, state logs rotated and pruned in DIR, through the
//! real binary.

mod common;

use std::time::Duration;

use common::{ScratchDir, ServerProc, eventually};

/// The state logs in `dir`, sorted.
fn logs(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the data directory exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".state"))
        .collect();
    names.sort();
    names
}

/// Starts `one` on `dir` with the same command line every time.
fn start(dir: &str, extra: &[&str]) -> ServerProc {
    let mut global = vec!["-C", "server.log_sync=always"];
    global.extend_from_slice(extra);
    ServerProc::standalone_with("one", Some("Root"), &global, &["--data", dir])
}

#[test]
fn one_command_line_for_the_first_start_and_every_restart() {
    let scratch = ScratchDir::new("data-dir");
    let dir = format!("{}/state", scratch.path());

    // First start: the directory is created, -i makes a new network.
    let s = start(&dir, &[]);
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
    s.ok(&["data", "set", "-v", "Changed"]);
    s.ok(&["data", "set", "-ev", "42", "some", "where"]);
    let first = logs(&dir);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].starts_with("distkv-") && first[0].ends_with("Z.state"),
        "{first:?}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/complete")).expect("marked complete"),
        format!("{}\n", first[0])
    );
    drop(s); // killed, as a crash would

    // Restart, same command line: the data is back and -i is not applied.
    let s = start(&dir, &[]);
    assert_eq!(s.ok(&["data", "get"]), "\"Changed\"\n");
    assert_eq!(s.ok(&["data", "get", "some", "where"]), "42\n");
    assert_eq!(logs(&dir).len(), 2);
    drop(s);

    // Rotation every second, keeping two logs: the old ones go, the data
    // written between rotations survives another restart.
    let s = start(
        &dir,
        &["-C", "server.log_rotate=1", "-C", "server.log_keep=2"],
    );
    for i in 0..3 {
        s.ok(&[
            "data",
            "set",
            "-ev",
            &i.to_string(),
            "rotated",
            &i.to_string(),
        ]);
        std::thread::sleep(Duration::from_millis(700));
    }
    let kept = eventually(Duration::from_secs(20), "old logs to be deleted", || {
        let now = logs(&dir);
        (now.len() == 2 && !now.contains(&first[0])).then_some(now)
    });
    drop(s);
    let s = start(&dir, &[]);
    for i in 0..3 {
        assert_eq!(
            s.ok(&["data", "get", "rotated", &i.to_string()]),
            format!("{i}\n"),
            "{kept:?}"
        );
    }
    assert_eq!(s.ok(&["data", "get", "some", "where"]), "42\n");
}

#[test]
fn bad_data_directory_settings_are_usage_errors() {
    let scratch = ScratchDir::new("data-dir-bad");
    let dir = scratch.path();
    for (setting, why) in [
        ("server.log_rotate=weekly", "server.log_rotate"),
        ("server.log_rotate=0", "server.log_rotate"),
        ("server.log_keep=0", "server.log_keep"),
    ] {
        let o = common::distkv(&[
            "-C",
            setting,
            "server",
            "--standalone",
            "--data",
            &dir,
            "one",
        ]);
        assert_eq!(o.status.code(), Some(2), "{setting}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{setting}"
        );
    }
    // --data replaces -l and -s
    let o = common::distkv(&["server", "--standalone", "--data", &dir, "-l", "x", "one"]);
    assert_eq!(o.status.code(), Some(2));
    // a file where the directory should be
    let file = scratch.file("not-a-dir", "x");
    let o = common::distkv(&["server", "--standalone", "--data", &file, "one"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("data directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
