//! Signed, and optionally encrypted, server-to-server messages.
//!
//! Everything a server publishes through its transport (Serf user events,
//! MQTT messages) is wrapped in an envelope that carries an authentication
//! tag computed with a *network key*: a secret shared by the servers of one
//! network and nobody else. A server with keys drops every message whose
//! tag does not verify, so whoever can reach the Serf agent or publish on
//! the broker cannot write the tree past logins and ACLs.
//!
//! # The envelope
//!
//! A msgpack map, split into fragments like any other message if it is too
//! long for one event:
//!
//! | field | signed | encrypted |
//! |---|---|---|
//! | `_kid` | key id (text) | key id (text) |
//! | `_n` | nonce, 24 random bytes | nonce, 24 random bytes |
//! | `_body` | the message's msgpack bytes | – |
//! | `_tag` | 16-byte Poly1305 tag | – |
//! | `_sealed` | – | ciphertext ‖ 16-byte tag |
//!
//! The cipher is XChaCha20-Poly1305. The associated data binds the tag to
//! the envelope version, the event name (so a message cannot be moved to
//! another topic or network) and the key id; a signed message also puts
//! its body into the associated data, an encrypted one encrypts it.
//!
//! Each configured secret becomes a key for one network root with
//! HKDF-SHA256 (`info` = the root), so one secret used for two networks
//! does not let messages of one be replayed into the other.
//!
//! # Replays
//!
//! A captured envelope verifies again when it is sent again. That is
//! harmless by construction: every change carries its `(node, tick)`,
//! which the receiver already knows after the first delivery (a duplicate
//! or stale change is ignored, and a purged entry's tick is remembered
//! as known so that the change cannot come back); pings and info
//! messages only ever add ticks to what is known, which a replay cannot
//! undo. A replay can make a server do a little needless work, never
//! change data.
//!
//! # Rotation
//!
//! A key ring holds several keys: the first one signs, all of them are
//! accepted. Keys rotate in three rolling steps: every server gets the
//! ring `old, new` (it accepts the new key, still sending with the old),
//! then `new, old` (it sends with the new one), then `new` alone (the old
//! key is retired).
//!
//! ```
//! use distkv_auth::gossip_key::{GossipKeyRing, Protection};
//! let spec = "k1:c2l4dGVlbi1ieXRlcyBzZWNyZXQtLTMyLWJ5dGVzIQ==";
//! let ring = GossipKeyRing::new(&[spec], ":distkv", Protection::Sign)?;
//! let envelope = ring.seal(":distkv.update", b"\x80");
//! assert_eq!(ring.open(":distkv.update", &envelope)?, b"\x80");
//! // moved to another topic, it no longer verifies
//! assert!(ring.open(":distkv.info", &envelope).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use distkv_tree::Value;
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;
/// The longest secret accepted, in bytes.
pub const MAX_SECRET: usize = 1024;
/// The longest key id.
pub const MAX_KEY_ID: usize = 32;
/// The most keys in one ring.
pub const MAX_KEYS: usize = 16;
const VERSION: &[u8] = b"distkv gossip 1\0";

/// Whether gossip payloads are only signed or also encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    /// A tag over the message; the message itself stays readable.
    #[default]
    Sign,
    /// The message is encrypted (and authenticated).
    Encrypt,
}

/// A key specification or key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `ID:BASE64`.
    #[error("a gossip key is written ID:BASE64 (line {line}): {why}")]
    Syntax {
        /// The 1-based item or line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The secret is too short or too long.
    #[error(
        "gossip key {id}: the secret has {len} bytes; it needs {MIN_SECRET} to {MAX_SECRET} (32 random bytes recommended)"
    )]
    Length {
        /// The key id.
        id: String,
        /// The secret's length.
        len: usize,
    },
    /// Two keys with one id.
    #[error("gossip key id {0} is given twice")]
    Duplicate(String),
    /// No key at all.
    #[error("no gossip key given")]
    Empty,
    /// More than [`MAX_KEYS`].
    #[error("at most {MAX_KEYS} gossip keys may be given")]
    TooMany,
}

/// Why a received message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// An ordinary message without an envelope.
    #[error("the message is not signed")]
    Unsigned,
    /// An envelope field is missing or has the wrong type or size.
    #[error("bad envelope: {0}")]
    Malformed(&'static str),
    /// Signed with a key this server does not have (or no longer has).
    #[error("signed with an unknown key id {0:?}")]
    UnknownKey(String),
    /// The tag does not verify: a forged, altered or misdirected message.
    #[error("the signature does not verify (key {0:?})")]
    BadTag(String),
}

