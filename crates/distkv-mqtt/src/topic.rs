//! Event names and MQTT topics.
//!
//! The server names its events `<root>.<word>` (`distkv.update`, …) and
//! user messages by arbitrary dotted names (`user.foo.bar`). On the broker,
//! levels are separated by `/` instead of `.`, and the server's own events
//! live under the configured topic prefix instead of the root:
//!
//! | event name            | topic                |
//! |-----------------------|----------------------|
//! | `distkv.update`       | `<prefix>/update`    |
//! | `distkv.a.b`          | `<prefix>/a/b`       |
//! | `user.foo.bar`        | `user/foo/bar`       |
//! | `user.+.bar` (filter) | `user/+/bar`         |
//!
//! Subscriptions may use MQTT's wildcards, `+` for one level and `#` (last)
//! for any number of levels; [`matches()`] tells which filter an incoming
//! topic belongs to.

use distkv_proto::transport::GossipError;

/// The longest topic MQTT can carry, in bytes.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Maps event names to topics for one prefix and root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMap {
    prefix: String,
    root_dot: String,
}

impl TopicMap {
    /// The mapping of names below `root` (`<root>.<rest>`) to topics below
    /// `prefix` (`<prefix>/<rest>`).
    pub fn new(prefix: &str, root: &str) -> TopicMap {
        TopicMap {
            prefix: prefix.to_owned(),
            root_dot: format!("{root}."),
        }
    }

    /// The topic (or topic filter) of an event name, unchecked: dots become
    /// slashes, and a leading `<root>.` becomes `<prefix>/`.
    pub fn map(&self, name: &str) -> String {
        match name.strip_prefix(&self.root_dot) {
            Some(rest) => join(&self.prefix, &rest.replace('.', "/")),
            None => name.replace('.', "/"),
        }
    }

    /// The topic to publish the event `name` on; refuses names that map to
    /// an empty topic, one with NUL or a wildcard, or one longer than
    /// [`MAX_TOPIC_LEN`].
    pub fn publish_topic(&self, name: &str) -> Result<String, GossipError> {
        let topic = self.map(name);
        check_common(name, &topic)?;
        if topic.contains(['+', '#']) {
            return Err(bad_name(
                name,
                "has a wildcard (+ or #); only subscriptions may",
            ));
        }
        Ok(topic)
    }

    /// The topic filter to subscribe to for the event name `name`;
    /// refuses what [`TopicMap::publish_topic`] does, except wildcards that
    /// stand for a whole level (`+`, and `#` at the end).
    pub fn filter(&self, name: &str) -> Result<String, GossipError> {
        let filter = self.map(name);
        check_common(name, &filter)?;
        if !valid_filter(&filter) {
            return Err(bad_name(
                name,
                "has a wildcard that is not a whole level (+ anywhere, # only last)",
            ));
        }
        Ok(filter)
    }
}

/// `a/b` from `a` and `b`; just `b` when `a` is empty.
pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}/{b}")
    }
}

fn bad_name(name: &str, why: &str) -> GossipError {
    let mut shown: String = name.chars().take(100).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    GossipError::Backend(format!("event name {shown:?} {why}"))
}

fn check_common(name: &str, topic: &str) -> Result<(), GossipError> {
    if topic.is_empty() {
        return Err(bad_name(name, "maps to an empty MQTT topic"));
    }
    if topic.contains('\0') {
        return Err(bad_name(name, "contains NUL"));
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(bad_name(
            name,
            &format!(
                "maps to a topic of {} bytes, over MQTT's {MAX_TOPIC_LEN}",
                topic.len()
            ),
        ));
    }
    Ok(())
}

/// Whether `filter` is a well-formed MQTT topic filter: not empty, `+`
/// only as a whole level, `#` only as the whole last level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        let ok = match level {
            "+" => true,
            "#" => last,
            l => !l.contains(['+', '#']),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether the topic `topic` (no wildcards) matches the filter `filter`.
///
/// `+` matches exactly one level, `#` (as the last level) the parent level
/// and any number of levels below it. As MQTT requires, a filter starting
/// with a wildcard does not match topics starting with `$` (the broker's
/// own, like `$SYS/…`). A malformed filter matches only what its literal
/// levels match.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return f.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_root_names_below_the_prefix() {
        let m = TopicMap::new("kv/test", "distkv");
        assert_eq!(m.map("distkv.update"), "kv/test/update");
        assert_eq!(m.map("distkv.a.b"), "kv/test/a/b");
        assert_eq!(m.map("user.foo.bar"), "user/foo/bar");
        assert_eq!(m.map("distkv"), "distkv");
        assert_eq!(m.map("distkvx.update"), "distkvx/update");
        assert_eq!(m.map(":distkv.info"), ":distkv/info");
        assert_eq!(m.map("distkv."), "kv/test/");
        let bare = TopicMap::new("", "distkv");
        assert_eq!(bare.map("distkv.ping"), "ping");
        let noroot = TopicMap::new("p", "");
        assert_eq!(noroot.map(".ping"), "p/ping");
        assert_eq!(noroot.map("ping"), "ping");
    }

    #[test]
    fn refuses_bad_names() {
        let m = TopicMap::new("", "distkv");
        assert!(m.publish_topic("").is_err());
        assert!(m.filter("").is_err());
        assert!(m.publish_topic("distkv.").is_err());
        assert!(m.publish_topic("a\0b").is_err());
        assert!(m.filter("a\0b").is_err());
        assert!(m.publish_topic("a.+.b").is_err());
        assert!(m.publish_topic("a.#").is_err());
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        assert!(m.publish_topic(&long).is_err());
        assert!(m.filter(&long).is_err());
        assert_eq!(
            m.publish_topic(&"x".repeat(MAX_TOPIC_LEN))
                .ok()
                .map(|t| t.len()),
            Some(MAX_TOPIC_LEN)
        );
        assert_eq!(m.filter("a.+.b").ok().as_deref(), Some("a/+/b"));
        assert_eq!(m.filter("a.#").ok().as_deref(), Some("a/#"));
        assert_eq!(m.filter("#").ok().as_deref(), Some("#"));
        assert!(m.filter("a.#.b").is_err());
        assert!(m.filter("a.b#").is_err());
        assert!(m.filter("a.b+").is_err());
        let msg = m
            .filter("a.b+")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("a.b+"), "{msg}");
    }

    #[test]
    fn filter_syntax() {
        for ok in [
            "a", "a/b", "+", "#", "a/+", "a/#", "+/+/#", "/", "a//b", "$SYS/#",
        ] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "#/a", "a/#/b", "a+", "+a/b", "a/b+/c", "##", "++"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn wildcard_matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("+/b", "a/b"),
            ("+/+", "a/b"),
            ("a/#", "a/b/c"),
            ("a/#", "a"),
            ("a/#", "a/"),
            ("#", "a/b/c"),
            ("+", ""),
            ("a/+/c", "a//c"),
            ("/+", "/x"),
            ("$SYS/#", "$SYS/broker"),
            ("$SYS/+", "$SYS/x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("a/b", "a/c"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("+", "a/b"),
            ("a/#", "b/c"),
            ("#", "$SYS/broker"),
            ("+/broker", "$SYS/broker"),
            ("a/#/b", "a/x/b"),
            ("A/b", "a/b"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }
}
