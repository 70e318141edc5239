//! When a scaler runs: at once on its start, a new spec or a lease change (within
//! [`crate::context::PROMPT_POLLS`]), else every pollingInterval on its grid slot. Between
//! ticks a scaler is only its state and an entry on the agent's [`crate::clock::Clock`], not a
//! sleeping task; each tick is a task of its own, which owns the scaler while it runs. A spec
//! or lease change during a tick waits for its end, as it did in the loop this replaces.

use super::*;
use crate::clock::Due;
use crate::context::PROMPT_RETRY;
use crate::gate::{Admit, Pass};
use crate::spec::EndpointSource;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::AbortHandle;

/// The registry's hold on a running scaler. Dropping it stops the scaler, aborting a tick
/// that is running.
pub struct ScalerHandle {
    cell: Arc<Cell>,
}

impl ScalerHandle {
    /// Hand the scaler a new spec; it applies it at once, or when its running tick ends
    /// (replacing one not yet applied).
    pub fn update(&self, config: Versioned) {
        self.cell.change(Change::Spec(config));
    }

    /// The lease was gained or lost: act (or report) at once, from what the state holds now.
    pub fn lease_changed(&self) {
        self.cell.change(Change::Lease);
    }
}

impl Drop for ScalerHandle {
    fn drop(&mut self) {
        let mut inner = self.cell.lock();
        inner.stopped = true;
        if let Some(tick) = inner.tick.take() {
            tick.abort();
        }
        inner.superseded = None;
        inner.idle = None;
    }
}

/// Start a scaler: its first poll comes at once, unless many scalers start together.
pub fn spawn(
    key: ScalerKey,
    config: Versioned,
    file: Option<Arc<std::path::Path>>,
    ctx: Arc<Context>,
) -> ScalerHandle {
    let Versioned {
        config: cfg,
        generation,
    } = config;
    // Moved, not cloned: what the scaler holds lives as long as it does, 10,000 times over.
    let dry_run = ctx.targets.is_dry_run();
    ctx.state.update(&key, move |v| {
        v.file = file;
        v.dry_run = dry_run;
    });
    let s = Scaler::new(key, ctx, cfg, generation.unwrap_or(0));
    warn_deprecated(&s.key, &s.cfg);
    let cell = Arc::new(Cell {
        inner: Mutex::new(Inner::default()),
    });
    {
        let mut inner = cell.lock();
        let at = s.prompt(&mut inner.permit);
        cell.wake_at(&mut inner, s, at);
    }
    ScalerHandle { cell }
}

/// A tick's place until its task first runs. A task spawned on a runtime that is stopping is
/// dropped at once, inside `run_tick`, with the scaler's lock held: its place is then left,
/// not handed on (handing on could admit this very scaler).
struct Unstarted(Option<Pass>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(pass) = self.0.take() {
            pass.leave();
        }
    }
}

enum Change {
    Spec(Versioned),
    Lease,
}

/// A scaler between its ticks, and what came for it during one.
struct Cell {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The scaler while it waits; `None` while its tick runs (the tick owns it).
    idle: Option<Scaler>,
    /// A new spec that came during a tick (the newest wins).
    pending: Option<Box<Versioned>>,
    /// The lease changed during a tick.
    lease_changed: bool,
    /// The next wake-up retries a prompt poll whose reads failed ([`PROMPT_RETRY`]).
    retried: bool,
    /// Which wake-up on the clock is current: setting another makes the earlier one stale.
    /// (32 bits beside the flags, where 64 would make the cell a size class larger;
    /// wrapping, compared only for equality.)
    token: u32,
    /// A prompt poll's place among [`crate::context::PROMPT_POLLS`], held until its tick ends
    /// (boxed: few scalers hold one, and it is twice a pointer).
    permit: Option<Box<OwnedSemaphorePermit>>,
    tick: Option<AbortHandle>,
    /// While a tick runs: told when a new spec comes, so the tick gives way if it is still
    /// reading. Made per tick, not kept in the cell: 32 bytes less per waiting scaler.
    superseded: Option<Arc<tokio::sync::Notify>>,
    stopped: bool,
}

