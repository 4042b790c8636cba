//! The memory all image decodes of the process may take together: each decode takes what
//! its image needs (in MiB) before it allocates, and gives it back when it is done, so two
//! large images wait for each other instead of being decoded side by side.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The unit the budget counts in.
pub const UNIT: u64 = 1 << 20;

#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    total: u64,
    free: Mutex<u64>,
    returned: Condvar,
}

/// Memory taken from the budget, given back when dropped.
pub struct Taken {
    inner: Arc<Inner>,
    units: u64,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: u64) -> Self {
        let total = (bytes / UNIT).max(1);
        Self {
            inner: Arc::new(Inner {
                total,
                free: Mutex::new(total),
                returned: Condvar::new(),
            }),
        }
    }

    /// Waits until `bytes` are free and takes them; more than the whole budget takes all of
    /// it. Blocking: only on the blocking pool.
    pub fn take(&self, bytes: u64) -> Taken {
        let units = bytes.div_ceil(UNIT).clamp(1, self.inner.total);
        let mut free = self
            .inner
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *free < units {
            free = self
                .inner
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= units;
        Taken {
            inner: Arc::clone(&self.inner),
            units,
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let mut free = self
            .inner
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *free += self.units;
        self.inner.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn takers_wait_for_what_others_give_back() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.take(6 * UNIT);
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                let _second = budget.take(6 * UNIT);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "6 + 6 units are more than 10");
        drop(first);
        waiter.join().unwrap();
        // More than all of it takes all of it, and does not wait for ever.
        let all = budget.take(100 * UNIT);
        drop(all);
        let _small = budget.take(1);
    }
}
