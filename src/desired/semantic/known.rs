//! The names a reference may point at, looked up once per reference.

use std::collections::HashSet;

use foldhash::fast::RandomState;

/// Sorted, for an error's list of names and its closest match, and hashed, for the
/// lookups. A binary search per reference compared a dozen names scattered over the
/// heap: at 100,000 instances over 2,000 nodes it cost twice as much per lookup as at
/// 10,000 over 200, and one hash and one comparison do not grow with the state.
/// (Seeded per process, so names chosen to collide cannot make a push slow to check.)
pub(super) struct Known<'a> {
    sorted: Vec<&'a str>,
    hashed: HashSet<&'a str, RandomState>,
}

impl<'a> Known<'a> {
    /// `names` in order, as a `BTreeMap`'s keys are.
    pub(super) fn sorted(names: impl Iterator<Item = &'a str>) -> Self {
        let sorted: Vec<&str> = names.collect();
        debug_assert!(sorted.is_sorted(), "names come from a sorted map");
        let hashed = sorted.iter().copied().collect();
        Known { sorted, hashed }
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.hashed.contains(name)
    }

    /// All of them, sorted.
    pub(super) fn all(&self) -> &[&'a str] {
        &self.sorted
    }
}
