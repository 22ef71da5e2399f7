//! Logins, sessions and user management (auth-acl.md §1–§3).
//!
//! Auth state lives in the system subtree and replicates like any data:
//! `None auth` holds `{current: METHOD}` (no `current`: auth is off) and
//! `None auth METHOD user IDENT` one record per user: what the method
//! stores (e.g. an argon2id hash) plus the user's aux data (`_aux`).

use std::sync::Arc;

use distkv_auth::AuthMethod;
use distkv_auth::crypto::{KeyExchange, SessionKey};
use distkv_proto::request::AuthAction;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Precondition, Tree, Value};

use crate::service::login_failures::failure_delay;
use crate::service::snapshot::push_entry;
use crate::service::state::ServiceState;
use crate::state::{Shared, Store};

/// Who a connection acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The method logged in with (`None`: auth was off, the built-in
    /// super user).
    pub method: Option<String>,
    /// The user.
    pub ident: String,
    /// May manage auth and read and write the system subtree.
    pub super_root: bool,
    /// The ACL bound to the user (aux `acl`).
    pub acl: Option<String>,
    /// The converter group bound to the user (aux `conv`).
    pub conv: Option<String>,
}

impl User {
    /// The built-in super user of a server without auth.
    pub fn superuser() -> User {
        User {
            method: None,
            ident: "*".into(),
            super_root: true,
            acl: None,
            conv: None,
        }
    }

    /// Whether this user may touch `path` at all (the system subtree,
    /// below a `None` first element, is for super-root users only).
    pub fn may_access(&self, path: &Path) -> bool {
        self.super_root || !is_system(path)
    }
}

/// Whether `path` is in the system subtree.
pub fn is_system(path: &Path) -> bool {
    path.0.first() == Some(&PathElem::Nil)
}

/// The auth state of one connection.
#[derive(Debug, Default)]
pub struct Session {
    /// Who the connection acts as; `None` until a required login succeeded.
    pub user: Option<Arc<User>>,
    key: Option<SessionKey>,
    failures: u32,
}

impl Session {
    /// A session for a connection that was greeted with `current` as the
    /// active method (`None`: no login needed).
    pub fn new(current: Option<&str>) -> Session {
        Session {
            user: current.is_none().then(|| Arc::new(User::superuser())),
            key: None,
            failures: 0,
        }
    }
}

fn auth_root() -> Path {
    Path(vec![PathElem::Nil, PathElem::Str("auth".into())])
}

fn users_path(typ: &str) -> Path {
    auth_root()
        .child(PathElem::Str(typ.into()))
        .child(PathElem::Str("user".into()))
}

fn user_path(typ: &str, ident: &str) -> Path {
    users_path(typ).child(PathElem::Str(ident.into()))
}

/// The active method, if auth is on.
pub fn current_method(tree: &Tree) -> Option<String> {
    tree.get(&auth_root())
        .and_then(|e| e.data())
        .and_then(|v| v.get("current"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The greeting's `auth` field: `None` when no auth was ever set up;
/// else the active method (or nil) followed by the other methods that
/// have users.
pub fn greeting_auth(tree: &Tree) -> Option<Value> {
    let root = tree.get(&auth_root())?;
    let current = current_method(tree);
    let mut list = vec![current.clone().map_or(Value::Nil, Value::from)];
    for (name, _) in root.children() {
        if let PathElem::Str(n) = name {
            if Some(n.as_str()) != current.as_deref() {
                list.push(Value::from(n.as_str()));
            }
        }
    }
    Some(Value::Array(list.into()))
}

fn error_reply(text: impl Into<String>) -> MapBuilder {
    MapBuilder::new().set("error", text.into())
}

fn need_super(session: &Session) -> Result<(), String> {
    match &session.user {
        Some(u) if u.super_root => Ok(()),
        _ => Err(distkv_proto::ErrorClass::NoAuth.message("you may not manage users")),
    }
}

fn aux_fields(aux: Option<&Value>) -> Result<Value, String> {
    match aux {
        None | Some(Value::Nil) => Ok(Value::Nil),
        Some(Value::Map(m)) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    (Some("acl" | "conv"), Value::Str(_)) => {}
                    _ => {
                        return Err(format!(
                            "aux data may only hold 'acl' and 'conv' names, not {k:?}"
                        ));
                    }
                }
            }
            Ok(Value::Map(m.clone()))
        }
        Some(_) => Err("aux data must be a map".into()),
    }
}

