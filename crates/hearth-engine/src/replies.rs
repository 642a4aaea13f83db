//! Recent replies and the token ids that produced them. A chat resends the
//! model's reply as text; re-tokenizing it may give other ids than the ones
//! generated (and held in the KV cache), which would stop prefix reuse at
//! the reply. Splicing the remembered ids back keeps the whole history reusable.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Reply text -> ids, and the texts oldest first (for eviction).
type Entries = (HashMap<String, Vec<i32>>, VecDeque<String>);

pub struct ReplyMemory {
    inner: Mutex<Entries>,
    capacity: usize,
}

impl ReplyMemory {
    pub fn new(capacity: usize) -> Self {
        ReplyMemory {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    /// Remembers that `text` is exactly what `ids` decode to.
    pub fn remember(&self, text: String, ids: Vec<i32>) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.insert(text.clone(), ids).is_none() {
            order.push_back(text);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    pub fn get(&self, text: &str) -> Option<Vec<i32>> {
        self.inner.lock().ok()?.0.get(text).cloned()
    }
}
