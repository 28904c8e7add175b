//! The background thread that closes idle and expired connections.

use std::sync::Weak;
use std::thread::JoinHandle;
#[cfg(test)]
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::PoolInner;

/// The cleaner of one pool. It holds only a `Weak` to the pool, so it never keeps
/// a pool alive; it stops when the pool is gone or when this handle says so.
pub(crate) struct Cleaner {
    /// Dropping it wakes and stops the thread at once.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Cleaner {
    pub(crate) fn spawn(pool: Weak<PoolInner>, every: Duration) -> std::io::Result<Cleaner> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("etlpool-cleaner".into())
            .spawn(move || run(pool, every, stopped))?;
        Ok(Cleaner {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    #[cfg(test)]
    pub(crate) fn thread_id(&self) -> Option<ThreadId> {
        self.thread.as_ref().map(|t| t.thread().id())
    }

    /// Stops the thread and waits for it, unless called from the cleaner itself
    /// (the last pool handle can be dropped there), which would deadlock.
    pub(crate) fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
            && thread.join().is_err()
        {
            log::error!("the pool's cleaner thread panicked");
        }
    }
}

fn run(pool: Weak<PoolInner>, every: Duration, stopped: Receiver<()>) {
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stop requested (the sender was dropped), or a stray message.
            Err(RecvTimeoutError::Disconnected) | Ok(()) => return,
        }
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.reap(Instant::now());
    }
}
