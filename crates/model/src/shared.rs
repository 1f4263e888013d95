//! [`Shared`]: values that many holders have alike, each kept once.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Values that many holders have alike, each kept once behind an `Arc` and handed out as clones: a holder pays a
/// pointer, not a copy. The store's sets share their series lists (every container set of a cluster has the same),
/// and pods share their labels, containers and strings (a Deployment's replicas differ in name and UID only).
///
/// Values no holder keeps any more stay until [`Shared::sweep`] (or [`Shared::sweep_if_grown`]) drops them.
pub struct Shared<T: ?Sized> {
    values: HashSet<Arc<T>, foldhash::fast::RandomState>,
    /// How many values the last sweep kept.
    kept: usize,
}

impl<T: ?Sized> Default for Shared<T> {
    fn default() -> Self {
        Shared { values: HashSet::default(), kept: 0 }
    }
}

impl<T: ?Sized + Hash + Eq> Shared<T> {
    /// The shared value equal to `v`, made from it if there is none.
    pub fn get(&mut self, v: &T) -> Arc<T>
    where
        for<'a> &'a T: Into<Arc<T>>,
    {
        if let Some(shared) = self.values.get(v) {
            return shared.clone();
        }
        self.insert(v.into())
    }

    /// The shared value equal to `v`, or `v` itself, kept from now on, when there is none.
    pub fn share(&mut self, v: Arc<T>) -> Arc<T> {
        match self.values.get(&v) {
            Some(shared) => shared.clone(),
            None => self.insert(v),
        }
    }

    fn insert(&mut self, v: Arc<T>) -> Arc<T> {
        self.values.insert(v.clone());
        v
    }

    /// Drops the values only this table holds.
    pub fn sweep(&mut self) {
        self.values.retain(|v| Arc::strong_count(v) > 1);
        self.kept = self.values.len();
    }

    /// [`Shared::sweep`] once the table holds twice what the last sweep kept (plus 64): values that come and go
    /// one at a time (pods from a watch) leave the table at most about twice what is held when values were last
    /// added, at a sweep's cost per value added.
    pub fn sweep_if_grown(&mut self) {
        if self.values.len() >= 2 * self.kept + 64 {
            self.sweep();
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes of the table and of each value's `Arc` (its two counts and the value), not counting what the
    /// values themselves own on the heap.
    pub fn bytes(&self) -> usize {
        self.values.capacity() * (std::mem::size_of::<Arc<T>>() + 1)
            + self.values.iter().map(|v| 16 + std::mem::size_of_val::<T>(v)).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_one_value_until_no_holder_keeps_them() {
        let mut shared = Shared::<str>::default();
        let a = shared.get("app=web");
        let b = shared.share(Arc::from("app=web"));
        assert!(Arc::ptr_eq(&a, &b));
        let other = shared.get("app=db");
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(shared.len(), 2);
        drop(other);
        shared.sweep();
        assert_eq!(shared.len(), 1, "app=db is held by no one");
        drop((a, b));
        shared.sweep();
        assert!(shared.is_empty());
    }

    #[test]
    fn a_table_of_values_coming_and_going_stays_near_what_is_held() {
        let mut shared = Shared::<str>::default();
        let mut held = Vec::new();
        for i in 0..10_000 {
            held.push(shared.get(&format!("pod-{i}")));
            if held.len() > 100 {
                held.remove(0);
            }
            shared.sweep_if_grown();
            assert!(shared.len() <= 2 * 100 + 64, "{} values for 100 held", shared.len());
        }
    }
}
