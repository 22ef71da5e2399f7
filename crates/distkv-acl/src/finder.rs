//! Which ACL entry governs a path position (auth-acl.md §4.3).

use distkv_tree::{Entry, Path, PathElem};

use crate::{AclFlags, Denied, DeniedAt};

/// The most candidate patterns a finder follows at once; an ACL that
/// would need more is treated as matching nothing further (denied).
const MAX_STEPS: usize = 1024;

#[derive(Clone, Debug)]
struct Step<'a> {
    node: &'a Entry,
    path: Path,
    /// Reached through `#`: keeps matching deeper levels.
    keep: bool,
}

/// The ACL patterns matching a path position, most specific first. Stepping
/// returns a new finder, so a tree walk copies it per child.
#[derive(Clone, Debug)]
pub struct Finder<'a> {
    steps: Vec<Step<'a>>,
    /// Letters withheld below this position (`r` where `x` was missing).
    blocked: AclFlags,
}

fn wildcard(s: &str) -> PathElem {
    PathElem::Str(s.into())
}

impl<'a> Finder<'a> {
    /// A finder at the root of the data tree, for the ACL whose entry
    /// (`None acl NAME`) is `root` at `root_path`.
    pub fn new(root: &'a Entry, root_path: Path) -> Finder<'a> {
        Finder {
            steps: vec![Step {
                node: root,
                path: root_path,
                keep: false,
            }],
            blocked: AclFlags::NONE,
        }
    }

    /// The finder one level down, at path element `elem`. `None`: no
    /// pattern matches, which means no access.
    pub fn step(&self, elem: &PathElem) -> Option<Finder<'a>> {
        let mut next: Vec<Step<'a>> = Vec::new();
        let push = |next: &mut Vec<Step<'a>>, node: &'a Entry, path: Path, keep: bool| {
            let dup = next
                .iter()
                .any(|s| std::ptr::eq(s.node, node) && s.keep == keep);
            if !dup && next.len() < MAX_STEPS {
                next.push(Step { node, path, keep });
            }
        };
        for s in &self.steps {
            if let Some(c) = s.node.child(elem) {
                push(&mut next, c, s.path.child(elem.clone()), false);
            }
            // Wildcards never match the system subtree's `None`.
            if *elem == PathElem::Nil {
                continue;
            }
            let plus = wildcard("+");
            if let Some(c) = s.node.child(&plus) {
                push(&mut next, c, s.path.child(plus), false);
            }
            let hash = wildcard("#");
            if let Some(c) = s.node.child(&hash) {
                push(&mut next, c, s.path.child(hash), true);
            }
            if s.keep {
                push(&mut next, s.node, s.path.clone(), true);
            }
        }
        (!next.is_empty()).then_some(Finder {
            steps: next,
            blocked: self.blocked,
        })
    }

    /// The governing ACL entry: the first candidate that holds a value.
    pub fn result(&self) -> Option<(&'a Entry, &Path)> {
        self.steps
            .iter()
            .find(|s| s.node.data().is_some())
            .map(|s| (s.node, &s.path))
    }

    /// The flags at this position: those of the governing entry (a value
    /// that is not a valid flag string grants nothing); `None` when no
    /// candidate holds a value (everything allowed).
    pub fn flags(&self) -> Option<AclFlags> {
        self.result().map(|(e, _)| {
            e.data()
                .and_then(|v| v.as_str())
                .and_then(|s| AclFlags::parse(s).ok())
                .unwrap_or(AclFlags::NONE)
        })
    }

    /// Whether flag `letter` is granted here.
    pub fn allows(&self, letter: char) -> bool {
        !self.blocked.allows(letter) && self.flags().is_none_or(|f| f.allows(letter))
    }

    /// Withholds `letters` here and below.
    pub fn block(&mut self, letters: AclFlags) {
        self.blocked = self.blocked.union(letters);
    }

    /// `Ok` if `letter` is granted, else why not.
    pub fn check(&self, letter: char) -> Result<(), Denied> {
        if self.allows(letter) {
            Ok(())
        } else {
            Err(self.denied(DeniedAt::Letter(letter)))
        }
    }

    /// The denial of `what` at this position.
    pub fn denied(&self, what: DeniedAt) -> Denied {
        Denied::new(self.result().map(|(e, p)| (e, p.clone())), what)
    }
}

