//! Whether a server is serving and in sync.

use crate::state::Shared;

/// A server's health: `ok` when it serves and misses no change it knows
/// of; `problems` say why not; `warnings` do not make it unhealthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Serving and in sync.
    pub ok: bool,
    /// Why not (empty when `ok`).
    pub problems: Vec<String>,
    /// Risks that do not stop it from serving.
    pub warnings: Vec<String>,
}

impl Health {
    /// The text of a health answer: `ok` or `unhealthy`, then one line per
    /// problem and warning.
    pub fn text(&self) -> String {
        let mut t = String::from(if self.ok { "ok\n" } else { "unhealthy\n" });
        for p in &self.problems {
            t.push_str(&format!("problem: {p}\n"));
        }
        for w in &self.warnings {
            t.push_str(&format!("warning: {w}\n"));
        }
        t
    }
}

/// The health of the server.
pub fn health(shared: &Shared) -> Health {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    {
        let core = shared.store.lock();
        if core.tree.own_tick().is_none() {
            problems
                .push("not serving yet: no data (copying from a peer, or waiting for one)".into());
        }
        let missing: Vec<String> = core
            .tree
            .nodes()
            .filter_map(|(name, n)| {
                let m = n.missing();
                (!m.is_empty()).then(|| format!("{name}: {m}"))
            })
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "changes known to exist and not yet seen: {}",
                missing.join(", ")
            ));
        }
        if shared.network.is_networked()
            && shared.network.gossip_keys.is_none()
            && crate::service::login::current_method(&core.tree).is_some()
        {
            warnings.push(
                "logins are required but replication is not authenticated: set server.gossip_key"
                    .into(),
            );
        }
    }
    Health {
        ok: problems.is_empty(),
        problems,
        warnings,
    }
}
