//! The command line explains itself: every command and subcommand of the
//! real binary answers `--help` (and `distkv help …`) with exit status 0, a
//! usage line, and a description of each argument its usage names; shell
//! completions and the manual page come from the same definitions.

mod common;

use common::distkv;

/// The help text of the command at `path`, checked.
fn help(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = distkv(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "distkv {} --help: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The lines of a section (`Commands:`, `Arguments:`) of a help text.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// The positional arguments a usage line names: `<NAME>` and `[NAME]`
/// that are not the value of an option (`--acl <MODES>`).
fn positionals(usage: &str) -> Vec<String> {
    let words: Vec<&str> = usage.split_whitespace().skip(1).collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let after_option = i > 0 && words[i - 1].trim_start_matches('[').starts_with('-');
        if after_option || *w == "[OPTIONS]" || *w == "<COMMAND>" {
            continue;
        }
        let w = w.trim_end_matches("...");
        let inner = w
            .strip_prefix('<')
            .and_then(|w| w.strip_suffix('>'))
            .or_else(|| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')));
        if let Some(inner) = inner {
            out.push(inner.to_owned());
        }
    }
    out
}

fn walk(path: Vec<String>, seen: &mut Vec<String>) {
    let text = help(&path);
    let name = std::iter::once("distkv".to_owned())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let usage = text
        .lines()
        .find(|l| l.starts_with("Usage: "))
        .unwrap_or_else(|| panic!("{name}: no usage line in\n{text}"));
    assert!(
        usage.starts_with(&format!("Usage: {name}")),
        "{name}: {usage}"
    );
    let described: Vec<&str> = section(&text, "Arguments:");
    for arg in positionals(usage) {
        assert!(
            described
                .iter()
                .any(|l| l.trim_start().starts_with(&format!("<{arg}>"))
                    || l.trim_start().starts_with(&format!("[{arg}]"))),
            "{name}: argument {arg} is not described in\n{text}"
        );
    }
    // `distkv help PATH…` says the same
    if !path.is_empty() {
        let mut args = vec!["help"];
        args.extend(path.iter().map(String::as_str));
        let out = distkv(&args);
        assert!(out.status.success(), "distkv help {}", path.join(" "));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(usage),
            "distkv help {} differs from --help",
            path.join(" ")
        );
    }
    seen.push(name);
    for line in section(&text, "Commands:") {
        let Some(sub) = line.split_whitespace().next() else {
            continue;
        };
        if sub == "help" {
            continue;
        }
        let mut next = path.clone();
        next.push(sub.to_owned());
        walk(next, seen);
    }
}

#[test]
fn every_command_answers_help() {
    let mut seen = Vec::new();
    walk(Vec::new(), &mut seen);
    // the whole tree was walked, down to the leaves
    for cmd in [
        "distkv server",
        "distkv client data get",
        "distkv client acl set",
        "distkv client auth user add",
        "distkv client code module set",
        "distkv client log dest",
        "distkv gossip-key",
    ] {
        assert!(seen.iter().any(|s| s == cmd), "{cmd} not reached: {seen:?}");
    }
    assert!(seen.len() > 50, "only {} commands: {seen:?}", seen.len());
}

#[test]
fn completions_and_the_manual_come_from_the_grammar() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef distkv"),
        ("fish", "complete -c distkv"),
    ] {
        let out = distkv(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        // the completions know the commands, and (bash, zsh) the options
        // of the leaves below `client`
        assert!(
            text.contains("gossip-key") && text.contains("watch"),
            "{shell}"
        );
        assert!(shell == "fish" || text.contains("mindepth"), "{shell}");
    }
    let bash = distkv(&["completions", "bash"]);
    let check = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&bash.stdout)?;
            c.wait()
        })
        .expect("bash -n");
    assert!(check.success(), "the bash script does not parse");
    let bad = distkv(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    let man = distkv(&["man"]);
    assert!(man.status.success());
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(
        text.contains(".TH distkv 1") && text.contains("gossip\\-key"),
        "{text}"
    );
}
