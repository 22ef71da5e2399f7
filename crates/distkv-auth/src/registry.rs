//! Methods by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::builtin::{PasswordMethod, RootMethod, TestMethod};
use crate::{AuthError, AuthMethod};

/// The auth methods a server accepts or a client can log in with.
#[derive(Clone)]
pub struct Registry {
    methods: BTreeMap<String, Arc<dyn AuthMethod>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.methods.keys()).finish()
    }
}

impl Default for Registry {
    /// The built-in methods.
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// No methods at all.
    pub fn empty() -> Registry {
        Registry {
            methods: BTreeMap::new(),
        }
    }

    /// `root`, `_test` and `password`.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty();
        r.register(Arc::new(RootMethod));
        r.register(Arc::new(TestMethod));
        r.register(Arc::new(PasswordMethod::default()));
        r
    }

    /// Adds (or replaces) a method under its name.
    pub fn register(&mut self, method: Arc<dyn AuthMethod>) -> &mut Registry {
        self.methods.insert(method.name().to_owned(), method);
        self
    }

    /// The method called `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn AuthMethod>, AuthError> {
        self.methods
            .get(name)
            .ok_or_else(|| AuthError::UnknownMethod(name.to_owned()))
    }

    /// The names of all methods.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }
}
