//! A map of a few entries in a vector, for what a scaler keeps per trigger (a failure streak,
//! an outage): most scalers have none, a failing one has one or two. A B-tree map allocates a
//! whole node for its first entry (about 350 bytes for a `String` key), this one 32 bytes and
//! nothing while empty; lookups are a scan of a handful of entries.

#[derive(Clone, Debug, PartialEq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: PartialEq, V> VecMap<K, V> {
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.entries
            .iter()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, inserted with `make` if it is not there.
    pub fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> (K, V)) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let i = match self.entries.iter().position(|(k, _)| k.borrow() == key) {
            Some(i) => i,
            None => {
                // One entry at a time: a failing scaler rarely has a second.
                self.entries.reserve_exact(1);
                self.entries.push(make());
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let i = self.entries.iter().position(|(k, _)| k.borrow() == key)?;
        let (_, v) = self.entries.swap_remove(i);
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        Some(v)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_and_frees_its_vector_when_empty() {
        let mut m: VecMap<String, u32> = VecMap::default();
        assert!(m.is_empty() && m.get("a").is_none());
        *m.get_or_insert_with("a", || ("a".into(), 0)) += 1;
        *m.get_or_insert_with("a", || ("a".into(), 0)) += 1;
        *m.get_or_insert_with("b", || ("b".into(), 10)) += 1;
        assert_eq!(
            (m.get("a"), m.get("b"), m.get("c")),
            (Some(&2), Some(&11), None)
        );
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.remove("a"), Some(2));
        assert_eq!(m.remove("a"), None);
        m.retain(|k, _| k != "b");
        assert!(m.is_empty());
        assert_eq!(m.entries.capacity(), 0, "an empty map holds no allocation");
    }
}
