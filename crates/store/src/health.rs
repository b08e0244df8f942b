//! Whether the store's writes work, as its readiness check needs to know.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a write transaction failed since writes were last seen to work, kept with atomics so
/// that it costs nothing on the write path: backends call [`WriteHealth::not_committed`] when a
/// write transaction fails to begin or to commit, or ends without its commit (a statement
/// failed, or the change was refused half-way); a commit costs nothing.
///
/// Then [`crate::Store::ready`] tries a probe write ([`WriteHealth::probe_needed`]), and only a
/// probe that commits clears the doubt ([`WriteHealth::probe_committed`]): an ordinary commit
/// may have had nothing to write (SQLite commits an empty transaction on a full disk). So the
/// node is not ready while writes fail, and an idle node becomes ready again as soon as the
/// database takes writes.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// How many write transactions did not commit.
    failures: AtomicU64,
    /// `failures` as it was when the last probe that committed began.
    confirmed: AtomicU64,
}

impl WriteHealth {
    /// A write transaction failed, or ended without committing.
    pub fn not_committed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a write transaction did not commit since the last probe that did: the state of
    /// writes is in doubt. Returns the mark to pass to [`WriteHealth::probe_committed`].
    pub fn probe_needed(&self) -> Option<u64> {
        let failures = self.failures.load(Ordering::Relaxed);
        (failures != self.confirmed.load(Ordering::Relaxed)).then_some(failures)
    }

    /// A probe write begun after [`WriteHealth::probe_needed`] returned `mark` committed: writes
    /// work, as far as the failures counted until then tell.
    pub fn probe_committed(&self, mark: u64) {
        self.confirmed.fetch_max(mark, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_probe_clears_a_failure() {
        let h = WriteHealth::default();
        assert_eq!(h.probe_needed(), None);
        h.not_committed();
        let mark = h.probe_needed().unwrap();
        h.probe_committed(mark);
        assert_eq!(h.probe_needed(), None);
    }

    #[test]
    fn a_failure_during_the_probe_keeps_the_doubt() {
        let h = WriteHealth::default();
        h.not_committed();
        let mark = h.probe_needed().unwrap();
        h.not_committed();
        h.probe_committed(mark);
        assert!(h.probe_needed().is_some());
    }
}

/// What a database held before this node opened it, so that a node starts as a new hospital (a
/// new key, no accounts) only when told to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseState {
    /// No table at all: a new database (or an emptied file).
    Empty,
    /// Caremesh's migrations table is there: a node's database, perhaps of an older version.
    Caremesh,
    /// Tables, but not Caremesh's: another program's database.
    Foreign,
}

impl DatabaseState {
    /// From how many tables the database has, and how many of them are Caremesh's migrations
    /// table (0 or 1).
    pub fn from_counts(tables: i64, migrations_tables: i64) -> Self {
        match (tables, migrations_tables) {
            (0, _) => Self::Empty,
            (_, 0) => Self::Foreign,
            _ => Self::Caremesh,
        }
    }
}
