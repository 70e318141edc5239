//! What every scaler, the registry and the HTTP layer share: the [`Context`]. It sits below
//! all of them (they import it; it imports none of them), as controller-rs keeps its shared
//! state; `agent` only wires it up and runs.

use crate::clock::Clock;
use crate::gate::Gate;
use crate::guard::{Guard, LeaseSeen};
use crate::metrics::Metrics;
use crate::report::status::StatusSink;
use crate::state::StateStore;
use crate::target::Targets;
use crate::temporal::TemporalPool;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What every scaler and the HTTP server share.
pub struct Context {
    pub pool: Arc<TemporalPool>,
    pub metrics: Arc<Metrics>,
    pub state: StateStore,
    pub targets: Targets,
    pub guard: Guard,
    /// Status and events of custom resources (with a cluster).
    pub status: Option<StatusSink>,
    pub ready: AtomicBool,
    /// Origin of the scalers' polling grid (see `scaler::poll_offset`), and the clock of their
    /// histories.
    pub epoch: tokio::time::Instant,
    /// The status page (`GET /`) and the history it charts (`--ui`).
    pub ui: bool,
    /// The Lease as last read (with a cluster, not in dry run), for the status page.
    pub lease: Option<Arc<std::sync::Mutex<LeaseSeen>>>,
    /// Idle pods first: deletion costs on the target's pods before a scale-down (setting
    /// `idle_first`; each scaler with the capacity signal on).
    pub idle_first: bool,
    /// Polls asked for at once (a scaler's start, a new spec, the lease) that are running: past
    /// [`PROMPT_POLLS`], a scaler polls at its next grid slot instead (`scaler::lifecycle`).
    pub prompt_polls: Arc<tokio::sync::Semaphore>,
    /// When each waiting scaler runs next.
    pub clock: Clock,
    /// How many ticks run at once per endpoint; the others wait in line as their cells.
    pub gate: Arc<Gate>,
}

/// How many scalers may poll at once, rather than at their grid slot, after a start, a new
/// spec or a lease change: about a second of RPCs at the default rate.
pub const PROMPT_POLLS: usize = 256;

/// A prompt poll whose reads failed (a saturated server refused or timed out a changed spec's
/// read) is polled again this soon, once, as a prompt poll, rather than at the scaler's next
/// grid slot, which can be minutes away.
pub const PROMPT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What `run` adds to a [`Context`] beyond what tests need.
#[derive(Default)]
pub struct Extras {
    pub status: Option<StatusSink>,
    /// Off: no status page, no history kept.
    pub no_ui: bool,
    pub lease: Option<Arc<std::sync::Mutex<LeaseSeen>>>,
    /// Off: no deletion costs are written (setting `idle_first: false`).
    pub no_idle_first: bool,
}

impl Context {
    pub fn new(targets: Targets, guard: Guard) -> Arc<Self> {
        Self::with_status(targets, guard, None)
    }

    pub fn with_status(targets: Targets, guard: Guard, status: Option<StatusSink>) -> Arc<Self> {
        Self::with_extras(
            targets,
            guard,
            Extras {
                status,
                ..Extras::default()
            },
        )
    }

    pub fn with_extras(targets: Targets, guard: Guard, extras: Extras) -> Arc<Self> {
        let Extras {
            status,
            no_ui,
            lease,
            no_idle_first,
        } = extras;
        let state = StateStore::new();
        let metrics = Arc::new(Metrics::with_scalers(state.clone()));
        let gate = Gate::with_gauges(
            crate::gate::TICKS_PER_ENDPOINT,
            metrics.ticks_in_flight.clone(),
            metrics.ticks_waiting.clone(),
        );
        Arc::new(Context {
            pool: TemporalPool::new(metrics.clone()),
            metrics,
            state,
            targets,
            guard,
            prompt_polls: Arc::new(tokio::sync::Semaphore::new(PROMPT_POLLS)),
            clock: Clock::default(),
            gate,
            status,
            ready: AtomicBool::new(false),
            epoch: tokio::time::Instant::now(),
            ui: !no_ui,
            lease,
            idle_first: !no_idle_first,
        })
    }
}
