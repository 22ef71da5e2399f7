//! Secret transport: an ephemeral X25519 key agreement per connection and
//! XChaCha20-Poly1305 boxes.
//!
//! The client sends a fresh public key (`key_exchange`), the server
//! answers with one of its own; both derive the session key with
//! HKDF-SHA256 over the shared secret, salted with both public keys. A
//! secret is sent as `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`,
//! bound to the method, the user and the field name (associated data), so
//! a box cannot be replayed on another connection or moved to another
//! user or field. A passive eavesdropper learns nothing about the secret;
//! an active man in the middle can: use TLS where that matters.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use crate::AuthError;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The largest secret accepted in a box.
pub const MAX_SECRET: usize = 4096;

/// One side's half of a key agreement.
pub struct KeyExchange {
    secret: EphemeralSecret,
    public: PublicKey,
}

impl std::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExchange").finish_non_exhaustive()
    }
}

impl Default for KeyExchange {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyExchange {
    /// A fresh ephemeral key pair.
    pub fn new() -> KeyExchange {
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let public = PublicKey::from(&secret);
        KeyExchange { secret, public }
    }

    /// The public key to send.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Completes the agreement with the peer's public key. `client`: this
    /// side opened the connection.
    pub fn finish(self, peer: &[u8], client: bool) -> Result<SessionKey, AuthError> {
        let peer: [u8; 32] = peer
            .try_into()
            .map_err(|_| AuthError::Crypto("a public key has 32 bytes".into()))?;
        let peer = PublicKey::from(peer);
        let own = self.public.to_bytes();
        let shared = self.secret.diffie_hellman(&peer);
        if !shared.was_contributory() {
            return Err(AuthError::Crypto("weak public key".into()));
        }
        let (c, s) = if client {
            (own, peer.to_bytes())
        } else {
            (peer.to_bytes(), own)
        };
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&c);
        salt[32..].copy_from_slice(&s);
        let hk = Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"distkv-rs session key v1", key.as_mut())
            .map_err(|_| AuthError::Crypto("key derivation failed".into()))?;
        Ok(SessionKey(key))
    }
}

/// The key both sides of a connection share after a key exchange.
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// What a sealed secret is bound to.
pub fn binding(method: &str, ident: &str, field: &str) -> Vec<u8> {
    let mut ad = b"distkv-rs secret v1\0".to_vec();
    for part in [method, ident, field] {
        ad.extend_from_slice(part.as_bytes());
        ad.push(0);
    }
    ad
}

impl SessionKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }

    /// Seals `secret`, bound to `ad` (see [`binding`]).
    pub fn seal(&self, ad: &[u8], secret: &[u8]) -> Result<Vec<u8>, AuthError> {
        if secret.len() > MAX_SECRET {
            return Err(AuthError::Param(format!(
                "a secret may have at most {MAX_SECRET} bytes"
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let body = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: ad,
                },
            )
            .map_err(|_| AuthError::Crypto("cannot seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a box sealed by the other side with the same binding.
    pub fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AuthError> {
        if sealed.len() < NONCE_LEN + TAG_LEN || sealed.len() > NONCE_LEN + TAG_LEN + MAX_SECRET {
            return Err(AuthError::Crypto(
                "a sealed secret has the wrong size".into(),
            ));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: ad })
            .map(Zeroizing::new)
            .map_err(|_| AuthError::Crypto("a sealed secret does not open".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SessionKey, SessionKey) {
        let (c, s) = (KeyExchange::new(), KeyExchange::new());
        let (cp, sp) = (c.public_bytes(), s.public_bytes());
        (
            c.finish(&sp, true).expect("client"),
            s.finish(&cp, false).expect("server"),
        )
    }

    #[test]
    fn both_sides_agree_and_boxes_are_bound() {
        let (c, s) = pair();
        let ad = binding("password", "joe", "password");
        let sealed = c.seal(&ad, b"test123").expect("seal");
        assert_eq!(sealed.len(), 24 + 7 + 16);
        assert!(!sealed.windows(7).any(|w| w == b"test123"));
        assert_eq!(s.open(&ad, &sealed).expect("open").as_slice(), b"test123");
        // another user, another field, another connection, a flipped bit
        assert!(
            s.open(&binding("password", "bob", "password"), &sealed)
                .is_err()
        );
        assert!(
            s.open(&binding("password", "joe", "other"), &sealed)
                .is_err()
        );
        let (_, other) = pair();
        assert!(other.open(&ad, &sealed).is_err());
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert!(s.open(&ad, &bad).is_err());
        assert!(s.open(&ad, &sealed[..20]).is_err());
        // the same secret seals differently each time
        assert_ne!(c.seal(&ad, b"test123").expect("seal"), sealed);
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert!(KeyExchange::new().finish(&[1, 2, 3], true).is_err());
        // the all-zero point gives no shared secret
        assert!(KeyExchange::new().finish(&[0; 32], true).is_err());
    }
}
