//! Membership: each server's tags, as retained messages on
//! `<prefix>/server/<node>`.
//!
//! The payload is a msgpack map of strings to strings; an empty payload
//! (published at a clean close, or by the broker as the server's last will)
//! removes the server. Everything about the table is bounded, because
//! anybody who may publish on the prefix can write there.

use std::collections::HashMap;

use distkv_proto::msgpack::{self, Limits};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;

/// Most servers kept in the table.
pub const MAX_NODES: usize = 4096;
/// Most tags per server.
pub const MAX_TAGS: usize = 64;
/// Longest tag key or value, in bytes.
pub const MAX_TAG_LEN: usize = 1024;
/// Longest membership payload: every tag at its longest, with room for
/// the msgpack headers.
pub const MAX_PAYLOAD: usize = 8 + MAX_TAGS * 2 * (MAX_TAG_LEN + 5);

/// Checks tags against the bounds the other servers enforce.
pub(crate) fn check_tags(tags: &[(String, String)]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("{} tags, at most {MAX_TAGS}", tags.len()));
    }
    for (k, v) in tags {
        if k.len() > MAX_TAG_LEN || v.len() > MAX_TAG_LEN {
            return Err(format!(
                "tag {:?} is longer than {MAX_TAG_LEN} bytes",
                k.chars().take(40).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// The msgpack map of `tags`.
pub(crate) fn encode_tags(tags: &[(String, String)]) -> Vec<u8> {
    let mut m = MapBuilder::new();
    for (k, v) in tags {
        m.push(k, Value::Str(v.as_str().into()));
    }
    msgpack::to_vec(&m.build())
}

/// Decodes a (non-empty) membership payload; any deviation from a map of
/// at most [`MAX_TAGS`] string pairs of at most [`MAX_TAG_LEN`] bytes is an
/// error. A key given twice keeps its last value.
pub(crate) fn decode_tags(payload: &[u8]) -> Result<Vec<(String, String)>, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("{} bytes, at most {MAX_PAYLOAD}", payload.len()));
    }
    let limits = Limits {
        max_frame: MAX_PAYLOAD,
        max_depth: 1,
    };
    let v = msgpack::decode_one(payload, &limits).map_err(|e| e.to_string())?;
    let Value::Map(entries) = v else {
        return Err("not a msgpack map".into());
    };
    if entries.len() > MAX_TAGS {
        return Err(format!("{} tags, at most {MAX_TAGS}", entries.len()));
    }
    let mut tags: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let (Value::Str(k), Value::Str(v)) = (k, v) else {
            return Err("a tag that is not a string pair".into());
        };
        if k.len() > MAX_TAG_LEN || v.len() > MAX_TAG_LEN {
            return Err(format!("a tag longer than {MAX_TAG_LEN} bytes"));
        }
        tags.retain(|(kk, _)| kk != k.as_str());
        tags.push((k.to_string(), v.to_string()));
    }
    Ok(tags)
}

/// What one membership message did to the table.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// The server's tags were set.
    Set,
    /// The server was removed (or was not there).
    Removed,
    /// The payload was malformed; nothing changed.
    Malformed(String),
    /// The table is full; the new server was not added.
    Full,
}

/// Servers and their tags, bounded by [`MAX_NODES`].
#[derive(Debug, Default)]
pub(crate) struct Members {
    nodes: HashMap<String, Vec<(String, String)>>,
}

impl Members {
    /// Applies the membership message `payload` of `node`.
    pub(crate) fn apply(&mut self, node: &str, payload: &[u8]) -> Change {
        if payload.is_empty() {
            self.nodes.remove(node);
            return Change::Removed;
        }
        match decode_tags(payload) {
            Err(e) => Change::Malformed(e),
            Ok(tags) => {
                if !self.nodes.contains_key(node) && self.nodes.len() >= MAX_NODES {
                    return Change::Full;
                }
                self.nodes.insert(node.to_owned(), tags);
                Change::Set
            }
        }
    }

