//! Helper threads of a run: a stop token that follows the caller's, and a
//! timer that calls a function at an interval until dropped.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, select};

use crate::cancel::CancelToken;

/// A token that is cancelled when the caller's is, and that the run can also
/// cancel itself (a failed journal) without touching the caller's token.
pub(super) struct Linked {
    token: CancelToken,
    _relay: Ticker,
}

impl Linked {
    pub(super) fn follow(parent: &CancelToken) -> Linked {
        let token = CancelToken::new();
        let (watched, child) = (parent.clone(), token.clone());
        let (done, quit) = crossbeam_channel::bounded::<()>(0);
        let spawned = std::thread::Builder::new()
            .name("etlpool-stop".into())
            .spawn(move || {
                select! {
                    recv(watched.receiver()) -> _ => child.cancel(),
                    recv(quit) -> _ => {}
                }
            });
        match spawned {
            Ok(handle) => Linked {
                token,
                _relay: Ticker {
                    done: Some(done),
                    handle: Some(handle),
                },
            },
            // Without the thread the run shares the caller's token; a failed
            // journal then cancels that one too.
            Err(_) => Linked {
                token: parent.clone(),
                _relay: Ticker {
                    done: None,
                    handle: None,
                },
            },
        }
    }

    pub(super) fn token(&self) -> &CancelToken {
        &self.token
    }
}

/// Calls a function every interval on its own thread; dropping it stops and
/// joins the thread.
pub(super) struct Ticker {
    done: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// Calls `tick` every `interval` until the returned [`Ticker`] is dropped.
pub(super) fn every(interval: Duration, mut tick: impl FnMut() + Send + 'static) -> Ticker {
    let (done, quit) = crossbeam_channel::bounded::<()>(0);
    let handle = std::thread::Builder::new()
        .name("etlpool-progress".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                quit.recv_timeout(interval)
            {
                tick();
            }
        });
    if let Err(e) = &handle {
        log::warn!("no progress lines: could not start their thread: {e}");
    }
    Ticker {
        done: Some(done),
        handle: handle.ok(),
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
