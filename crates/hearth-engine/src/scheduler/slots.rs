//! The one owner of KV sequence ids. Every id of the runner is either idle
//! (in `free`, least recently used first, maybe keeping the tokens of its
//! last request for prefix reuse) or busy (held by one running candidate).
//! Ids move only through [`Slots::take_lru`], [`Slots::take_best_prefix`]
//! and [`Slots::give_back`], and every move checks the invariants
//! ([`Slots::check`]).

use std::collections::{BTreeSet, HashMap};

use crate::runner::Runner;

/// A prefix match this much longer outweighs taking a sequence next to the
/// running ones ([`Runner::prefers_consecutive_sequences`]): prefilling 32
/// tokens costs about what one more micro-batch per step costs over a
/// short reply.
pub(super) const PREFIX_OVER_NEIGHBOURS: usize = 32;

pub(super) struct Slots {
    /// Idle sequences, least recently used first. Their KV is kept: a new
    /// request that shares a token prefix with one of them reuses it.
    free: Vec<u32>,
    /// Sequences held by running candidates.
    busy: BTreeSet<u32>,
    /// Tokens held in the KV cache of each idle sequence (idle ones only).
    kept: HashMap<u32, Vec<i32>>,
    /// Whose tokens each sequence holds ([`crate::GenerateRequest::cache_scope`]):
    /// a prefix is reused only within one scope.
    scopes: HashMap<u32, u64>,
    /// Sequences that decode together should have consecutive ids
    /// ([`Runner::prefers_consecutive_sequences`]).
    consecutive: bool,
    /// Ids 0..count exist.
    count: u32,
}

impl Slots {
    pub(super) fn new(count: u32, consecutive: bool) -> Self {
        Slots {
            free: (0..count).collect(),
            busy: BTreeSet::new(),
            kept: HashMap::new(),
            scopes: HashMap::new(),
            consecutive,
            count,
        }
    }

    /// Every id is idle xor busy; only idle ids keep tokens; scopes name
    /// existing ids. Panics (on the engine thread, which restarts) when one
    /// does not hold: a broken invariant would give one request another's
    /// KV cells.
    pub(super) fn check(&self) {
        let idle: BTreeSet<u32> = self.free.iter().copied().collect();
        assert_eq!(
            idle.len(),
            self.free.len(),
            "an idle id twice: {:?}",
            self.free
        );
        assert!(
            idle.is_disjoint(&self.busy),
            "ids both idle and busy: {:?}",
            idle.intersection(&self.busy).collect::<Vec<_>>()
        );
        assert_eq!(
            idle.len() + self.busy.len(),
            self.count as usize,
            "ids lost or invented: idle {idle:?}, busy {:?}",
            self.busy
        );
        assert!(
            idle.iter().chain(&self.busy).all(|&s| s < self.count),
            "an id out of range"
        );
        assert!(
            self.kept.keys().all(|s| idle.contains(s)),
            "a busy id keeps tokens"
        );
        assert!(
            self.scopes.keys().all(|&s| s < self.count),
            "a scope for no id"
        );
    }

    pub(super) fn idle(&self) -> usize {
        self.free.len()
    }

