//! Strings many scalers hold at once, one shared copy each.
//! - Error messages: a saturated server refuses most reads with the same text
//!   (`ResourceExhausted: namespace rate limit exceeded`), and each failing trigger's view
//!   holds its message until the next read: 100,000 copies of it were about 10 MB. Bounded: a
//!   message no one holds any more is forgotten when the set is full.
//! - Spec strings ([`Pool`]): the namespace, a trigger's name, its Temporal namespace and task
//!   queue are the same in many specs (`default`, `trigger0`, five scalers on a queue), and
//!   each parsed spec had its own copies: about 12 MB at 100,000 scalers.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Distinct messages kept for sharing; past it, those no longer held elsewhere are dropped
/// (and if every one is held, the set starts over: sharing is an economy, not a contract).
const KEPT: usize = 1024;

static MESSAGES: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);

/// `text`, shared with every other holder of the same text.
pub fn message(text: &str) -> Arc<str> {
    let mut set = MESSAGES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(kept) = set.get(text) {
        return kept.clone();
    }
    if set.len() >= KEPT {
        set.retain(|m| Arc::strong_count(m) > 1);
        if set.len() >= KEPT {
            set.clear();
        }
        set.shrink_to(KEPT);
    }
    let shared: Arc<str> = text.into();
    set.insert(shared.clone());
    shared
}

/// The shared copies of the strings of one source's specs (the config directory, the custom
/// resources). Unbounded, as what it shares is held by specs anyway; a string no spec holds
/// any more is forgotten when the pool has doubled since it last looked.
#[derive(Debug, Default)]
pub struct Pool {
    strings: HashSet<Arc<str>>,
    /// How many were held at the last look.
    kept: usize,
}

impl Pool {
    /// `s`, made the shared copy of its text.
    pub fn share(&mut self, s: &mut Arc<str>) {
        if let Some(kept) = self.strings.get(&**s) {
            *s = kept.clone();
            return;
        }
        if self.strings.len() >= (2 * self.kept).max(1024) {
            self.strings.retain(|k| Arc::strong_count(k) > 1);
            self.strings.shrink_to_fit();
            self.kept = self.strings.len();
        }
        self.strings.insert(s.clone());
    }

    /// A spec's strings that other specs are likely to hold too (not its name: that is its
    /// own).
    pub fn share_config(&mut self, cfg: &mut crate::spec::ScalerConfig) {
        self.share(&mut cfg.namespace);
        for t in &mut cfg.triggers {
            self.share(&mut t.name);
            self.share(&mut t.namespace);
            self.share(&mut t.task_queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_messages_are_one_allocation() {
        let a = message("intern test: rate limit exceeded");
        let b = message(&String::from("intern test: rate limit exceeded"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(&*message("intern test: another"), &*a);
    }

    #[test]
    fn a_pool_shares_equal_spec_strings_and_forgets_what_no_one_holds() {
        let mut pool = Pool::default();
        let mut a: Arc<str> = "orders".into();
        let mut b: Arc<str> = String::from("orders").into();
        pool.share(&mut a);
        pool.share(&mut b);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        // Past its bound, the pool keeps only what is held elsewhere.
        let held: Vec<Arc<str>> = (0..2048)
            .map(|i| {
                let mut s: Arc<str> = format!("queue-{i}").into();
                pool.share(&mut s);
                s
            })
            .collect();
        assert!(pool.strings.len() <= 2048, "{}", pool.strings.len());
        assert!(!pool.strings.contains("orders"));
        let mut again: Arc<str> = "queue-7".into();
        pool.share(&mut again);
        assert!(Arc::ptr_eq(&again, &held[7]));
    }

    #[test]
    fn the_set_stays_bounded() {
        let held: Vec<Arc<str>> = (0..KEPT + 10)
            .map(|i| message(&format!("intern bound test {i}")))
            .collect();
        let len = MESSAGES.lock().unwrap().len();
        assert!(len <= KEPT, "{len} messages kept");
        // What is still held elsewhere stays readable, whatever the set forgot.
        assert_eq!(&*held[0], "intern bound test 0");
    }
}
