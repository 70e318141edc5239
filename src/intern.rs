//! Error messages many scalers hold at once, one shared copy each. A saturated server refuses
//! most reads with the same text (`ResourceExhausted: namespace rate limit exceeded`), and each
//! failing trigger's view holds its message until the next read: 100,000 copies of it were
//! about 10 MB. Bounded: a message no one holds any more is forgotten when the set is full.

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
