//! SIGINT and SIGTERM as a [`CancelToken`]: the first signal cancels (stop
//! taking work, let in-flight jobs finish and checkpoint), a second one
//! exits the process at once with [`EXIT_INTERRUPTED`].
//!
//! The signal handlers themselves only set a flag and write to a pipe
//! (all they may safely do); a thread named `etlpool-signals` reads the pipe
//! and cancels the token, logging at `warn`.
//!
//! ```
//! use etlpool::CancelToken;
//! use etlpool::queue::WorkQueue;
//! use etlpool::signals;
//!
//! let token = CancelToken::new();
//! let guard = signals::install(token.clone())?;
//! let (queue, _results) = WorkQueue::builder()
//!     .cancel_token(token)
//!     .build(|n: u32| Ok::<_, std::convert::Infallible>(n))?;
//! // ... submit work, read results, write the checkpoint ...
//! let stats = queue.close();
//! if guard.received() {
//!     // After checkpointing: std::process::exit(signals::EXIT_INTERRUPTED)
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use signal_hook::{SigId, flag};

use crate::cancel::CancelToken;

/// The exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as
/// shells report Ctrl-C), after a checkpoint or at once on a second signal.
pub const EXIT_INTERRUPTED: i32 = 130;

const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Keeps the handlers installed by [`install`]; dropping it removes them
/// and, once no guard is left, restores the default reaction (the process
/// is terminated by the signal).
#[must_use = "dropping the guard uninstalls the signal handlers"]
pub struct SignalGuard {
    /// Set by the handler itself on the first signal; arms the exit on the
    /// second.
    received: Arc<AtomicBool>,
    ids: Vec<SigId>,
    signals: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Installs SIGINT and SIGTERM handlers that cancel `token` on the first
/// signal and exit with [`EXIT_INTERRUPTED`] on the second.
///
/// Several guards may be alive at once (each cancels its own token); a
/// second signal to any of them exits.
pub fn install(token: CancelToken) -> io::Result<SignalGuard> {
    enter_guarded()?;
    let received = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::with_capacity(2 * SIGNALS.len());
    let installed = (|| {
        for signal in SIGNALS {
            // Order matters: actions run in registration order, so the exit
            // sees the flag as the previous signal left it, then the flag is
            // set for the next one.
            ids.push(flag::register_conditional_shutdown(
                signal,
                EXIT_INTERRUPTED,
                Arc::clone(&received),
            )?);
            ids.push(flag::register(signal, Arc::clone(&received))?);
        }
        Signals::new(SIGNALS)
    })();
    let mut signals = match installed {
        Ok(signals) => signals,
        Err(e) => {
            unregister(&ids);
            leave_guarded();
            return Err(e);
        }
    };
    let handle = signals.handle();
    let spawned = thread::Builder::new()
        .name("etlpool-signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
                log::warn!(
                    "received {name}: taking no more work, letting running jobs finish; \
                     send it again to exit at once"
                );
                token.cancel();
            }
        });
    let mut guard = SignalGuard {
        received,
        ids,
        signals: handle,
        thread: None,
    };
    // On error, dropping the guard undoes the registrations above.
    guard.thread = Some(spawned?);
    Ok(guard)
}

impl SignalGuard {
    /// Whether SIGINT or SIGTERM arrived since [`install`]. True as soon as
    /// the handler has run; the token is cancelled moments later by the
    /// signal thread (wait on the token, not on this, to act on it).
    pub fn received(&self) -> bool {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        unregister(&self.ids);
        // Closing the iterator ends the thread's loop and unregisters its
        // pipe when the `Signals` is dropped there.
        self.signals.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        leave_guarded();
    }
}

impl std::fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalGuard")
            .field("received", &self.received())
            .finish()
    }
}

fn unregister(ids: &[SigId]) {
    for &id in ids {
        signal_hook::low_level::unregister(id);
    }
}

/// Live guards, and the flag of the process-wide action that emulates the
/// default reaction while no guard is alive.
///
/// signal-hook never restores the default handler when actions are
/// unregistered (the signal would be ignored), so one action, registered
/// first so that it runs before any guard's, terminates the process as the
/// default would whenever the count is zero.
struct Guarded {
    count: usize,
    default_when_idle: Option<Arc<AtomicBool>>,
}

static GUARDED: Mutex<Guarded> = Mutex::new(Guarded {
    count: 0,
    default_when_idle: None,
});

fn enter_guarded() -> io::Result<()> {
    let mut guarded = GUARDED.lock();
    let idle = match &guarded.default_when_idle {
        Some(idle) => Arc::clone(idle),
        None => {
            let idle = Arc::new(AtomicBool::new(false));
            for signal in SIGNALS {
                flag::register_conditional_default(signal, Arc::clone(&idle))?;
            }
            guarded.default_when_idle = Some(Arc::clone(&idle));
            idle
        }
    };
    guarded.count += 1;
    idle.store(false, Ordering::SeqCst);
    Ok(())
}

fn leave_guarded() {
    let mut guarded = GUARDED.lock();
    guarded.count -= 1;
    if guarded.count == 0
        && let Some(idle) = &guarded.default_when_idle
    {
        idle.store(true, Ordering::SeqCst);
    }
}
