//! A cancellation flag that threads can block and `select!` on.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

/// A cheap, cloneable cancellation flag.
///
/// All clones share one flag. [`cancel`](Self::cancel) sets it for good and
/// closes the channel returned by [`receiver`](Self::receiver), so a thread
/// can wait for cancellation in a `crossbeam_channel::select!` next to its
/// work channel instead of polling the flag.
///
/// ```
/// use crossbeam_channel::{select, unbounded};
/// use etlpool::CancelToken;
///
/// let token = CancelToken::new();
/// let (_work_tx, work) = unbounded::<u32>();
/// let worker = {
///     let token = token.clone();
///     std::thread::spawn(move || {
///         select! {
///             recv(work) -> _ => "work",
///             recv(token.receiver()) -> _ => "cancelled",
///         }
///     })
/// };
/// token.cancel();
/// assert_eq!(worker.join().unwrap(), "cancelled");
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    /// Answers `is_cancelled` without touching the channel.
    cancelled: AtomicBool,
    /// The only sender; dropped on cancel so that every `recv` on `receiver`
    /// returns at once. Nothing is ever sent: the message type is uninhabited.
    sender: Mutex<Option<Sender<Infallible>>>,
    receiver: Receiver<Infallible>,
}

impl CancelToken {
    /// Creates a token that is not cancelled.
    pub fn new() -> Self {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        Self {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                sender: Mutex::new(Some(sender)),
                receiver,
            }),
        }
    }

    /// Cancels the token and every clone of it, waking all waiters.
    /// Cancelling twice does nothing more.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        // Taken out before the drop so the lock is not held while the
        // channel wakes its waiters.
        let sender = self.inner.sender.lock().take();
        drop(sender);
    }

    /// Whether [`cancel`](Self::cancel) has been called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// A channel that is disconnected when the token is cancelled.
    ///
    /// Nothing is ever sent on it, so a `recv` on it returns (with an error)
    /// only once the token is cancelled. Use it as an arm of
    /// `crossbeam_channel::select!`.
    pub fn receiver(&self) -> &Receiver<Infallible> {
        &self.inner.receiver
    }

    /// Blocks until the token is cancelled.
    pub fn wait(&self) {
        // `recv` can only fail, with "disconnected", which is what cancel does.
        let _ = self.inner.receiver.recv();
    }

    /// Blocks until the token is cancelled or `timeout` passes; returns
    /// whether it was cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match self.inner.receiver.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => self.is_cancelled(),
            Err(RecvTimeoutError::Disconnected) => true,
            Ok(never) => match never {},
        }
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_wake_waiters() {
        let token = CancelToken::new();
        assert!(!token.wait_timeout(Duration::ZERO));
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || token.wait())
        };
        token.clone().cancel();
        waiter.join().unwrap();
        assert!(token.is_cancelled());
        assert!(token.wait_timeout(Duration::from_secs(3600)));
        token.cancel();
    }
}