impl OpenError {
    /// A short name of the kind of failure, for counters and log limits.
    pub fn kind(&self) -> &'static str {
        match self {
            OpenError::Unsigned => "unsigned",
            OpenError::Malformed(_) => "malformed",
            OpenError::UnknownKey(_) => "unknown_key",
            OpenError::BadTag(_) => "bad_tag",
        }
    }
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The keys of one network: the first signs, all are accepted.
pub struct GossipKeyRing {
    keys: Vec<Key>,
    protection: Protection,
}

impl std::fmt::Debug for GossipKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipKeyRing")
            .field("ids", &self.ids())
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl GossipKeyRing {
    /// Builds the ring of network `root` from key specifications
    /// `ID:BASE64` (standard base64 of the secret); the first one signs.
    pub fn new(
        specs: &[&str],
        root: &str,
        protection: Protection,
    ) -> Result<GossipKeyRing, KeyError> {
        if specs.is_empty() {
            return Err(KeyError::Empty);
        }
        if specs.len() > MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        let mut keys: Vec<Key> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let (id, secret) = parse_spec(spec, i + 1)?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyError::Duplicate(id));
            }
            let hk = Hkdf::<Sha256>::new(Some(b"distkv gossip key"), &secret);
            let mut key = Zeroizing::new([0u8; 32]);
            // 32 bytes is far below HKDF-SHA256's output limit
            if hk.expand(root.as_bytes(), key.as_mut()).is_err() {
                return Err(KeyError::Length { id, len: 0 });
            }
            keys.push(Key {
                id,
                cipher: XChaCha20Poly1305::new(key.as_ref().into()),
            });
        }
        Ok(GossipKeyRing { keys, protection })
    }

    /// The key ids, the sending one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether messages are encrypted as well as signed.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// Wraps `body` (a message's msgpack bytes) for the event `topic`.
    pub fn seal(&self, topic: &str, body: &[u8]) -> Value {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let xnonce = XNonce::from_slice(&nonce);
        let mut m = vec![
            (Value::from("_kid"), Value::from(key.id.as_str())),
            (Value::from("_n"), Value::Bytes(nonce[..].into())),
        ];
        match self.protection {
            Protection::Sign => {
                let ad = associated(topic, &key.id, Some(body));
                let tag = key
                    .cipher
                    .encrypt_in_place_detached(xnonce, &ad, &mut [])
                    .map_or_else(|_| vec![0; TAG_LEN], |t| t.to_vec());
                m.push((Value::from("_body"), Value::Bytes(body[..].into())));
                m.push((Value::from("_tag"), Value::Bytes(tag.into())));
            }
            Protection::Encrypt => {
                let ad = associated(topic, &key.id, None);
                let mut buf = body.to_vec();
                // encryption only fails for messages above 256 GiB
                if let Ok(tag) = key.cipher.encrypt_in_place_detached(xnonce, &ad, &mut buf) {
                    buf.extend_from_slice(&tag);
                }
                m.push((Value::from("_sealed"), Value::Bytes(buf.into())));
            }
        }
        Value::Map(m.into())
    }

    /// Checks an envelope received on event `topic` and returns the
    /// message's msgpack bytes.
    pub fn open(&self, topic: &str, msg: &Value) -> Result<Vec<u8>, OpenError> {
        let Value::Map(fields) = msg else {
            return Err(OpenError::Malformed("not a map"));
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };
        let Some(kid) = field("_kid") else {
            return Err(OpenError::Unsigned);
        };
        let kid = kid.as_str().ok_or(OpenError::Malformed("_kid"))?;
        if kid.len() > MAX_KEY_ID {
            return Err(OpenError::Malformed("_kid"));
        }
        let nonce = match field("_n") {
            Some(Value::Bytes(n)) if n.len() == NONCE_LEN => XNonce::from_slice(n),
            _ => return Err(OpenError::Malformed("_n")),
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.to_owned()))?;
        let bad = || OpenError::BadTag(kid.to_owned());
        match (field("_body"), field("_tag"), field("_sealed")) {
            (Some(Value::Bytes(body)), Some(Value::Bytes(tag)), None) => {
                if tag.len() != TAG_LEN {
                    return Err(OpenError::Malformed("_tag"));
                }
                let ad = associated(topic, kid, Some(body));
                key.cipher
                    .decrypt_in_place_detached(nonce, &ad, &mut [], Tag::from_slice(tag))
                    .map_err(|_| bad())?;
                Ok(body.to_vec())
            }
            (None, None, Some(Value::Bytes(sealed))) => {
                let Some(split) = sealed.len().checked_sub(TAG_LEN) else {
                    return Err(OpenError::Malformed("_sealed"));
                };
                let (ct, tag) = sealed.split_at(split);
                let ad = associated(topic, kid, None);
                let mut buf = ct.to_vec();
                key.cipher
                    .decrypt_in_place_detached(nonce, &ad, &mut buf, Tag::from_slice(tag))
                    .map_err(|_| bad())?;
                Ok(buf)
            }
            _ => Err(OpenError::Malformed("needs _body and _tag, or _sealed")),
        }
    }
}