impl Due for Cell {
    fn due(self: Arc<Self>, token: u64) {
        let mut inner = self.lock();
        if !inner.stopped && u64::from(inner.token) == token {
            self.start_tick(&mut inner);
        }
    }
}

impl Admit for Cell {
    fn admit(self: Arc<Self>, token: u64, pass: Pass) -> Option<Pass> {
        let mut inner = self.lock();
        // No runtime (the agent is stopping): nothing can run; the next in line is told.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Some(pass);
        };
        if inner.stopped || u64::from(inner.token) != token || inner.idle.is_none() {
            return Some(pass);
        }
        self.run_tick(&mut inner, pass, &rt);
        None
    }
}

impl Cell {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Park `s` until `at`: a tick at once when that has come, else a wake-up on the clock.
    fn wake_at(self: &Arc<Self>, inner: &mut Inner, s: Scaler, at: tokio::time::Instant) {
        inner.token = inner.token.wrapping_add(1);
        let ctx = s.ctx.clone();
        inner.idle = Some(s);
        if at <= tokio::time::Instant::now() {
            self.start_tick(inner);
        } else {
            let job: Arc<dyn Due> = self.clone();
            ctx.clock
                .at(at, Arc::downgrade(&job), u64::from(inner.token));
        }
    }

    /// Its time has come: a tick now if its endpoint has a place ([`crate::gate`]), else it
    /// waits in that endpoint's line as it is (idle), and [`Admit::admit`] starts it.
    fn start_tick(self: &Arc<Self>, inner: &mut Inner) {
        let Some(s) = inner.idle.as_ref() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let gate = s.ctx.gate.clone();
        let job: Arc<dyn Admit> = self.clone();
        if let Some(pass) = gate.enter(
            s.lane(),
            Arc::downgrade(&job),
            u64::from(inner.token),
            inner.permit.is_some(),
        ) {
            self.run_tick(inner, pass, &rt);
        }
    }

    fn run_tick(self: &Arc<Self>, inner: &mut Inner, pass: Pass, rt: &tokio::runtime::Handle) {
        let Some(mut s) = inner.idle.take() else {
            // Not reached (both callers hold the lock and saw it idle); never handed on here,
            // under this scaler's lock.
            pass.leave();
            return;
        };
        let permit = inner.permit.take();
        let superseded = Arc::new(tokio::sync::Notify::new());
        inner.superseded = Some(superseded.clone());
        let cell = self.clone();
        let mut unstarted = Unstarted(Some(pass));
        let task = rt.spawn(async move {
            let pass = unstarted.0.take();
            let started = tokio::time::Instant::now();
            // Registered before the check: a spec that comes after it wakes this tick.
            let superseded = superseded.notified();
            let prompt = permit.is_some();
            let mut failed = false;
            if cell.lock().pending.is_none() {
                // Boxed: the tick's deep futures exist only while it runs.
                failed = crate::temporal::PROMPT
                    .scope(prompt, Box::pin(s.tick(superseded)))
                    .await;
            }
            drop(permit);
            cell.ticked(s, started, prompt && failed);
            // After the cell's lock is let go: the place may go to another scaler at once.
            drop(pass);
        });
        inner.tick = Some(task.abort_handle());
    }

    /// A tick that began at `started` ended: apply what came meanwhile (and poll at once), or
    /// wait for the next slot after its start. A tick that waited on a silent API server (at
    /// most the deadline) delays the next one at most as much, never by a whole skipped
    /// interval; one that overran its slot is followed at once.
    fn ticked(self: &Arc<Self>, mut s: Scaler, started: tokio::time::Instant, failed_prompt: bool) {
        let mut inner = self.lock();
        inner.tick = None;
        inner.superseded = None;
        if inner.stopped {
            return;
        }
        // Retried once: a retry that fails too waits for the grid slot.
        let was_retry = std::mem::take(&mut inner.retried);
        let mut changed = false;
        if let Some(v) = inner.pending.take() {
            s.apply(*v);
            changed = true;
        }
        if std::mem::take(&mut inner.lease_changed) {
            s.lease_changed();
            changed = true;
        }
        let at = if changed {
            s.prompt(&mut inner.permit)
        } else if failed_prompt && !was_retry {
            inner.retried = true;
            s.retry(&mut inner.permit, started)
        } else {
            s.next_slot(started)
        };
        self.wake_at(&mut inner, s, at);
    }

