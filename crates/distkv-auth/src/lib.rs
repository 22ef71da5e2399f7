//! distkv authentication.
//!
//! It sits on the data model (`distkv-tree`) and the message helpers of
//! `distkv-proto`, beside `distkv-acl` and `distkv-code`.
//! An auth method ([`AuthMethod`]) has two halves: the client half turns
//! user-supplied parameters into [`Credentials`], the server half builds
//! the record stored for a user (below `None auth METHOD user IDENT`) and
//! checks logins against it. A custom backend implements the trait in its
//! own crate and is registered in a [`Registry`] on both sides.
//!
//! Built in: `root`, `_test` and `password` (argon2id hashes). Secrets
//! never travel in the clear: each connection agrees on a session key
//! (ephemeral X25519, [`crypto`]) and secrets are sealed with it.
//!
//! ```
//! use distkv_auth::{Registry, params::{parse_auth_string, NoPrompt}};
//! let (method, params) = parse_auth_string("password name=joe password=test123", &NoPrompt)?;
//! let creds = Registry::builtin().get(&method)?.credentials(&params)?;
//! assert_eq!(creds.ident, "joe");
//! # Ok::<(), distkv_auth::AuthError>(())
//! ```

pub mod builtin;
pub mod client;
pub mod crypto;
mod error;
pub mod gossip_key;
mod method;
pub mod params;
mod registry;
pub mod wire;

pub use client::{AuthChannel, ClientAuth};
pub use error::{AuthError, py_str};
pub use method::{AuthMethod, Credentials, Param, Params, Presented};
pub use registry::Registry;
