//! ACL enforcement for users bound to an ACL (auth-acl.md §4).
//!
//! Every check runs under the tree lock, against the ACL entries as they
//! are at that moment: changes to an ACL apply at once.
//!
//! Creating entries: a missing path element may be created when the
//! parent's position grants `n`, or when the new element's own position
//! grants `c`. So `c` on `wom #` lets a user create `wom foo bar` and the
//! entries on the way to it (the tutorial's write-only store), while `n`
//! alone lets a user create children without writing them.

use distkv_acl::{Denied, DeniedAt, Finder};
use distkv_tree::{Entry, Path, PathElem, Tree};

use crate::service::login::User;

/// How the ACL of a user applies to one request.
pub enum Access<'a> {
    /// No ACL: everything is allowed.
    Free,
    /// The ACL's finder at the root of the data tree.
    Acl(Finder<'a>),
    /// Bound to an ACL that does not exist: nothing is allowed.
    Missing(String),
}

fn acl_path(name: &str) -> Path {
    Path(vec![
        PathElem::Nil,
        PathElem::Str("acl".into()),
        PathElem::Str(name.into()),
    ])
}

/// The ACL `name` of `tree`, as a finder at the data root.
pub fn finder<'a>(tree: &'a Tree, name: &str) -> Option<Finder<'a>> {
    let path = acl_path(name);
    tree.get(&path).map(|root| Finder::new(root, path))
}

/// How `user`'s ACL applies.
pub fn access<'a>(tree: &'a Tree, user: &User) -> Access<'a> {
    match &user.acl {
        None => Access::Free,
        Some(name) => match finder(tree, name) {
            Some(f) => Access::Acl(f),
            None => {
                tracing::warn!(user = %user.ident, acl = %name, "the user's ACL does not exist: no access");
                Access::Missing(name.clone())
            }
        },
    }
}

/// The text of a denial, with the governing entry's chain as the original
/// shows it.
pub fn describe(tree: &Tree, d: &Denied) -> String {
    d.describe(&|n| tree.node(n).and_then(|s| s.tick))
}

/// Why a user bound to a missing ACL gets nothing.
fn missing_text(name: &str) -> String {
    distkv_proto::ErrorClass::NoAuth.message(format!("the ACL {name} does not exist"))
}

/// Follows `path` from the data root, checking `x` through existing
/// entries and, with `create`, the right to create missing ones. Returns
/// the finder at `path` and the entry there, if it exists.
pub fn follow<'a>(
    tree: &'a Tree,
    mut acl: Finder<'a>,
    path: &Path,
    create: bool,
) -> Result<(Finder<'a>, Option<&'a Entry>), Denied> {
    let mut node = tree.get(&Path::root());
    for elem in path.elems() {
        let child = node.and_then(|n| n.child(elem));
        if child.is_some() {
            acl.check('x')?;
        }
        let next = acl
            .step(elem)
            .ok_or_else(|| acl.denied(DeniedAt::Elem(elem.clone())))?;
        if child.is_none() && create && !acl.allows('n') && !next.allows('c') {
            return Err(acl.denied(DeniedAt::Letter('n')));
        }
        acl = next;
        node = child;
    }
    Ok((acl, node))
}

/// Checks flag `letter` at `path` for `user` (`W`: `w` where the entry has
/// data, else `c`; `D`, a delete: `w` where the entry has data, else
/// nothing beyond the way there), creating missing elements if `create`.
/// `Err` is the text for the client.
pub fn check(
    tree: &Tree,
    user: &User,
    path: &Path,
    letter: char,
    create: bool,
) -> Result<(), String> {
    let f = match access(tree, user) {
        Access::Free => return Ok(()),
        Access::Missing(name) => return Err(missing_text(&name)),
        Access::Acl(f) => f,
    };
    let (f, node) = follow(tree, f, path, create).map_err(|d| describe(tree, &d))?;
    let has_data = node.is_some_and(|n| n.data().is_some());
    let letter = match letter {
        'W' | 'D' if has_data => 'w',
        'W' => 'c',
        'D' => return Ok(()),
        l => l,
    };
    f.check(letter).map_err(|d| describe(tree, &d))
}

