//! The state a pooled agent, its connector and its handles share: who holds
//! the agent's one socket, and whether the pool still wants it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use ureq::unversioned::transport::{ConnectionDetails, ShutdownHandle};

use super::host::HostPool;
use super::socket::Socket;
use super::tcp::SocketInfo;
use crate::metrics::{CloseReason, OriginMetrics};

/// What a pooled agent, its connector and its handles share.
pub(crate) struct AgentWire {
    pub(crate) metrics: Arc<OriginMetrics>,
    host: Weak<HostPool>,
    /// Mirrors `WireState::retired` for the lock-free check when parking.
    retired: AtomicBool,
    /// ureq shut the agent down (`Agent::shutdown` on some clone of it): it
    /// fails every request from now on, so the pool must let go of it.
    shut_down: AtomicBool,
    /// The wire is registered with the agent's shutdown (on its first connect).
    watching_shutdown: AtomicBool,
    /// A request holds the socket (it exists and is not parked), e.g. a body
    /// read after the lease returned. Written under `state`; read without it
    /// when lending, which prefers agents whose socket is free.
    busy: AtomicBool,
    /// When the current socket's lifetime ends, in ns since `epoch`; 0 = never.
    socket_expires: AtomicU64,
    epoch: Instant,
    lifetime: Option<(Duration, f64)>,
    /// Guards the socket's ownership: whether one exists, the idle one itself,
    /// retirement and the host slot. Never held across I/O or a socket's close.
    state: Mutex<WireState>,
    /// Signalled when the socket is parked or closed.
    changed: Condvar,
}

struct WireState {
    /// The agent has a socket, idle (in `parked`) or in use by some handle.
    live: bool,
    /// The socket while no request uses it.
    parked: Option<Socket>,
    /// The pool let go of this agent; no socket may be opened or reused.
    retired: bool,
    /// Why the pool retired it, applied to the socket when it closes.
    close_reason: Option<CloseReason>,
    /// The agent still holds one of its host's slots.
    slot_held: bool,
}

pub(crate) enum Claim {
    /// The idle socket, taken over.
    Parked(Socket),
    /// No socket exists; the caller may open one.
    Fresh,
}

/// Why a connect could not have the agent's socket.
pub(crate) enum Refused {
    /// The pool let go of the agent.
    Retired,
    /// The pool is shut down and the agent has no socket: nothing new opens.
    ShutDown,
    /// Another request kept the socket for the whole wait.
    Busy(Duration),
}

impl AgentWire {
    pub(crate) fn new(
        metrics: Arc<OriginMetrics>,
        host: Weak<HostPool>,
        epoch: Instant,
        lifetime: Option<(Duration, f64)>,
    ) -> Self {
        AgentWire {
            metrics,
            host,
            retired: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            watching_shutdown: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            socket_expires: AtomicU64::new(0),
            epoch,
            lifetime,
            state: Mutex::new(WireState {
                live: false,
                parked: None,
                retired: false,
                close_reason: None,
                slot_held: true,
            }),
            changed: Condvar::new(),
        }
    }

    /// The wire's identity for per-thread request records: its address,
    /// stable while any handle holds the `Arc`.
    pub(crate) fn id(&self) -> usize {
        self as *const AgentWire as usize
    }

    /// True if the agent's socket has outlived its lifetime at `now`.
    pub(crate) fn socket_expired(&self, now: Instant) -> bool {
        let expires = self.socket_expires.load(Relaxed);
        expires != 0 && nanos_since(self.epoch, now) >= expires
    }

    /// [`AgentWire::socket_expired`] now; reads the clock only if the socket
    /// has a lifetime.
    pub(crate) fn socket_expired_now(&self) -> bool {
        self.socket_expires.load(Relaxed) != 0 && self.socket_expired(Instant::now())
    }

