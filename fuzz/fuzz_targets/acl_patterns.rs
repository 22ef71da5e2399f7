//! ACL patterns: flag strings parsed, patterns stored in a tree at
//! `None acl NAME`, paths matched with the `Finder`.
//!
//! Input: text; before the first 0x00 byte, one pattern per line as
//! `elem/elem/…<TAB>flags` (elements `+` and `#` are the wildcards, `~` is
//! nil, `=N` the integer N); after it, one path per line to check.
//!
//! Properties: no panic; flag strings that parse print canonically and
//! parse back to the same set; at every position along a path the finder
//! is empty exactly when no stored pattern node matches the prefix, its
//! governing entry holds a value and its pattern matches the prefix, and a
//! literal pattern with a value wins over every wildcard.
#![no_main]

use distkv_acl::{AclFlags, Finder};
use distkv_tree::{Path, PathElem, Precondition, TockClock, Tree, Value};
use libfuzzer_sys::fuzz_target;

fn elem(s: &str) -> PathElem {
    if s == "~" {
        PathElem::Nil
    } else if let Some(n) = s.strip_prefix('=').and_then(|n| n.parse().ok()) {
        PathElem::Int(n)
    } else {
        PathElem::Str(s.into())
    }
}

fn elems(s: &str) -> Vec<PathElem> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('/').map(elem).collect()
    }
}

fn is(e: &PathElem, w: &str) -> bool {
    e.as_str() == Some(w)
}

/// The reference matcher: `+` one non-nil element, `#` one or more.
/// Dynamic programming over (pattern, path) suffixes, so that many `#`
/// cannot make it exponential.
fn matches(pat: &[PathElem], path: &[PathElem]) -> bool {
    let (np, nq) = (pat.len(), path.len());
    // ok[i][j]: pat[i..] matches path[j..].
    let mut ok = vec![vec![false; nq + 1]; np + 1];
    ok[np][nq] = true;
    for i in (0..np).rev() {
        for j in (0..nq).rev() {
            let (p, e) = (&pat[i], &path[j]);
            ok[i][j] = if is(p, "#") && !e.is_nil() {
                ok[i + 1][j + 1] || ok[i][j + 1]
            } else if is(p, "+") && !e.is_nil() {
                ok[i + 1][j + 1]
            } else {
                p == e && ok[i + 1][j + 1]
            };
        }
    }
    ok[0][0]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (patterns, paths) = text.split_once('\0').unwrap_or((text, ""));
    let root = Path(vec![PathElem::Nil, elem("acl"), elem("fuzz")]);
    let mut tree = Tree::new("fuzz", 5);
    tree.mark_ready();
    let clock = TockClock::default();
    // Every stored pattern node (with or without a value), and those with
    // a value.
    let mut nodes: Vec<Vec<PathElem>> = Vec::new();
    let mut valued: Vec<Vec<PathElem>> = Vec::new();
    for line in patterns.lines().take(64) {
        let (pat, flags) = line.split_once('\t').unwrap_or((line, ""));
        if let Ok(f) = AclFlags::parse(flags) {
            let shown = f.to_string();
            assert_eq!(AclFlags::parse(&shown), Ok(f));
            assert!(flags.chars().all(|c| f.allows(c)));
        }
        let pat = elems(pat);
        let mut full = root.clone();
        full.0.extend(pat.iter().cloned());
        let value = Some(Value::Str(flags.into()));
        if tree
            .local_change(&full, value, &Precondition::default(), &clock)
            .is_ok()
        {
            for i in 0..=pat.len() {
                nodes.push(pat[..i].to_vec());
            }
            valued.push(pat);
        }
    }
    let Some(acl) = tree.get(&root) else {
        return;
    };
    for line in paths.lines().take(16) {
        let path = elems(line);
        let mut finder = Some(Finder::new(acl, root.clone()));
        for i in 1..=path.len().min(32) {
            let Some(f) = finder.as_ref().and_then(|f| f.step(&path[i - 1])) else {
                assert!(
                    !nodes.iter().any(|n| matches(n, &path[..i])),
                    "a pattern matches {:?} but the finder found nothing",
                    &path[..i]
                );
                break;
            };
            let prefix = &path[..i];
            match f.result() {
                Some((entry, p)) => {
                    assert!(entry.data().is_some());
                    let pat = &p.elems()[root.len()..];
                    assert!(matches(pat, prefix), "{pat:?} governs {prefix:?}");
                    if valued.iter().any(|v| v.as_slice() == prefix) {
                        assert_eq!(pat, prefix, "a literal pattern must win");
                    }
                    let want = entry
                        .data()
                        .and_then(Value::as_str)
                        .and_then(|s| AclFlags::parse(s).ok())
                        .unwrap_or(AclFlags::NONE);
                    assert_eq!(f.flags(), Some(want));
                }
                None => assert!(
                    !valued.iter().any(|v| matches(v, prefix)),
                    "a pattern with a value matches {prefix:?} but none governs"
                ),
            }
            for c in "rwdcxena".chars() {
                let _ = f.check(c);
            }
            finder = Some(f);
        }
    }
});