/// What a walk may show of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The entry with its value.
    Show,
    /// The entry without its value.
    Hide,
    /// Nothing.
    Skip,
}

/// What `user` may see of the entry at `item` in a walk from `start`:
/// below an entry without `e` nothing; below one without `x` no values;
/// where no pattern matches, nothing.
pub fn view(tree: &Tree, user: &User, start: &Path, item: &Path) -> View {
    if !user.may_access(item) {
        return View::Skip;
    }
    let f = match access(tree, user) {
        Access::Free => return View::Show,
        Access::Missing(_) => return View::Skip,
        Access::Acl(f) => f,
    };
    let Ok((mut f, _)) = follow(tree, f, start, false) else {
        return View::Skip;
    };
    for elem in item.elems().iter().skip(start.len()) {
        if !f.allows('e') {
            return View::Skip;
        }
        if !f.allows('x') {
            f.block(distkv_acl::AclFlags::parse("r").unwrap_or_default());
        }
        match f.step(elem) {
            Some(next) => f = next,
            None => return View::Skip,
        }
    }
    if f.allows('r') {
        View::Show
    } else {
        View::Hide
    }
}

/// `test_acl` (§4.5): `false` when denied, else the governing letters if
/// the caller may see them (`a`), else `true`.
pub fn test(
    tree: &Tree,
    user: &User,
    path: &Path,
    mode: char,
    other: Option<&str>,
) -> Result<distkv_tree::Value, String> {
    use distkv_tree::Value;
    // the caller's own right to see details
    let (caller, may_see) = match access(tree, user) {
        Access::Free => (None, true),
        Access::Missing(_) => return Ok(Value::Bool(false)),
        Access::Acl(f) => match follow(tree, f, path, false) {
            Ok((f, _)) => {
                let a = f.allows('a');
                (Some(f), a)
            }
            Err(_) => return Ok(Value::Bool(false)),
        },
    };
    let target = match other {
        None => match caller {
            None => return Ok(Value::Bool(true)),
            Some(f) => f,
        },
        Some(name) => {
            if let Some(f) = &caller {
                if !f.allows(mode) {
                    return Ok(Value::Bool(false));
                }
            }
            let Some(f) = finder(tree, name) else {
                return Err(format!("No ACL named {name}"));
            };
            match follow(tree, f, path, false) {
                Ok((f, _)) => f,
                Err(_) => return Ok(Value::Bool(false)),
            }
        }
    };
    if other.is_some() && !target.allows(mode) {
        return Ok(Value::Bool(false));
    }
    if !may_see {
        return Ok(Value::Bool(true));
    }
    Ok(match target.flags() {
        Some(f) => Value::from(f.to_string().as_str()),
        None => Value::Bool(true),
    })
}

/// `delete_tree`: `d` on the start entry and on every entry with data
/// below it; `Err` names the first denial.
pub fn check_delete_tree(tree: &Tree, user: &User, path: &Path) -> Result<(), String> {
    let f = match access(tree, user) {
        Access::Free => return Ok(()),
        Access::Missing(name) => return Err(missing_text(&name)),
        Access::Acl(f) => f,
    };
    let (f, node) = follow(tree, f, path, false).map_err(|d| describe(tree, &d))?;
    f.check('d').map_err(|d| describe(tree, &d))?;
    let Some(node) = node else { return Ok(()) };
    fn below(tree: &Tree, f: &Finder<'_>, node: &Entry) -> Result<(), String> {
        for (name, child) in node.children() {
            let Some(cf) = f.step(name) else {
                return Err(describe(tree, &f.denied(DeniedAt::Elem(name.clone()))));
            };
            if child.data().is_some() {
                cf.check('d').map_err(|d| describe(tree, &d))?;
            }
            below(tree, &cf, child)?;
        }
        Ok(())
    }
    below(tree, &f, node)
}
