//! Work on a few scoped threads: Zephyr has no bulk endpoint for scripts and
//! qTest none for logs or for creating modules, so a large project needs one
//! request per record, and latency, not bandwidth, bounds how long that takes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Maps `items` with `f` on up to `workers` scoped threads, keeping their
/// order. After the first error no new item is started (the others would most
/// likely fail the same way, each after its own retries), and the error of the
/// lowest failed item is returned. A panic in `f` is resumed in the caller.
pub(crate) fn try_map<T, R, E>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = f(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let mut results: Vec<(usize, Result<R, E>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        let mut all = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn keeps_order_and_calls_each_item_once() {
        let calls = AtomicU32::new(0);
        let items: Vec<u32> = (0..50).collect();
        let out: Result<Vec<u32>, ()> = try_map(&items, 4, |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(n * 2)
        });
        assert_eq!(out.unwrap(), (0..50).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 50);
        let none: Result<Vec<u32>, ()> = try_map(&[], 4, |n: &u32| Ok(*n));
        assert_eq!(none.unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn an_error_stops_new_work() {
        let calls = AtomicU32::new(0);
        let items: Vec<u32> = (0..1000).collect();
        let out = try_map(&items, 2, |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            if *n >= 3 { Err(*n) } else { Ok(*n) }
        });
        assert_eq!(out, Err(3));
        // Each worker finishes at most the item it holds when the flag is set.
        assert!(calls.load(Ordering::SeqCst) < 10);
    }
}