impl GossipKeyRing {
    /// Signs a short text for `context`: a server's client address in a
    /// transport tag, which peers then trust as that server's. Returns
    /// `TEXT|KID|NONCE|TAG` (base64 nonce and tag); the text must not
    /// contain `|`.
    pub fn sign_text(&self, context: &str, text: &str) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ad = associated(context, &key.id, Some(text.as_bytes()));
        let tag = key
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut [])
            .map_or_else(|_| vec![0; TAG_LEN], |t| t.to_vec());
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "{text}|{}|{}|{}",
            key.id,
            b64.encode(nonce),
            b64.encode(tag)
        )
    }

    /// Checks a text signed with [`GossipKeyRing::sign_text`] for
    /// `context` and returns the text.
    pub fn verify_text<'a>(&self, context: &str, signed: &'a str) -> Result<&'a str, OpenError> {
        let mut parts = signed.rsplitn(4, '|');
        let (Some(tag), Some(nonce), Some(kid), Some(text)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Unsigned);
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64
            .decode(nonce)
            .ok()
            .filter(|n| n.len() == NONCE_LEN)
            .ok_or(OpenError::Malformed("nonce"))?;
        let tag = b64
            .decode(tag)
            .ok()
            .filter(|t| t.len() == TAG_LEN)
            .ok_or(OpenError::Malformed("tag"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.chars().take(MAX_KEY_ID).collect()))?;
        let ad = associated(context, kid, Some(text.as_bytes()));
        key.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &ad,
                &mut [],
                Tag::from_slice(&tag),
            )
            .map_err(|_| OpenError::BadTag(kid.to_owned()))?;
        Ok(text)
    }
}

/// The associated data of an envelope.
fn associated(topic: &str, kid: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut ad = Vec::with_capacity(
        VERSION.len() + topic.len() + kid.len() + 2 + body.map_or(0, <[u8]>::len),
    );
    ad.extend_from_slice(VERSION);
    ad.extend_from_slice(topic.as_bytes());
    ad.push(0);
    ad.extend_from_slice(kid.as_bytes());
    ad.push(0);
    if let Some(b) = body {
        ad.extend_from_slice(b);
    }
    ad
}

/// Reads one `ID:BASE64` specification (`item`: its number, for errors).
fn parse_spec(spec: &str, item: usize) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    let syntax = |why: &str| KeyError::Syntax {
        line: item,
        why: why.to_owned(),
    };
    let (id, b64) = spec
        .trim()
        .split_once(':')
        .ok_or_else(|| syntax("no ':' between the id and the secret"))?;
    let valid_id = !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid_id {
        return Err(syntax(
            "the id is 1 to 32 characters of letters, digits, '_', '-' and '.'",
        ));
    }
    if b64.len() > MAX_SECRET * 2 {
        return Err(KeyError::Length {
            id: id.to_owned(),
            len: b64.len(),
        });
    }
    let secret = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| syntax(&format!("the secret is not base64: {e}")))?,
    );
    if !(MIN_SECRET..=MAX_SECRET).contains(&secret.len()) {
        return Err(KeyError::Length {
            id: id.to_owned(),
            len: secret.len(),
        });
    }
    Ok((id.to_owned(), secret))
}