    /// A request holds the agent's socket right now.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Relaxed)
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    /// ureq shut the agent down: it can never send again.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(SeqCst)
    }

    /// Registers the wire with the agent's shutdown, once: ureq tells it when
    /// the agent is shut down through any clone. (An agent that never reached
    /// its connector can't be watched; ureq offers no other hook.)
    pub(crate) fn watch_shutdown(
        self: &Arc<Self>,
        details: &ConnectionDetails,
    ) -> Result<(), ureq::Error> {
        if self.watching_shutdown.swap(true, Relaxed) {
            return Ok(());
        }
        let weak: Weak<AgentWire> = Arc::downgrade(self);
        (details.register_shutdown)(weak)
    }

    /// The agent has a socket, idle or in use.
    pub(crate) fn has_socket(&self) -> bool {
        self.state.lock().live
    }

    /// What the kernel said of the idle socket when it was opened.
    pub(crate) fn parked_info(&self) -> Option<SocketInfo> {
        self.state
            .lock()
            .parked
            .as_ref()
            .and_then(|s| s.info().cloned())
    }

    /// Lets go of the agent: the idle socket closes now, one in use when its
    /// request ends, and nothing new opens. Returns true if the host slot is free
    /// now; otherwise the socket's close frees it.
    pub(crate) fn retire(&self, reason: CloseReason) -> bool {
        let (parked, free_now) = {
            let mut st = self.state.lock();
            if st.retired {
                return false;
            }
            st.retired = true;
            self.retired.store(true, Relaxed);
            st.close_reason = Some(reason);
            if st.live {
                (st.parked.take(), false)
            } else {
                st.slot_held = false;
                (None, true)
            }
        };
        self.changed.notify_all();
        // Closing the socket calls back into `socket_gone`, which frees the slot.
        drop(parked);
        free_now
    }

    /// Gets the agent's socket for a connect: the idle one, or leave to open a
    /// new one (unless the pool is `closed` by then), waiting up to `wait`
    /// while a request elsewhere uses it.
    pub(crate) fn claim(&self, wait: Duration, closed: &AtomicBool) -> Result<Claim, Refused> {
        let mut st = self.state.lock();
        let mut deadline = None;
        loop {
            if st.retired {
                return Err(Refused::Retired);
            }
            if let Some(socket) = st.parked.take() {
                self.busy.store(true, Relaxed);
                return Ok(Claim::Parked(socket));
            }
            if !st.live {
                // Read now, not before the wait: the pool may have shut down
                // while another request held the socket.
                if closed.load(Relaxed) {
                    return Err(Refused::ShutDown);
                }
                st.live = true;
                self.busy.store(true, Relaxed);
                return Ok(Claim::Fresh);
            }
            let (start, d) = match deadline {
                Some(d) => d,
                None => {
                    self.metrics.socket_busy();
                    let now = Instant::now();
                    let d = (now, now.checked_add(wait));
                    deadline = Some(d);
                    d
                }
            };
            let timed_out = match d {
                Some(d) => self.changed.wait_until(&mut st, d).timed_out(),
                None => {
                    self.changed.wait(&mut st);
                    false
                }
            };
            if timed_out && st.live && st.parked.is_none() && !st.retired {
                return Err(Refused::Busy(start.elapsed()));
            }
        }
    }

    /// A fresh socket is open: start its lifetime.
    pub(crate) fn opened(&self) {
        if let Some((lifetime, jitter)) = self.lifetime {
            // Negative jitter only: a connection never lives past max_lifetime.
            let cut = lifetime.mul_f64(jitter * fastrand::f64());
            let end = nanos_since(self.epoch, Instant::now()) + (lifetime - cut).as_nanos() as u64;
            self.socket_expires.store(end.max(1), Relaxed);
        }
    }

    pub(crate) fn park(&self, socket: Socket) {
        {
            let mut st = self.state.lock();
            st.parked = Some(socket);
            self.busy.store(false, Relaxed);
        }
        self.changed.notify_all();
    }

    pub(crate) fn unpark(&self) -> Option<Socket> {
        let mut st = self.state.lock();
        let socket = st.parked.take();
        if socket.is_some() {
            self.busy.store(true, Relaxed);
        }
        socket
    }

    /// The agent's socket closed (or never opened).
    pub(crate) fn socket_gone(&self) {
        let free_slot = {
            let mut st = self.state.lock();
            st.live = false;
            self.busy.store(false, Relaxed);
            self.socket_expires.store(0, Relaxed);
            let free = st.retired && st.slot_held;
            if free {
                st.slot_held = false;
            }
            free
        };
        self.changed.notify_all();
        if free_slot {
            self.release_slot();
        }
    }

    fn release_slot(&self) {
        if let Some(host) = self.host.upgrade() {
            host.slot_released();
        }
    }

    pub(crate) fn retire_reason(&self) -> Option<CloseReason> {
        self.state.lock().close_reason
    }
}

impl ShutdownHandle for AgentWire {
    fn shutdown(&self) {
        self.shut_down.store(true, SeqCst);
        if let Some(host) = self.host.upgrade() {
            host.retire_shut_down(self.id());
        }
    }
}

impl Drop for AgentWire {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(mut socket) = st.parked.take() {
            socket.force_reason(st.close_reason.unwrap_or(CloseReason::Abandoned));
            drop(socket);
        }
        let free_slot = std::mem::take(&mut st.slot_held);
        if free_slot {
            self.release_slot();
        }
    }
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_nanos() as u64
}