    fn change(self: &Arc<Self>, change: Change) {
        let mut inner = self.lock();
        if inner.stopped {
            return;
        }
        // A new prompt poll: it may be retried in its turn.
        inner.retried = false;
        let Some(mut s) = inner.idle.take() else {
            // Its tick is running: applied when it ends.
            match change {
                Change::Spec(v) => {
                    inner.pending = Some(Box::new(v));
                    if let Some(n) = &inner.superseded {
                        n.notify_waiters();
                    }
                }
                // A lost lease stops writes at the guard; a gained one acts after this tick.
                Change::Lease => inner.lease_changed = true,
            }
            return;
        };
        match change {
            Change::Spec(v) => s.apply(v),
            Change::Lease => s.lease_changed(),
        }
        let at = s.prompt(&mut inner.permit);
        self.wake_at(&mut inner, s, at);
    }
}

impl Scaler {
    /// A scaler that remembers nothing yet.
    pub(super) fn new(
        key: ScalerKey,
        ctx: Arc<Context>,
        cfg: Arc<ScalerConfig>,
        generation: i64,
    ) -> Self {
        Scaler {
            fleet: Fleet::new(&ctx.targets, &cfg),
            key,
            ctx,
            cfg,
            history: History::default(),
            started_at: Instant::now(),
            generation,
            last_scale_time: None,
            idle_first: Default::default(),
            env: Default::default(),
            schedules: None,
            notes: Notes::default(),
        }
    }