/// The record of the most specific pattern below `root` (a tree of
/// patterns with `+` and `#`, like an ACL's) that matches `path`: how
/// the type and the converter that apply to a path are found. `None`
/// when nothing matches or `root` does not exist.
pub fn matching_record<'a>(
    tree: &'a distkv_tree::Tree,
    root: &Path,
    path: &Path,
) -> Option<&'a distkv_tree::Value> {
    let mut f = Finder::new(tree.get(root)?, root.clone());
    for e in path.elems() {
        f = f.step(e)?;
    }
    f.result()?.0.data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_tree::{Precondition, TockClock, Tree, Value};
    use proptest::prelude::*;

    fn acl_tree(patterns: &[(&[&str], &str)]) -> Tree {
        let mut t = Tree::new("test", 5);
        t.mark_ready();
        let clock = TockClock::default();
        for (p, flags) in patterns {
            let mut path = vec![PathElem::Nil, "acl".into(), "t".into()];
            path.extend(p.iter().map(|e| PathElem::from(*e)));
            t.local_change(
                &Path(path),
                Some(Value::from(*flags)),
                &Precondition::default(),
                &clock,
            )
            .expect("set");
        }
        // the root entry exists even when there is no pattern
        t.ensure(&Path(vec![PathElem::Nil, "acl".into(), "t".into()]))
            .expect("ensure");
        t
    }

    fn root_path() -> Path {
        Path(vec![PathElem::Nil, "acl".into(), "t".into()])
    }

    #[test]
    fn the_most_specific_record_matches() {
        let t = acl_tree(&[
            (&["a", "+"], "plus"),
            (&["a", "b"], "exact"),
            (&["#"], "any"),
        ]);
        let rec = |p: &[&str]| {
            matching_record(&t, &root_path(), &Path::from_strs(p)).and_then(Value::as_str)
        };
        assert_eq!(rec(&["a", "b"]), Some("exact"));
        assert_eq!(rec(&["a", "c"]), Some("plus"));
        assert_eq!(rec(&["x", "y", "z"]), Some("any"));
        let missing = Path(vec![PathElem::Nil, "nothing".into()]);
        assert_eq!(
            matching_record(&t, &missing, &Path::from_strs(&["a"])),
            None
        );
    }

    fn find<'a>(t: &'a Tree, path: &[&str]) -> Option<Finder<'a>> {
        let root = t.get(&root_path()).expect("acl root");
        let mut f = Finder::new(root, root_path());
        for e in path {
            f = f.step(&PathElem::from(*e))?;
        }
        Some(f)
    }

    fn governing(t: &Tree, path: &[&str]) -> Option<Vec<String>> {
        find(t, path).map(|f| {
            f.result()
                .map(|(_, p)| p.0[3..].iter().map(|e| e.to_string()).collect())
                .unwrap_or_default()
        })
    }

    #[test]
    fn the_specs_precedence_example() {
        let t = acl_tree(&[
            (&["a", "b", "#", "g"], "r"),
            (&["a", "#", "d", "e", "f", "g"], "w"),
        ]);
        assert_eq!(
            governing(&t, &["a", "b", "c", "d", "e", "f", "g"]),
            Some(vec!["'a'".into(), "'b'".into(), "'#'".into(), "'g'".into()])
        );
        let f = find(&t, &["a", "b", "c", "d", "e", "f", "g"]).expect("match");
        assert!(f.allows('r') && !f.allows('w'));
        // only the second pattern matches here
        let f = find(&t, &["a", "x", "d", "e", "f", "g"]).expect("match");
        assert!(f.allows('w') && !f.allows('r'));
    }

    #[test]
    fn specific_beats_plus_beats_hash() {
        let t = acl_tree(&[(&["a", "b"], "r"), (&["a", "+"], "w"), (&["a", "#"], "c")]);
        assert_eq!(
            find(&t, &["a", "b"])
                .and_then(|f| f.flags())
                .map(|f| f.to_string()),
            Some("r".into())
        );
        assert_eq!(
            find(&t, &["a", "x"])
                .and_then(|f| f.flags())
                .map(|f| f.to_string()),
            Some("w".into())
        );
        assert_eq!(
            find(&t, &["a", "x", "y"])
                .and_then(|f| f.flags())
                .map(|f| f.to_string()),
            Some("c".into())
        );
        // `+` is one element only; nothing matches `b` below `a x y`? `#` does
        assert!(find(&t, &["a", "b", "q"]).is_some());
        // no pattern below `z`: no access
        assert!(find(&t, &["z"]).is_none());
        // the root position has no value: everything allowed there
        assert!(find(&t, &[]).expect("root").allows('r'));
    }

    #[test]
    fn wildcards_never_match_none() {
        let t = acl_tree(&[(&["#"], "rwcx")]);
        let root = t.get(&root_path()).expect("root");
        let f = Finder::new(root, root_path());
        assert!(f.step(&PathElem::Nil).is_none());
        assert!(f.step(&"anything".into()).is_some());
    }

    #[test]
    fn bad_flag_strings_grant_nothing_and_blocking_withholds() {
        let t = acl_tree(&[(&["a"], "rq")]);
        let f = find(&t, &["a"]).expect("match");
        assert!(!f.allows('r'));
        let t = acl_tree(&[(&["a"], "rx")]);
        let mut f = find(&t, &["a"]).expect("match");
        f.block(AclFlags::parse("r").expect("flags"));
        assert!(!f.allows('r') && f.allows('x'));
    }

    /// A reference matcher: a pattern matches a path through a sequence of
    /// choices per element (0 exact, 1 `+`, 2 `#` starts, 3 `#` goes on);
    /// the governing pattern is the one with a value whose best sequence
    /// is smallest. `None`: the pattern does not match.
    fn choices(pat: &[&str], path: &[&str]) -> Option<Vec<u8>> {
        let Some((elem, later)) = path.split_first() else {
            return pat.is_empty().then(Vec::new);
        };
        let (first, rest) = pat.split_first()?;
        let mut best: Option<Vec<u8>> = None;
        let mut consider = |c: u8, r: Option<Vec<u8>>| {
            if let Some(mut r) = r {
                r.insert(0, c);
                if best.as_ref().is_none_or(|b| r < *b) {
                    best = Some(r);
                }
            }
        };
        if first == elem {
            consider(0, choices(rest, later));
        }
        if *first == "+" {
            consider(1, choices(rest, later));
        }
        if *first == "#" {
            consider(2, after_hash(rest, later));
        }
        best
    }

    /// After `#` took one element: the rest of the pattern goes on here,
    /// or `#` takes the next element too.
    fn after_hash(rest: &[&str], path: &[&str]) -> Option<Vec<u8>> {
        let here = choices(rest, path);
        let more = if path.is_empty() {
            None
        } else {
            after_hash(rest, &path[1..]).map(|mut r| {
                r.insert(0, 3);
                r
            })
        };
        match (here, more) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn the_finder_agrees_with_a_reference_matcher(
            patterns in proptest::collection::vec(
                (proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("+"), Just("#")], 1..4),
                 prop_oneof![Just("r"), Just("w"), Just("c")]),
                0..6),
            path in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..5),
        ) {
            let pats: Vec<(&[&str], &str)> = patterns.iter().map(|(p, f)| (p.as_slice(), *f)).collect();
            let t = acl_tree(&pats);
            // the reference: among stored patterns (the last write of a
            // path wins) the smallest choice sequence
            let mut stored: Vec<(Vec<&str>, &str)> = Vec::new();
            for (p, f) in &pats {
                match stored.iter_mut().find(|(q, _)| q.as_slice() == *p) {
                    Some(s) => s.1 = f,
                    None => stored.push((p.to_vec(), f)),
                }
            }
            let want = stored
                .iter()
                .filter_map(|(p, f)| choices(p, &path).map(|c| (c, p.clone(), *f)))
                .min_by(|a, b| a.0.cmp(&b.0));
            let got = find(&t, &path);
            if let Some(f) = &got {
                let flags = f.flags().map(|x| x.to_string());
                prop_assert_eq!(flags, want.map(|w| AclFlags::parse(w.2).expect("f").to_string()));
            } else {
                // no match at some prefix: then no stored pattern (nor any
                // prefix of one) matches the whole path
                prop_assert!(want.is_none());
            }
        }
    }
}