fn aux_name(record: &Value, key: &str) -> Option<String> {
    record
        .get("_aux")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Runs an auth action on connection `session`; returns its replies, in
/// order (one, or a `start`, items, `end` stream).
pub async fn handle(shared: &Shared, session: &mut Session, action: AuthAction) -> Vec<MapBuilder> {
    let (store, svc) = (&shared.store, &shared.service);
    match action {
        AuthAction::KeyExchange { pubkey } => vec![key_exchange(session, &pubkey)],
        AuthAction::Login { typ, request } => {
            let failed = login(store, svc, session, &typ, &request).await.err();
            stream(failed.map(error_reply))
        }
        AuthAction::SetUser { typ, request, new } => {
            vec![
                set_user(shared, session, &typ, &request, new)
                    .await
                    .unwrap_or_else(error_reply),
            ]
        }
        AuthAction::ListUsers { typ, ident } => list_users(store, session, &typ, ident.as_deref()),
        AuthAction::GetUser { typ, ident } => {
            vec![get_user(store, svc, session, &typ, &ident).unwrap_or_else(error_reply)]
        }
        AuthAction::SetMethod { typ } => {
            vec![
                set_method(store, svc, session, typ.as_deref())
                    .await
                    .unwrap_or_else(error_reply),
            ]
        }
    }
}

/// A `start`, `items`, `end` stream.
fn stream(items: impl IntoIterator<Item = MapBuilder>) -> Vec<MapBuilder> {
    let mut out = vec![MapBuilder::new().set("state", "start")];
    out.extend(items);
    out.push(MapBuilder::new().set("state", "end"));
    out
}

/// Agrees on a session key with the client (once per connection); the
/// reply carries this server's public key.
fn key_exchange(session: &mut Session, pubkey: &[u8]) -> MapBuilder {
    if session.key.is_some() {
        return error_reply("Key exchange already done on this connection");
    }
    let kx = KeyExchange::new();
    let own = kx.public_bytes();
    match kx.finish(pubkey, false) {
        Ok(k) => {
            session.key = Some(k);
            MapBuilder::new().set("pubkey", Value::Bytes(own[..].into()))
        }
        Err(e) => error_reply(e.to_string()),
    }
}

/// The users of method `typ` (super-root users only): just `ident`, if
/// given and it exists, else a stream of all users with a record.
fn list_users(store: &Store, session: &Session, typ: &str, ident: Option<&str>) -> Vec<MapBuilder> {
    if let Err(e) = need_super(session) {
        return vec![error_reply(e)];
    }
    let item = |ident: &str| {
        MapBuilder::new()
            .set("typ", typ)
            .set("kind", "user")
            .set("ident", ident)
    };
    if let Some(id) = ident {
        let exists = store
            .lock()
            .tree
            .get(&user_path(typ, id))
            .is_some_and(|e| e.data().is_some());
        return vec![if exists {
            item(id)
        } else {
            error_reply(distkv_proto::ErrorClass::Key.call(user_path(typ, id)))
        }];
    }
    let idents: Vec<String> = {
        let core = store.lock();
        core.tree
            .get(&users_path(typ))
            .map(|e| {
                e.children()
                    .filter(|(_, c)| c.data().is_some())
                    .filter_map(|(n, _)| match n {
                        PathElem::Str(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    stream(idents.iter().map(|id| item(id)))
}

async fn login(
    store: &Store,
    svc: &ServiceState,
    session: &mut Session,
    typ: &str,
    request: &Value,
) -> Result<(), String> {
    let (current, record) = {
        let core = store.lock();
        let current = current_method(&core.tree);
        let ident = request.get("ident").and_then(Value::as_str).unwrap_or("");
        let record = core
            .tree
            .get(&user_path(typ, ident))
            .and_then(|e| e.data().cloned());
        (current, record)
    };
    if current.as_deref() != Some(typ) {
        return Err(format!(
            "Wrong auth type: {typ} (this server uses {})",
            current.as_deref().unwrap_or("none")
        ));
    }
    let method = svc.auth.get(typ).map_err(|e| e.to_string())?.clone();
    let presented = distkv_auth::wire::presented(typ, request, session.key.as_ref())
        .map_err(|e| e.to_string())?;
    let who = format!("{typ} {}", presented.ident);
    match method.verify(&presented, record.as_ref()).await {
        Ok(()) => {
            svc.login_failures.succeed(&who);
            session.failures = 0;
            // An already logged-in connection keeps its identity.
            if session.user.is_none() {
                let record = record.unwrap_or(Value::Nil);
                session.user = Some(Arc::new(User {
                    method: Some(typ.to_owned()),
                    ident: presented.ident.clone(),
                    super_root: method.super_root(),
                    acl: aux_name(&record, "acl"),
                    conv: aux_name(&record, "conv"),
                }));
                tracing::info!(method = typ, user = %presented.ident, "logged in");
            }
            Ok(())
        }
        Err(e) => {
            session.failures = session.failures.saturating_add(1);
            let n = session.failures.max(svc.login_failures.fail(&who));
            tracing::warn!(method = typ, user = %presented.ident, failures = n, "login failed");
            tokio::time::sleep(failure_delay(n)).await;
            Err(e.to_string())
        }
    }
}

async fn set_user(
    shared: &Shared,
    session: &Session,
    typ: &str,
    request: &Value,
    new: bool,
) -> Result<MapBuilder, String> {
    need_super(session)?;
    let method: Arc<dyn AuthMethod> = shared
        .service
        .auth
        .get(typ)
        .map_err(|e| e.to_string())?
        .clone();
    let aux = aux_fields(request.get("aux"))?;
    let presented = distkv_auth::wire::presented(typ, request, session.key.as_ref())
        .map_err(|e| e.to_string())?;
    let mut record = match method.make_record(&presented).await {
        Ok(Value::Map(m)) => m,
        Ok(_) => return Err(format!("the {typ} method made a record that is not a map")),
        Err(e) => return Err(e.to_string()),
    };
    record.retain(|(k, _)| k.as_str() != Some("_aux"));
    record.insert(0, (Value::from("_aux"), aux));
    let path = user_path(typ, &presented.ident);
    let pre = if new {
        Precondition {
            chain: Some(None),
            prev: None,
        }
    } else {
        let head = shared
            .store
            .lock()
            .tree
            .get(&path)
            .filter(|e| e.data().is_some())
            .and_then(|e| e.chain())
            .map(|c| c.head().clone())
            .ok_or_else(|| format!("No such user: {}", presented.ident))?;
        Precondition {
            chain: Some(Some(head)),
            prev: None,
        }
    };
    let change = shared
        .store
        .local_change(&path, Some(Value::Map(record)), &pre)
        .await
        .map_err(|e| e.to_string())?;
    let mut m = MapBuilder::new();
    match change {
        None => m.push("changed", false),
        Some(c) => {
            m.push("changed", c.changed());
            push_entry(&mut m, None, Some(&c.event.chain), c.event.tock, 1);
        }
    }
    tracing::info!(method = typ, user = %presented.ident, new, "user stored");
    Ok(m)
}

fn get_user(
    store: &Store,
    svc: &ServiceState,
    session: &Session,
    typ: &str,
    ident: &str,
) -> Result<MapBuilder, String> {
    need_super(session)?;
    let method = svc.auth.get(typ).map_err(|e| e.to_string())?;
    let record = store
        .lock()
        .tree
        .get(&user_path(typ, ident))
        .and_then(|e| e.data().cloned())
        .ok_or_else(|| format!("No such user: {ident}"))?;
    let mut m = MapBuilder::new()
        .set("typ", typ)
        .set("kind", "user")
        .set("ident", ident);
    if let Value::Map(info) = method.describe(ident, &record) {
        for (k, v) in info {
            if let Some(k) = k.as_str() {
                m.push(k, v);
            }
        }
    }
    Ok(m)
}

async fn set_method(
    store: &Store,
    svc: &ServiceState,
    session: &Session,
    typ: Option<&str>,
) -> Result<MapBuilder, String> {
    need_super(session)?;
    let current = {
        let core = store.lock();
        if let Some(t) = typ {
            svc.auth.get(t).map_err(|e| e.to_string())?;
            let has_users = core
                .tree
                .get(&users_path(t))
                .is_some_and(|e| e.children().any(|(_, c)| c.data().is_some()));
            if !has_users {
                return Err(format!("You didn't configure this method yet: {t}"));
            }
        }
        core.tree.get(&auth_root()).and_then(|e| e.data().cloned())
    };
    let mut m = match current {
        Some(Value::Map(m)) => m,
        _ => Default::default(),
    };
    m.retain(|(k, _)| k.as_str() != Some("current"));
    if let Some(t) = typ {
        m.push((Value::from("current"), Value::from(t)));
    }
    let change = store
        .local_change(&auth_root(), Some(Value::Map(m)), &Precondition::default())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(method = typ.unwrap_or("none"), "auth method switched");
    let mut reply = MapBuilder::new();
    match change {
        None => reply.push("changed", false),
        Some(c) => {
            reply.push("changed", c.changed());
            push_entry(&mut reply, None, Some(&c.event.chain), c.event.tock, 1);
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aux_data_is_checked() {
        assert_eq!(aux_fields(None), Ok(Value::Nil));
        let ok = MapBuilder::new().set("acl", "ro").build();
        assert_eq!(aux_fields(Some(&ok)), Ok(ok.clone()));
        assert!(aux_fields(Some(&MapBuilder::new().set("x", "y").build())).is_err());
        assert!(aux_fields(Some(&MapBuilder::new().set("acl", 5).build())).is_err());
        assert!(aux_fields(Some(&Value::Int(1))).is_err());
    }
}