    /// The busy ids, in order.
    pub(super) fn busy(&self) -> impl Iterator<Item = u32> + '_ {
        self.busy.iter().copied()
    }

    /// KV cells idle sequences keep.
    pub(super) fn kept_cells(&self) -> usize {
        self.kept.values().map(Vec::len).sum()
    }

    pub(super) fn scope(&self, seq: u32) -> u64 {
        self.scopes.get(&seq).copied().unwrap_or(0)
    }

    /// Records whose tokens busy sequence `seq` will hold.
    pub(super) fn set_scope(&mut self, seq: u32, scope: u64) {
        debug_assert!(self.busy.contains(&seq), "scope set on idle {seq}");
        self.scopes.insert(seq, scope);
    }

    /// The tokens idle sequence `seq` holds, if a request of `scope` may
    /// reuse them (none otherwise).
    fn reusable(&self, seq: u32, scope: u64) -> &[i32] {
        if self.scope(seq) != scope {
            return &[];
        }
        self.kept.get(&seq).map_or(&[][..], Vec::as_slice)
    }

    /// The longest prefix of `prompt` an idle sequence of `scope` holds.
    pub(super) fn best_idle_prefix(&self, prompt: &[i32], scope: u64) -> usize {
        self.free
            .iter()
            .map(|&seq| common(self.reusable(seq, scope), prompt))
            .max()
            .unwrap_or(0)
    }

    /// How many of `seq`'s two neighbouring ids are busy, where that
    /// matters ([`Runner::prefers_consecutive_sequences`]); else 0.
    fn neighbours(&self, seq: u32) -> usize {
        if !self.consecutive {
            return 0;
        }
        let busy = |q: Option<u32>| q.is_some_and(|q| self.busy.contains(&q));
        usize::from(busy(seq.checked_sub(1))) + usize::from(busy(seq.checked_add(1)))
    }

    /// Idle `free[i]`, now busy; its kept tokens are dropped when `keep` is
    /// 0, else the KV beyond `keep` tokens (when the cache cannot drop a
    /// suffix, all of it: the returned count is what it still holds).
    fn take_at(&mut self, i: usize, keep: usize, runner: &mut dyn Runner) -> (u32, usize) {
        let seq = self.free.remove(i);
        let kept = self.kept.remove(&seq).unwrap_or_default();
        let held = if keep == 0 {
            if !kept.is_empty() {
                runner.seq_remove(seq, 0, None);
            }
            0
        } else if keep == kept.len() || runner.seq_remove(seq, keep as u32, None) {
            keep
        } else {
            // This cache cannot drop a suffix (e.g. sliding-window layers): start over.
            runner.seq_remove(seq, 0, None);
            0
        };
        self.busy.insert(seq);
        self.check();
        (seq, held)
    }

    /// The least recently used idle sequence, emptied and busy; where
    /// sequences decode cheapest next to each other, the least recently
    /// used of those with the most busy neighbours.
    pub(super) fn take_lru(&mut self, runner: &mut dyn Runner) -> Option<u32> {
        let i = self
            .free
            .iter()
            .enumerate()
            .max_by_key(|&(i, &seq)| (self.neighbours(seq), std::cmp::Reverse(i)))?
            .0;
        Some(self.take_at(i, 0, runner).0)
    }

    /// Takes the idle sequence sharing the longest token prefix with
    /// `prompt` (at least one prompt token is always recomputed, for its
    /// logits), truncated to that prefix; else the least recently used one,
    /// emptied. Returns the sequence and the reused token count.
    pub(super) fn take_best_prefix(
        &mut self,
        prompt: &[i32],
        scope: u64,
        runner: &mut dyn Runner,
    ) -> Option<(u32, usize)> {
        let limit = prompt.len().saturating_sub(1);
        // Where sequences decode cheapest next to each other, a short match
        // (a chat template's header) does not outweigh a neighbour.
        let bucket = if self.consecutive {
            PREFIX_OVER_NEIGHBOURS
        } else {
            usize::MAX
        };
        let best = self
            .free
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let common = common(self.reusable(seq, scope), prompt).min(limit);
                (
                    i,
                    common,
                    (common / bucket, self.neighbours(seq), common, i),
                )
            })
            .max_by_key(|&(_, _, key)| key);
        match best {
            Some((i, common, _)) if common > 0 => Some(self.take_at(i, common, runner)),
            _ => Some((self.take_lru(runner)?, 0)),
        }
    }

    /// Busy `seq` goes idle, keeping `tokens` (what its KV holds) for reuse.
    pub(super) fn give_back(&mut self, seq: u32, tokens: Vec<i32>, runner: &mut dyn Runner) {
        if !self.busy.remove(&seq) {
            // A double release would hand one id to two requests.
            panic!("sequence {seq} given back but not busy");
        }
        runner.seq_remove(seq, tokens.len() as u32, None);
        self.kept.insert(seq, tokens);
        self.free.push(seq);
        self.check();
    }

    /// Every idle sequence forgets what it kept (a failed decode may have
    /// written anywhere in the cells they share).
    pub(super) fn forget_kept(&mut self, runner: &mut dyn Runner) {
        for (seq, _) in self.kept.drain() {
            runner.seq_remove(seq, 0, None);
        }
    }
}

/// The length of the common prefix of `a` and `b`.
fn common(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::test_runner::ByteRunner;

    #[test]
    fn ids_move_between_idle_and_busy_and_nowhere_else() {
        let mut r = ByteRunner::new(1024, 4);
        let mut s = Slots::new(4, false);
        let a = s.take_lru(&mut r).expect("a");
        let b = s.take_lru(&mut r).expect("b");
        assert_ne!(a, b);
        assert_eq!(s.idle(), 2);
        s.give_back(a, vec![1, 2, 3, 4], &mut r);
        // The prompt sharing 3 tokens with what `a` kept gets `a`, holding
        // them; a prompt equal to it recomputes its last token.
        assert_eq!(s.take_best_prefix(&[1, 2, 3, 9], 0, &mut r), Some((a, 3)));
        s.give_back(a, vec![1, 2, 3, 4], &mut r);
        assert_eq!(s.take_best_prefix(&[1, 2, 3, 4], 0, &mut r), Some((a, 3)));
        // Another scope reuses nothing.
        s.give_back(a, vec![1, 2, 3, 4], &mut r);
        assert_eq!(s.best_idle_prefix(&[1, 2, 3], 7), 0);
        assert_eq!(s.best_idle_prefix(&[1, 2, 3], 0), 3);
        let taken: Vec<u32> = (0..3).filter_map(|_| s.take_lru(&mut r)).collect();
        assert_eq!(taken.len(), 3);
        assert_eq!(s.take_lru(&mut r), None, "no id is invented");
        assert_eq!(s.busy().count(), 4);
    }

    #[test]
    #[should_panic(expected = "not busy")]
    fn giving_back_an_idle_id_is_caught() {
        let mut r = ByteRunner::new(1024, 2);
        let mut s = Slots::new(2, false);
        let a = s.take_lru(&mut r).expect("a");
        s.give_back(a, Vec::new(), &mut r);
        s.give_back(a, Vec::new(), &mut r);
    }

    #[test]
    fn with_consecutive_ids_a_busy_neighbour_wins_over_recency() {
        let mut r = ByteRunner::new(1024, 4);
        let mut s = Slots::new(4, true);
        let ids: Vec<u32> = (0..3).filter_map(|_| s.take_lru(&mut r)).collect();
        assert_eq!(ids, [0, 1, 2]);
        s.give_back(1, Vec::new(), &mut r);
        // 3 is idle longer, but 1 sits between busy 0 and 2.
        assert_eq!(s.take_lru(&mut r), Some(1));
    }
}
