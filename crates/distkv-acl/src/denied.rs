//! Denials, and their text as the original shows them.

use distkv_tree::{Chain, Entry, Path, PathElem};

/// What was denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeniedAt {
    /// A flag letter (`r`, `w`, …).
    Letter(char),
    /// No pattern matches this path element.
    Elem(PathElem),
}

/// An access denial: the governing ACL entry (path, chain, flags), if
/// any, and what it does not grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The ACL entry: its full path, chain and stored flag string.
    pub entry: Option<(Path, Option<Chain>, String)>,
    /// What was denied.
    pub what: DeniedAt,
}

fn py_str(s: &str) -> String {
    PathElem::Str(s.into()).to_string()
}

impl Denied {
    pub(crate) fn new(entry: Option<(&Entry, Path)>, what: DeniedAt) -> Denied {
        Denied {
            entry: entry.map(|(e, p)| {
                let flags = e
                    .data()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default();
                (p, e.chain().cloned(), flags)
            }),
            what,
        }
    }

    /// The text clients see, e.g. `(<AclEntry:[None, 'acl', 'writeonly',
    /// 'wom', '#']@<NodeEvent:<Node: one @10> @4 1> ='cx'>, 'w')`.
    /// `node_tick` gives a node's current tick.
    pub fn describe(&self, node_tick: &dyn Fn(&str) -> Option<u64>) -> String {
        let entry = match &self.entry {
            None => "None".to_owned(),
            Some((path, chain, flags)) => {
                let elems: Vec<String> = path.0.iter().map(ToString::to_string).collect();
                let chain = match chain {
                    Some(c) => {
                        let head = c.head();
                        format!(
                            "<NodeEvent:<Node: {} @{}> @{} {}>",
                            head.node,
                            node_tick(&head.node).unwrap_or(head.tick),
                            head.tick,
                            c.links().len()
                        )
                    }
                    None => "None".to_owned(),
                };
                format!(
                    "<AclEntry:[{}]@{chain} ={}>",
                    elems.join(", "),
                    py_str(flags)
                )
            }
        };
        let what = match &self.what {
            DeniedAt::Letter(c) => py_str(&c.to_string()),
            DeniedAt::Elem(e) => e.to_string(),
        };
        format!("({entry}, {what})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_tree::NodeEvent;

    #[test]
    fn the_tutorials_text() {
        let d = Denied {
            entry: Some((
                Path(vec![
                    PathElem::Nil,
                    "acl".into(),
                    "writeonly".into(),
                    "wom".into(),
                    "#".into(),
                ]),
                Some(Chain::single(NodeEvent::new("test1", 4))),
                "cx".into(),
            )),
            what: DeniedAt::Letter('w'),
        };
        assert_eq!(
            d.describe(&|_| Some(10)),
            "(<AclEntry:[None, 'acl', 'writeonly', 'wom', '#']@<NodeEvent:<Node: test1 @10> @4 1> ='cx'>, 'w')"
        );
        let d = Denied {
            entry: None,
            what: DeniedAt::Elem("x".into()),
        };
        assert_eq!(d.describe(&|_| None), "(None, 'x')");
    }
}
