//! The crate stack: each workspace crate depends only on crates below it
//! (`cargo metadata`, normal and build dependencies; tests and examples
//! may use anything). ARCHITECTURE.md draws the same stack.

use std::collections::BTreeMap;
use std::process::Command;

/// The level of each crate, bottom first. A crate may depend only on
/// crates of a lower level; crates of one level sit side by side.
const LEVELS: &[(&str, u8)] = &[
    ("distkv-tree", 0),
    ("distkv-proto", 1),
    ("distkv-serf", 2),
    ("distkv-mqtt", 2),
    ("distkv-auth", 3),
    ("distkv-acl", 3),
    ("distkv-code", 3),
    ("distkv-connect", 4),
    ("distkv-server", 5),
    ("distkv-client", 6),
    ("distkv-console", 7),
    ("distkv-cli", 8),
];

#[test]
fn every_crate_depends_only_on_crates_below_it() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let levels: BTreeMap<&str, u8> = LEVELS.iter().copied().collect();
    let packages = meta["packages"].as_array().expect("packages");
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for pkg in packages {
        let name = pkg["name"].as_str().expect("a name");
        let manifest = pkg["manifest_path"].as_str().unwrap_or_default();
        let Some(&level) = levels.get(name) else {
            assert!(
                !manifest.contains("/crates/"),
                "{name} is a workspace crate without a level: add it to LEVELS and ARCHITECTURE.md"
            );
            continue;
        };
        seen.push(name);
        for dep in pkg["dependencies"].as_array().expect("dependencies") {
            let dep_name = dep["name"].as_str().expect("a dependency name");
            if dep["kind"].as_str() == Some("dev") {
                continue;
            }
            if let Some(&dep_level) = levels.get(dep_name) {
                if dep_level >= level {
                    wrong.push(format!("{name} -> {dep_name}"));
                }
            }
        }
    }
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "dependencies up or sideways in the stack"
    );
    seen.sort_unstable();
    let mut all: Vec<&str> = levels.keys().copied().collect();
    all.sort_unstable();
    assert_eq!(seen, all, "crates of the stack missing from the workspace");
}
