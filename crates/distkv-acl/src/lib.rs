//! distkv access control lists.
//!
//! It sits on the data model (`distkv-tree`), beside `distkv-auth` and
//! `distkv-code`; pure, no I/O.
//! An ACL is a subtree of path patterns (`+` matches one element, `#` one
//! or more) stored at `None acl NAME`, whose values are flag strings.
//! [`AclFlags`] holds a set of flags, [`Finder`] finds the pattern that
//! governs a path position, stepped one path element at a time.

use std::fmt;

mod denied;
mod finder;

pub use denied::{Denied, DeniedAt};
pub use finder::{Finder, matching_record};

/// Why an ACL flag string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A letter outside `rwdcxena`.
    #[error("You're trying to set an unknown ACL flag: {0}")]
    UnknownFlag(char),
}

/// The letters an ACL entry may hold, in their canonical order.
pub const FLAG_LETTERS: &str = "rwdcxena";

/// A set of ACL flags (`r` read, `w` write, `d` delete tree, `c` create,
/// `x` traverse, `e` enumerate, `n` create intermediate, `a` acl).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AclFlags(u8);

impl AclFlags {
    /// No rights.
    pub const NONE: AclFlags = AclFlags(0);

    /// Parses a flag string such as `"xc"`.
    pub fn parse(s: &str) -> Result<AclFlags, AclError> {
        let mut bits = 0u8;
        for c in s.chars() {
            let i = FLAG_LETTERS.find(c).ok_or(AclError::UnknownFlag(c))?;
            bits |= 1 << i;
        }
        Ok(AclFlags(bits))
    }

    /// Whether the flag letter `c` is set.
    pub fn allows(self, c: char) -> bool {
        FLAG_LETTERS.find(c).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Both sets together.
    pub fn union(self, other: AclFlags) -> AclFlags {
        AclFlags(self.0 | other.0)
    }

    /// The flags of `self` not in `other`.
    pub fn without(self, other: AclFlags) -> AclFlags {
        AclFlags(self.0 & !other.0)
    }
}

impl fmt::Display for AclFlags {
    /// The letters in canonical order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in FLAG_LETTERS.chars().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        let f = AclFlags::parse("xc").expect("valid");
        assert!(f.allows('x') && f.allows('c') && !f.allows('r'));
        assert_eq!(f.to_string(), "cx");
        assert_eq!(AclFlags::parse("xq"), Err(AclError::UnknownFlag('q')));
        assert_eq!(
            AclFlags::parse("").map(|f| f.to_string()),
            Ok(String::new())
        );
        let g = f.union(AclFlags::parse("r").expect("valid"));
        assert_eq!(g.without(f).to_string(), "r");
    }
}
