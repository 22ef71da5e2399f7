//! Where the command line finds its configuration, and what it refuses:
//! `-c FILE`, else `$DISTKV_CONFIG`, else `~/.distkv.cfg`, else
//! `/etc/distkv.cfg`; `DISTKV_HOST`/`DISTKV_PORT`/`DISTKV_AUTH` for
//! clients; `-C` last. An unknown key is a usage error that names the
//! closest known key; settings of the original that do nothing here are
//! accepted with a note.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{ScratchDir, ServerProc, distkv, run_with_timeout};

/// Runs `distkv ARGS…` with `env` set and `HOME` pointing at `home`.
fn distkv_env(home: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(common::distkv_bin());
    cmd.env_remove("DISTKV_CONFIG")
        .env_remove("DISTKV_HOST")
        .env_remove("DISTKV_PORT")
        .env_remove("DISTKV_AUTH")
        .env("HOME", home)
        .envs(env.iter().copied())
        .args(args);
    run_with_timeout(cmd, Duration::from_secs(30))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn unknown_keys_are_usage_errors_that_suggest_the_known_one() {
    let o = distkv(&["-C", "server.log_snyc=always", "dumpcfg"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "UsageError: unknown configuration key 'server.log_snyc' (did you mean 'server.log_sync'?)\n"
    );
    let dir = ScratchDir::new("cfg-unknown");
    let f = dir.file("bad.cfg", "connect:\n  hots: example\n");
    let o = distkv(&["-c", &f, "dumpcfg"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("'connect.hots' (did you mean 'connect.host'?)"),
        "{}",
        text(&o.stderr)
    );
    // nothing close: no suggestion
    let o = distkv(&["-C", "zzzzzz=1", "dumpcfg"]);
    assert_eq!(
        text(&o.stderr),
        "UsageError: unknown configuration key 'zzzzzz'\n"
    );
    // names below free-form sections are the user's
    let o = distkv(&[
        "-C",
        "hostmap.anything=h:1",
        "-C",
        "server.bind_default.ssl.cert=x",
        "dumpcfg",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn settings_of_the_original_are_accepted_and_do_nothing() {
    let dir = ScratchDir::new("cfg-original");
    let f = dir.file(
        "old.cfg",
        "paranoia: false\nserver:\n  ping:\n    cycle: 3\n    gap: 2\n  delete: {cycle: 5}\n",
    );
    let o = distkv(&["-c", &f, "dumpcfg"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("server.ping.gap") && err.contains("paranoia"),
        "{err}"
    );
    let out = text(&o.stdout);
    assert!(out.contains("cycle: 3"), "{out}");
    // what is ignored is not shown as if it took effect (the top-level
    // `paranoia`; `server.paranoia` is read)
    assert!(
        !out.contains("\nparanoia") && !out.contains("gap:"),
        "{out}"
    );
    // the defaults no longer show settings nothing reads
    let o = distkv(&["dumpcfg"]);
    let out = text(&o.stdout);
    for unread in [
        "\nparanoia",
        "domain",
        "gap:",
        "delete:",
        "errors:",
        "modules:",
    ] {
        assert!(!out.contains(unread), "{unread} in\n{out}");
    }
}

#[test]
fn configuration_files_are_found_in_order() {
    let dir = ScratchDir::new("cfg-order");
    let home = dir.path();
    let port_of = |o: &Output| {
        text(&o.stdout)
            .lines()
            .find(|l| l.trim_start().starts_with("port:"))
            .map(|l| l.trim().to_owned())
    };
    // ~/.distkv.cfg
    dir.file(".distkv.cfg", "connect:\n  port: 1111\n");
    let o = distkv_env(&home, &[], &["dumpcfg"]);
    assert_eq!(
        port_of(&o).as_deref(),
        Some("port: 1111"),
        "{}",
        text(&o.stderr)
    );
    // $DISTKV_CONFIG before it
    let env_file = dir.file("env.cfg", "connect:\n  port: 2222\n");
    let o = distkv_env(&home, &[("DISTKV_CONFIG", &env_file)], &["dumpcfg"]);
    assert_eq!(port_of(&o).as_deref(), Some("port: 2222"));
    // -c before both
    let c_file = dir.file("c.cfg", "connect:\n  port: 3333\n");
    let o = distkv_env(
        &home,
        &[("DISTKV_CONFIG", &env_file)],
        &["-c", &c_file, "dumpcfg"],
    );
    assert_eq!(port_of(&o).as_deref(), Some("port: 3333"));
    // DISTKV_PORT over the file, -C over everything
    let o = distkv_env(&home, &[("DISTKV_PORT", "4444")], &["dumpcfg"]);
    assert_eq!(port_of(&o).as_deref(), Some("port: 4444"));
    let o = distkv_env(
        &home,
        &[("DISTKV_PORT", "4444")],
        &["-C", "connect.port=5555", "dumpcfg"],
    );
    assert_eq!(port_of(&o).as_deref(), Some("port: 5555"));
    // a $DISTKV_CONFIG that does not exist is an error, not ignored
    let o = distkv_env(
        &home,
        &[("DISTKV_CONFIG", "/nonexistent/distkv.cfg")],
        &["dumpcfg"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("/nonexistent/distkv.cfg"));
}

#[test]
fn clients_take_host_port_and_login_from_the_environment() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let dir = ScratchDir::new("cfg-env");
    let home = dir.path();
    let port = s.port.to_string();
    let env = [("DISTKV_HOST", "127.0.0.1"), ("DISTKV_PORT", port.as_str())];
    let o = distkv_env(&home, &env, &["client", "data", "get"]);
    assert_eq!(text(&o.stdout), "\"Root\"\n", "{}", text(&o.stderr));
    // -p wins over the environment
    let free = common::free_port().to_string();
    let o = distkv_env(&home, &env, &["client", "-p", &free, "data", "get"]);
    assert_eq!(o.status.code(), Some(3));
    // a bad port in the environment is a clear error
    let o = distkv_env(
        &home,
        &[("DISTKV_HOST", "127.0.0.1"), ("DISTKV_PORT", "not-a-port")],
        &["client", "data", "get"],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("connect.port"),
        "{}",
        text(&o.stderr)
    );
    // DISTKV_AUTH logs in
    s.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    s.ok(&["auth", "-m", "_test", "init"]);
    let o = distkv_env(&home, &env, &["client", "data", "get"]);
    assert!(text(&o.stderr).contains("log in"), "{}", text(&o.stderr));
    let with_auth = [env[0], env[1], ("DISTKV_AUTH", "_test name=joe")];
    let o = distkv_env(&home, &with_auth, &["client", "data", "get"]);
    assert_eq!(text(&o.stdout), "\"Root\"\n", "{}", text(&o.stderr));
}

/// Starts a standalone server with `args` and `env`, waits for
/// `Running.`, stops it, and returns what it logged.
fn server_log(env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = ScratchDir::new("cfg-log");
    let log = dir.file("err", "");
    let mut cmd = Command::new(common::distkv_bin());
    cmd.env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .args(args)
        .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={}", common::free_port()))
        .args(["server", "--standalone", "-i", "Root", "one"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(&log).expect("log file"),
        ));
    let mut child = cmd.spawn().expect("start");
    let first = common::first_stdout_line(&mut child).recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first.as_deref(), Ok("Running."));
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn log_levels_combine_as_documented() {
    // default: warnings only
    assert!(!server_log(&[], &[]).contains("server running"));
    // -v: info
    assert!(server_log(&[], &["-v"]).contains("server running"));
    // RUST_LOG without flags is used; -q wins over it
    assert!(server_log(&[("RUST_LOG", "info")], &[]).contains("server running"));
    assert!(!server_log(&[("RUST_LOG", "info")], &["-q"]).contains("server running"));
    // -l adds a module's level
    assert!(server_log(&[], &["-l", "distkv_server=info"]).contains("server running"));
    // JSON lines
    let json = server_log(&[], &["-v", "-C", "server.log_format=json"]);
    let line = json
        .lines()
        .find(|l| l.contains("server running"))
        .unwrap_or_else(|| panic!("{json}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["level"], serde_json::json!("INFO"), "{line}");
    // bad settings are usage errors
    for (env, args, what) in [
        (vec![], vec!["-l", "nonsense"], "-l nonsense"),
        (vec![], vec!["-l", "distkv=loud"], "-l distkv=loud"),
        (
            vec![],
            vec!["-C", "server.log_format=xml"],
            "server.log_format",
        ),
        (vec![("RUST_LOG", "a=b=c")], vec![], "RUST_LOG"),
    ] {
        let mut all: Vec<&str> = args.clone();
        all.push("dumpcfg");
        let mut cmd = Command::new(common::distkv_bin());
        cmd.env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .args(&all);
        let o = run_with_timeout(cmd, Duration::from_secs(30));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(what),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

/// `dumpcfg` prints every setting that takes effect with its value, and
/// what it prints is a configuration file that loads to the same.
#[test]
fn dumpcfg_shows_every_setting_with_its_default_and_reloads() {
    let o = distkv(&["dumpcfg"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for line in [
        "  log_sync: 1\n",
        "  send_timeout: 60\n",
        "  max_time: 1\n",
        "  max_streams: 1000\n",
        "  busy_poll: 5.0e-05\n",
        "  gossip_encrypt: false\n",
        "    event_size_limit: 512\n",
        "    max_payload: 262144\n",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    let dir = ScratchDir::new("cfg-dump");
    let f = dir.file("dump.cfg", &out);
    let again = distkv(&["-c", &f, "-C", "server.log_sync=always", "dumpcfg"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stdout),
        out.replace("  log_sync: 1\n", "  log_sync: always\n")
    );
}

/// A server setting of the wrong kind or out of range is a usage error
/// naming it, before anything starts.
#[test]
fn bad_server_settings_are_usage_errors_naming_the_setting() {
    for (setting, named) in [
        (
            "server.max_frame=abc",
            "'server.max_frame': invalid type: string \"abc\"",
        ),
        ("server.log_sync=sometimes", "server.log_sync: must be"),
        (
            "server.ping.cycle=0",
            "server.ping.cycle: 0 is not a positive number",
        ),
        ("server.http.port=99999", "'server.http.port'"),
        (
            "server.busy_poll=-1",
            "server.busy_poll: -1 is not a number of seconds",
        ),
    ] {
        let o = distkv(&["-C", setting, "server", "--standalone", "one"]);
        assert_eq!(o.status.code(), Some(2), "{setting}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(named),
            "{setting}: {}",
            text(&o.stderr)
        );
    }
}