/// Reads a key file: one `ID:BASE64` per line; empty lines and lines
/// starting with `#` are ignored. Returns the specifications in order
/// (the first one signs). The file's syntax is checked line by line, so
/// that an error names the line.
pub fn parse_key_file(text: &str) -> Result<Vec<String>, KeyError> {
    let mut specs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_spec(line, n + 1)?;
        if specs.len() == MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        specs.push(line.to_owned());
    }
    if specs.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(specs)
}

/// A fresh key specification with id `id` and 32 random bytes.
pub fn generate(id: &str) -> String {
    let mut secret = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(secret.as_mut());
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(secret.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const B: &str = "b:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    fn ring(specs: &[&str], p: Protection) -> GossipKeyRing {
        GossipKeyRing::new(specs, ":distkv", p).expect("valid keys")
    }

    fn set_field(v: &mut Value, name: &str, new: Value) {
        if let Value::Map(m) = v {
            for (k, val) in m.iter_mut() {
                if k.as_str() == Some(name) {
                    *val = new.clone();
                }
            }
        }
    }

    #[test]
    fn signed_and_encrypted_messages_round_trip() {
        for p in [Protection::Sign, Protection::Encrypt] {
            let r = ring(&[A], p);
            let env = r.seal(":distkv.update", b"hello");
            assert_eq!(r.open(":distkv.update", &env), Ok(b"hello".to_vec()));
            let visible = env.get("_body").is_some();
            assert_eq!(visible, p == Protection::Sign, "{p:?}");
        }
    }

    #[test]
    fn encrypted_messages_do_not_show_the_body() {
        let r = ring(&[A], Protection::Encrypt);
        let env = r.seal(":distkv.update", b"very private value");
        let bytes = distkv_proto::msgpack::to_vec(&env);
        assert!(!bytes.windows(7).any(|w| w == b"private"));
    }

    #[test]
    fn altered_moved_or_foreign_messages_do_not_verify() {
        let r = ring(&[A], Protection::Sign);
        let env = r.seal(":distkv.update", b"hello");
        // another topic, another network
        assert!(matches!(
            r.open(":distkv.info", &env),
            Err(OpenError::BadTag(_))
        ));
        let other_net = GossipKeyRing::new(&[A], ":other", Protection::Sign).expect("keys");
        assert!(matches!(
            other_net.open(":distkv.update", &env),
            Err(OpenError::BadTag(_))
        ));
        // an altered body
        let mut changed = env.clone();
        set_field(&mut changed, "_body", Value::Bytes(b"hellO"[..].into()));
        assert!(matches!(
            r.open(":distkv.update", &changed),
            Err(OpenError::BadTag(_))
        ));
        // a key with the same id but another secret
        let forged = ring(
            &["a:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="],
            Protection::Sign,
        )
        .seal(":distkv.update", b"hello");
        assert!(matches!(
            r.open(":distkv.update", &forged),
            Err(OpenError::BadTag(_))
        ));
        // an unknown key id
        let unknown = ring(&[B], Protection::Sign).seal(":distkv.update", b"hello");
        assert_eq!(
            r.open(":distkv.update", &unknown),
            Err(OpenError::UnknownKey("b".into()))
        );
        // an encrypted message with a flipped bit
        let e = ring(&[A], Protection::Encrypt);
        let mut sealed = e.seal(":distkv.update", b"hello");
        if let Some(Value::Bytes(b)) = sealed.get("_sealed").cloned() {
            let mut b = b;
            b[0] ^= 1;
            set_field(&mut sealed, "_sealed", Value::Bytes(b));
        }
        assert!(matches!(
            e.open(":distkv.update", &sealed),
            Err(OpenError::BadTag(_))
        ));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let r = ring(&[A], Protection::Sign);
        let good = r.seal(":t", b"x");
        assert_eq!(
            r.open(":t", &Value::Int(1)),
            Err(OpenError::Malformed("not a map"))
        );
        let plain =
            Value::Map(vec![(Value::from("path"), Value::Array(Default::default()))].into());
        assert_eq!(r.open(":t", &plain), Err(OpenError::Unsigned));
        for (field, v) in [
            ("_kid", Value::Int(3)),
            ("_kid", Value::from("x".repeat(33).as_str())),
            ("_n", Value::Bytes(vec![0; 23].into())),
            ("_n", Value::Nil),
            ("_tag", Value::Bytes(vec![0; 15].into())),
            ("_tag", Value::Bytes(vec![0; 17].into())),
            ("_tag", Value::from("tag")),
            ("_body", Value::Int(1)),
        ] {
            let mut bad = good.clone();
            set_field(&mut bad, field, v.clone());
            assert!(
                matches!(r.open(":t", &bad), Err(OpenError::Malformed(_))),
                "{field} = {v:?}"
            );
        }
        let mut short = ring(&[A], Protection::Encrypt).seal(":t", b"");
        set_field(&mut short, "_sealed", Value::Bytes(vec![1; 5].into()));
        assert_eq!(r.open(":t", &short), Err(OpenError::Malformed("_sealed")));
    }

    #[test]
    fn a_ring_signs_with_its_first_key_and_accepts_all() {
        let old = ring(&[A], Protection::Sign);
        let both = ring(&[B, A], Protection::Sign);
        let new = ring(&[B], Protection::Sign);
        let from_old = old.seal(":t", b"1");
        let from_both = both.seal(":t", b"2");
        assert_eq!(from_both.get("_kid"), Some(&Value::from("b")));
        assert!(both.open(":t", &from_old).is_ok());
        assert!(old.open(":t", &from_both).is_err());
        assert!(new.open(":t", &from_both).is_ok());
        // the retired key is no longer accepted
        assert_eq!(
            new.open(":t", &from_old),
            Err(OpenError::UnknownKey("a".into()))
        );
    }

    #[test]
    fn signed_texts_verify_only_in_their_context() {
        let r = ring(&[A], Protection::Encrypt);
        let signed = r.sign_text("addr one", "127.0.0.1:27586");
        assert_eq!(r.verify_text("addr one", &signed), Ok("127.0.0.1:27586"));
        assert!(matches!(
            r.verify_text("addr two", &signed),
            Err(OpenError::BadTag(_))
        ));
        let moved = signed.replacen("27586", "27587", 1);
        assert!(matches!(
            r.verify_text("addr one", &moved),
            Err(OpenError::BadTag(_))
        ));
        assert_eq!(
            r.verify_text("addr one", "127.0.0.1:1"),
            Err(OpenError::Unsigned)
        );
        assert_eq!(
            r.verify_text("addr one", "h|a|!!|!!"),
            Err(OpenError::Malformed("nonce"))
        );
        let other = ring(&[B], Protection::Sign).sign_text("addr one", "h:1");
        assert_eq!(
            r.verify_text("addr one", &other),
            Err(OpenError::UnknownKey("b".into()))
        );
    }

    #[test]
    fn key_specifications_are_checked() {
        let bad = |s: &str| GossipKeyRing::new(&[s], ":r", Protection::Sign).err();
        assert!(matches!(bad("no-colon"), Some(KeyError::Syntax { .. })));
        assert!(matches!(bad(":AAAA"), Some(KeyError::Syntax { .. })));
        assert!(matches!(bad("a b:AAAA"), Some(KeyError::Syntax { .. })));
        assert!(matches!(
            bad("a:not base64!"),
            Some(KeyError::Syntax { .. })
        ));
        assert!(matches!(
            bad("a:AAAA"),
            Some(KeyError::Length { len: 3, .. })
        ));
        let long = format!("a:{}", "A".repeat(10_000));
        assert!(matches!(bad(&long), Some(KeyError::Length { .. })));
        assert!(matches!(
            GossipKeyRing::new(&[A, A], ":r", Protection::Sign),
            Err(KeyError::Duplicate(_))
        ));
        assert!(matches!(
            GossipKeyRing::new(&[], ":r", Protection::Sign),
            Err(KeyError::Empty)
        ));
        let generated = generate("k7");
        let r = GossipKeyRing::new(&[generated.as_str()], ":r", Protection::Sign).expect("valid");
        assert_eq!(r.ids(), vec!["k7"]);
    }

    #[test]
    fn key_files_name_the_bad_line() {
        let text = format!("# network keys\n\n{B}\n  {A}  \n");
        assert_eq!(parse_key_file(&text), Ok(vec![B.to_owned(), A.to_owned()]));
        assert_eq!(parse_key_file("# nothing\n"), Err(KeyError::Empty));
        let broken = format!("{A}\n\nb:???\n");
        assert!(matches!(
            parse_key_file(&broken),
            Err(KeyError::Syntax { line: 3, .. })
        ));
        let many: String = (0..17).map(|i| format!("k{i}:{}\n", &A[2..])).collect();
        assert_eq!(parse_key_file(&many), Err(KeyError::TooMany));
    }
}