    /// Forgets everybody (before the broker re-sends the retained
    /// messages after a reconnect).
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
    }

    /// The servers and their tags, by name.
    pub(crate) fn list(&self) -> Vec<(String, Vec<(String, String)>)> {
        let mut l: Vec<_> = self
            .nodes
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        l.sort();
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn round_trip() {
        let tags = pairs(&[("addr", "127.0.0.1:27586"), ("x", "")]);
        assert_eq!(decode_tags(&encode_tags(&tags)), Ok(tags));
        assert_eq!(decode_tags(&encode_tags(&[])), Ok(Vec::new()));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            &b"\xc1"[..],
            b"hello",
            b"\x81",
            b"\x81\xa1a",
            b"\x81\xa1a\xa1b\x00",
            b"\x92\xa1a\xa1b",
            b"\xa3abc",
            b"\x01",
            b"\xc0",
        ] {
            assert!(decode_tags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let int_value = msgpack::to_vec(&MapBuilder::new().set("a", 1).build());
        assert!(decode_tags(&int_value).is_err());
        let int_key = msgpack::to_vec(&Value::Map(
            vec![(Value::Int(1), Value::Str("a".into()))].into(),
        ));
        assert!(decode_tags(&int_key).is_err());
        let nested = msgpack::to_vec(
            &MapBuilder::new()
                .set("a", MapBuilder::new().set("b", "c").build())
                .build(),
        );
        assert!(decode_tags(&nested).is_err());
        let bytes = msgpack::to_vec(
            &MapBuilder::new()
                .set("a", Value::Bytes(b"x"[..].into()))
                .build(),
        );
        assert!(decode_tags(&bytes).is_err());
    }

    #[test]
    fn oversize_is_refused() {
        let many: Vec<(String, String)> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        assert!(check_tags(&many).is_err());
        assert!(decode_tags(&encode_tags(&many)).is_err());
        let long = pairs(&[("k", &"v".repeat(MAX_TAG_LEN + 1))]);
        assert!(check_tags(&long).is_err());
        assert!(decode_tags(&encode_tags(&long)).is_err());
        let long_key = vec![("k".repeat(MAX_TAG_LEN + 1), String::new())];
        assert!(decode_tags(&encode_tags(&long_key)).is_err());
        assert!(decode_tags(&vec![0u8; MAX_PAYLOAD + 1]).is_err());
        // a string header claiming 4 GiB
        assert!(decode_tags(b"\x81\xa1a\xdb\xff\xff\xff\xff").is_err());
        // the largest legal set fits
        let full: Vec<(String, String)> = (0..MAX_TAGS)
            .map(|i| (format!("{i:0>1024}"), "v".repeat(MAX_TAG_LEN)))
            .collect();
        assert!(check_tags(&full).is_ok());
        assert_eq!(decode_tags(&encode_tags(&full)), Ok(full));
    }

    #[test]
    fn duplicate_keys_keep_the_last() {
        let p = msgpack::to_vec(&MapBuilder::new().set("a", "1").set("a", "2").build());
        assert_eq!(decode_tags(&p), Ok(pairs(&[("a", "2")])));
    }

    #[test]
    fn table_is_bounded() {
        let mut m = Members::default();
        let p = encode_tags(&pairs(&[("a", "b")]));
        for i in 0..MAX_NODES {
            assert_eq!(m.apply(&format!("n{i}"), &p), Change::Set);
        }
        assert_eq!(m.apply("one-more", &p), Change::Full);
        assert_eq!(m.apply("n0", &p), Change::Set);
        assert_eq!(m.apply("n0", b""), Change::Removed);
        assert_eq!(m.apply("one-more", &p), Change::Set);
        assert!(matches!(m.apply("n1", b"junk"), Change::Malformed(_)));
        assert!(m.list().iter().any(|(n, _)| n == "n1"));
        m.clear();
        assert!(m.list().is_empty());
    }
}
