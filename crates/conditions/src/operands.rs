//! The operand table of one check kind.

use crate::OperandKind;

/// A family of operands sharing a prefix (`header.NAME`, `json.PATH`): any name with the
/// prefix and something after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// `header.`
    pub prefix: &'static str,
    /// How the family is listed to people: `header.NAME`.
    pub shown: &'static str,
    pub kind: OperandKind,
}

/// The operands conditions may name for one check kind: fixed names with their kinds, and
/// prefix families. Built as a constant by the crate that defines the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operands {
    fixed: &'static [(&'static str, OperandKind)],
    families: &'static [Family],
}

impl Operands {
    pub const fn new(
        fixed: &'static [(&'static str, OperandKind)],
        families: &'static [Family],
    ) -> Operands {
        Operands { fixed, families }
    }

    /// The kind of `operand`, or `None` when this kind has no such operand.
    pub fn kind_of(&self, operand: &str) -> Option<OperandKind> {
        if let Some((_, kind)) = self.fixed.iter().find(|(name, _)| *name == operand) {
            return Some(*kind);
        }
        self.families
            .iter()
            .find(|f| {
                operand
                    .strip_prefix(f.prefix)
                    .is_some_and(|rest| !rest.is_empty())
            })
            .map(|f| f.kind)
    }

    /// Every operand as people write them (`status`, ..., `header.NAME`), for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.fixed
            .iter()
            .map(|(name, _)| *name)
            .chain(self.families.iter().map(|f| f.shown))
            .collect()
    }
}