    /// When a poll that should come at once (a start, a new spec, the lease) runs: at once
    /// while fewer than [`crate::context::PROMPT_POLLS`] such polls run across the agent,
    /// holding `permit` until its tick ends; else at this scaler's next grid slot, at most one
    /// interval away. 10,000 scalers starting (or gaining the lease) together then do not all
    /// wait inside a tick at once, which was the start-up peak of memory, and the scalers of
    /// one queue still poll together (one RPC).
    pub(super) fn prompt(
        &self,
        permit: &mut Option<Box<OwnedSemaphorePermit>>,
    ) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        if self.prompt_place(permit) {
            now
        } else {
            self.next_slot(now)
        }
    }

    /// A place among the prompt polls into `permit`, if one is free.
    fn prompt_place(&self, permit: &mut Option<Box<OwnedSemaphorePermit>>) -> bool {
        match self.ctx.prompt_polls.clone().try_acquire_owned() {
            Ok(p) => {
                *permit = Some(Box::new(p));
                true
            }
            Err(_) => false,
        }
    }

    /// The line it waits in for a place to tick: its first trigger's endpoint (as written: an
    /// endpoint from the environment is known by its variable).
    fn lane(&self) -> &str {
        match self.cfg.triggers.first().map(|t| &t.endpoint) {
            Some(EndpointSource::Literal(e) | EndpointSource::FromEnv(e)) => e,
            None => "",
        }
    }

    /// When a prompt poll that began at `started` and failed to read is tried again:
    /// [`PROMPT_RETRY`] from now (a prompt poll again while a place among them is free), or its
    /// grid slot if that comes first.
    fn retry(
        &self,
        permit: &mut Option<Box<OwnedSemaphorePermit>>,
        started: tokio::time::Instant,
    ) -> tokio::time::Instant {
        let soon = tokio::time::Instant::now() + PROMPT_RETRY;
        let slot = self.next_slot(started);
        if slot <= soon {
            return slot;
        }
        self.prompt_place(permit);
        soon
    }

    /// The first slot of this scaler's grid after `after`.
    fn next_slot(&self, after: tokio::time::Instant) -> tokio::time::Instant {
        let epoch = self.ctx.epoch;
        let since = after.saturating_duration_since(epoch);
        epoch + next_poll(since, poll_offset(&self.cfg), self.cfg.polling_interval)
    }

    /// A new spec: what is remembered of the target is kept when the target is the same.
    fn apply(&mut self, v: Versioned) {
        let Versioned {
            config: new,
            generation,
        } = v;
        self.generation = generation.unwrap_or(0);
        let same_target = (&new.namespace, &new.target) == (&self.cfg.namespace, &self.cfg.target);
        if !same_target {
            // A different workload: nothing remembered applies to it.
            self.history = History::default();
        }
        // Clusters still named keep what they remember (reachability, last count).
        self.fleet.update(&self.ctx.targets, &new, same_target);
        tracing::info!(scaler = %self.key, "spec changed; applying");
        if !uses_build_ids(&self.cfg) {
            warn_deprecated(&self.key, &new);
        }
        self.cfg = new;
    }

    /// What another leader learned meanwhile is in the state (the Lease, the CR status; the
    /// later run wins): start from it again.
    fn lease_changed(&mut self) {
        self.schedules = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Between ticks a scaler is its state and this cell, 100,000 times over: no task, no
    /// sleeping futures. With the `Arc`'s 16 bytes it fits jemalloc's 448-byte size class;
    /// a few bytes more and every scaler takes 512.
    #[test]
    fn a_waiting_scaler_is_small() {
        let size = std::mem::size_of::<Cell>();
        eprintln!("a waiting scaler: {size} bytes");
        assert!(16 + size <= 448, "a waiting scaler is {size} bytes");
        // A failing trigger's entry (a saturated server fails most scalers' reads at once).
        let entry = std::mem::size_of::<(Arc<str>, crate::outage::Ongoing<ErrorKind>)>();
        assert!(entry <= 64, "a failing trigger's entry is {entry} bytes");
    }

    /// What else each scaler keeps for its life fits a size class with little to spare:
    /// its spec (in an `Arc`: 224), its trigger's spec (256), its view for `/scalers` (boxed:
    /// 256), each tick's view of a trigger (192).
    #[test]
    fn a_scalers_spec_and_view_fit_their_size_classes() {
        let spec = std::mem::size_of::<ScalerConfig>();
        let trigger = std::mem::size_of::<crate::spec::TriggerConfig>();
        let view = std::mem::size_of::<crate::state::ScalerView>();
        let trigger_view = std::mem::size_of::<crate::state::TriggerView>();
        eprintln!("spec {spec} bytes, trigger {trigger}, view {view}, trigger view {trigger_view}");
        assert!(16 + spec <= 224, "a spec is {spec} bytes");
        assert!(trigger <= 256, "a trigger's spec is {trigger} bytes");
        assert!(view <= 256, "a view is {view} bytes");
        let tv = trigger_view;
        assert!(tv <= 192, "a trigger's view is {tv} bytes");
    }

    fn parked(ctx: &Arc<Context>) -> (Arc<Cell>, Scaler, Versioned) {
        let (_, key, v) = super::super::schedule_tests::sample_task();
        let s = Scaler::new(key, ctx.clone(), v.config.clone(), 0);
        let cell = Arc::new(Cell {
            inner: Mutex::new(Inner::default()),
        });
        (cell, s, v)
    }

    /// A spec and a lease change that come while the tick runs (the cell holds no scaler) wait
    /// for its end; then both apply, and the next poll is a prompt one (here at the grid slot:
    /// every prompt place is taken, so no tick starts).
    #[tokio::test]
    async fn a_change_during_a_tick_applies_when_it_ends() {
        let (ctx, _, _) = super::super::schedule_tests::sample_task();
        let (cell, s, v) = parked(&ctx);
        let _all = ctx
            .prompt_polls
            .clone()
            .try_acquire_many_owned(crate::context::PROMPT_POLLS as u32)
            .unwrap();
        let mut new = (*v.config).clone();
        new.polling_interval = Duration::from_secs(99);
        cell.change(Change::Spec(Versioned {
            config: Arc::new(new),
            generation: Some(2),
        }));
        cell.change(Change::Lease);
        {
            let inner = cell.lock();
            assert!(inner.pending.is_some() && inner.lease_changed && inner.idle.is_none());
        }
        cell.ticked(s, tokio::time::Instant::now(), false);
        let inner = cell.lock();
        let s = inner.idle.as_ref().expect("parked until its slot");
        assert_eq!(s.cfg.polling_interval, Duration::from_secs(99));
        assert_eq!(s.generation, 2);
        assert!(inner.pending.is_none() && !inner.lease_changed && inner.tick.is_none());
        assert_eq!(inner.token, 1, "one wake-up set, on the clock");
    }

    /// A change to a waiting scaler polls at once while a prompt place is free; a stopped
    /// scaler is not parked again when its tick ends.
    #[tokio::test]
    async fn a_change_to_a_waiting_scaler_polls_at_once_and_a_stopped_one_stays_stopped() {
        let (ctx, _, _) = super::super::schedule_tests::sample_task();
        let (cell, s, v) = parked(&ctx);
        {
            let mut inner = cell.lock();
            let slot = s.next_slot(tokio::time::Instant::now());
            cell.wake_at(&mut inner, s, slot);
            assert!(inner.idle.is_some() && inner.tick.is_none());
        }
        cell.change(Change::Spec(v.clone()));
        let scaler = {
            let mut inner = cell.lock();
            assert!(inner.tick.is_some(), "a tick started at once");
            assert!(inner.idle.is_none());
            inner.tick.take().unwrap().abort();
            inner.stopped = true;
            Scaler::new(
                ScalerKey::new(SourceKind::Dir, "ns", "s"),
                ctx.clone(),
                v.config.clone(),
                0,
            )
        };
        cell.ticked(scaler, tokio::time::Instant::now(), false);
        assert!(cell.lock().idle.is_none(), "a stopped scaler is dropped");
    }

    /// Past its endpoint's bound, a scaler whose time came waits in line as its cell (no tick,
    /// no task), at the head of the line when its poll was asked for at once, and starts as
    /// soon as a place comes free.
    #[tokio::test]
    async fn past_its_endpoints_bound_a_scaler_waits_in_line_as_its_cell() {
        struct Hold;
        impl Admit for Hold {
            fn admit(self: Arc<Self>, _: u64, pass: Pass) -> Option<Pass> {
                Some(pass)
            }
        }
        let (ctx, key, v) = super::super::schedule_tests::sample_task();
        let lane = "t:7233";
        let bound = crate::gate::TICKS_PER_ENDPOINT;
        let hold: Arc<dyn Admit> = Arc::new(Hold);
        let mut held: Vec<Pass> = (0..bound)
            .map(|_| ctx.gate.enter(lane, Arc::downgrade(&hold), 0, false))
            .collect::<Option<_>>()
            .expect("places up to the bound");
        assert!(
            ctx.gate
                .enter(lane, Arc::downgrade(&hold), 0, false)
                .is_none()
        );
        let handle = spawn(key, v, None, ctx.clone());
        {
            let inner = handle.cell.lock();
            let s = inner.idle.as_ref().expect("it waits as its cell");
            assert_eq!(s.lane(), lane);
            assert!(inner.tick.is_none(), "no tick past the bound");
            assert!(inner.permit.is_some(), "its start is a prompt poll");
        }
        assert_eq!(ctx.gate.load(lane), (bound, 2));
        held.pop();
        {
            let inner = handle.cell.lock();
            assert!(
                inner.tick.is_some(),
                "started when a place came free, ahead of the line"
            );
            assert!(inner.idle.is_none() && inner.permit.is_none());
        }
        assert_eq!(ctx.gate.load(lane), (bound, 1));
        assert_eq!(
            ctx.gate.load("elsewhere:7233"),
            (0, 0),
            "other endpoints' places are untouched"
        );
    }

    /// A prompt poll (here the scaler's start) whose read fails is tried again after
    /// PROMPT_RETRY, as a prompt poll, not at its grid slot five minutes away; a retry that
    /// fails too waits for the grid slot.
    #[tokio::test]
    async fn a_failed_prompt_read_is_retried_soon_once() {
        // The grid offset hashes the endpoint, so its port: one whose first grid slot is
        // well past the retry (else the slot comes first, as it should, and this test
        // would see the slot, not the retry).
        let cfg = loop {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = closed.local_addr().unwrap();
            drop(closed);
            let yaml = format!(
                "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  scaleTargetRef: {{name: w}}\n  pollingInterval: 300\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"{addr}\", taskQueue: q}}\n"
            );
            let cfg = crate::source::dir::parse_file(std::path::Path::new("s.yaml"), &yaml)
                .unwrap()
                .remove(0);
            if crate::scaler::poll_offset(&cfg) >= Duration::from_secs(60) {
                break cfg;
            }
        };
        let ctx = Context::new(
            crate::target::Targets::Simulated,
            crate::guard::Guard::alone(),
        );
        let handle = spawn(
            ScalerKey::new(SourceKind::Dir, "ns", "s"),
            Versioned {
                config: Arc::new(cfg),
                generation: None,
            },
            None,
            ctx.clone(),
        );
        let cell = handle.cell.clone();
        // Until the tick that set wake-up `token` has ended: what it left.
        let parked = |token: u32| {
            let cell = cell.clone();
            async move {
                loop {
                    {
                        let inner = cell.lock();
                        if inner.token >= token && inner.idle.is_some() {
                            return (inner.retried, inner.permit.is_some());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let wait = |secs| Duration::from_secs(secs);
        let first = tokio::time::timeout(wait(10), parked(2)).await;
        assert_eq!(first, Ok((true, true)), "a retry, prompt, is set");
        let retried_at = tokio::time::Instant::now();
        let second = tokio::time::timeout(PROMPT_RETRY + wait(10), parked(3))
            .await
            .expect("the retry came, long before the grid slot");
        // Not at once (a loaded machine may see the first park late, hence the margin), and
        // not at the grid slot, a minute or more away.
        assert!(retried_at.elapsed() >= PROMPT_RETRY - Duration::from_secs(1));
        assert_eq!(
            second,
            (false, false),
            "no second retry: the grid slot is next"
        );
    }

    /// A Temporal that takes the connection and never answers holds a tick in its read (until
    /// the connect timeout, 20 s here, or the RPC's deadline, 10 s); a new spec ends that read
    /// at once, and the scaler goes on with the new spec.
    #[tokio::test]
    async fn a_new_spec_ends_a_tick_still_reading_for_the_old_one() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let (reading_tx, reading) = tokio::sync::oneshot::channel();
        let _held = tokio::spawn(async move {
            let mut conns = Vec::new();
            let mut reading_tx = Some(reading_tx);
            while let Ok((c, _)) = silent.accept().await {
                conns.push(c);
                if let Some(tx) = reading_tx.take() {
                    let _ = tx.send(());
                }
            }
        });
        let spec = |interval: u64| {
            let yaml = format!(
                "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  scaleTargetRef: {{name: w}}\n  pollingInterval: {interval}\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"{addr}\", taskQueue: q, minConnectTimeout: \"20\"}}\n"
            );
            let cfg = crate::source::dir::parse_file(std::path::Path::new("s.yaml"), &yaml)
                .unwrap()
                .remove(0);
            Versioned {
                config: Arc::new(cfg),
                generation: None,
            }
        };
        let ctx = Context::new(
            crate::target::Targets::Simulated,
            crate::guard::Guard::alone(),
        );
        let handle = spawn(
            ScalerKey::new(SourceKind::Dir, "ns", "s"),
            spec(5),
            None,
            ctx.clone(),
        );
        let cell = handle.cell.clone();
        assert!(cell.lock().tick.is_some(), "the first poll is at once");
        // The first tick is reading: the server took its connection.
        reading.await.unwrap();
        assert_eq!(cell.lock().token, 1);
        handle.update(spec(77));
        // The first tick's end parks the scaler again (a second wake-up, the first being its
        // start), with the new spec applied.
        let ended = async {
            loop {
                {
                    let inner = cell.lock();
                    if inner.token >= 2 {
                        return inner.pending.is_none();
                    }
                }
                tokio::task::yield_now().await;
            }
        };
        let applied = tokio::time::timeout(Duration::from_secs(3), ended)
            .await
            .expect("the tick reading for the old spec gave way");
        assert!(applied);
    }
}
