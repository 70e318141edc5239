//! One worker listing per namespace (the capacity signal at scale): every heartbeat names its
//! task queue, Worker Deployment and build id, so one namespace-wide `ListWorkers` (1,000
//! workers a page), matched on the agent's side as the server matches a query
//! ([`WorkerFilter::matches`]), serves every trigger of the namespace. Per (endpoint,
//! namespace) the agent takes the cheaper of the two: a listing per distinct worker query, or
//! the pages of one namespace-wide listing, by the numbers it saw in the last minute (the
//! distinct queries asked, and the pages the last namespace-wide listing took). A namespace
//! listing is shared for the polling interval of the scaler that asked for it.

use super::coalesce::SharedRead;
use super::workers::{Listing, WorkerFilter, WorkersKey};
use super::{ConnKey, TemporalError, TemporalPool, WorkersRead};
use futures::FutureExt;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the distinct queries of a namespace are counted before they are counted afresh.
const PLAN_WINDOW: Duration = Duration::from_secs(60);
/// After a namespace-wide listing turned out dearer than the queries, how long the agent
/// stays with the queries before it weighs again.
const PER_QUERY_BACKOFF: Duration = Duration::from_secs(600);

type NsKey = (ConnKey, Arc<str>);

/// What the agent knows of a namespace's worker reads.
struct Plan {
    since: Instant,
    /// Distinct worker queries asked since `since` (hashed: a namespace may have thousands).
    queries: HashSet<u64>,
    /// How many the window before had.
    last: usize,
    /// Pages of the last namespace-wide listing.
    pages: Option<usize>,
    per_query_until: Option<Instant>,
}

#[derive(Default)]
pub(super) struct NamespaceWorkers {
    plans: Mutex<HashMap<NsKey, Plan>>,
    listings: Mutex<HashMap<NsKey, (Instant, SharedRead<Listing>)>>,
}

impl NamespaceWorkers {
    /// Note `query` for its namespace and say whether one namespace-wide listing is cheaper.
    fn namespace_wide(&self, key: &NsKey, query: &str, now: Instant) -> bool {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let p = plans.entry(key.clone()).or_insert_with(|| Plan {
            since: now,
            queries: HashSet::new(),
            last: 0,
            pages: None,
            per_query_until: None,
        });
        if now.saturating_duration_since(p.since) >= PLAN_WINDOW {
            p.last = p.queries.len();
            p.queries.clear();
            p.since = now;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        query.hash(&mut h);
        p.queries.insert(h.finish());
        if p.per_query_until.is_some_and(|u| now < u) {
            return false;
        }
        let queries = p.last.max(p.queries.len());
        queries > p.pages.unwrap_or(1)
    }

    /// A namespace-wide listing took `pages`: if that is not fewer than the queries it
    /// served, go back to the queries for a while.
    fn note_pages(&self, key: &NsKey, pages: usize, now: Instant) {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get_mut(key) {
            p.pages = Some(pages);
            if pages >= p.last.max(p.queries.len()) {
                p.per_query_until = Some(now + PER_QUERY_BACKOFF);
            }
        }
    }
}

/// What `filter` matches in a namespace's listing, as the server would list it.
fn matched(listing: Listing, filter: &WorkerFilter) -> WorkersRead {
    match listing {
        Listing::Workers(all, _) => WorkersRead::Heartbeats(Arc::new(
            all.iter()
                .filter(|w| filter.matches(w))
                .map(|w| w.sample.clone())
                .collect(),
        )),
        Listing::Unavailable(why) => WorkersRead::Unavailable(why),
    }
}

impl TemporalPool {
    /// The workers a trigger's query lists, through the cheaper read: its own `ListWorkers`
    /// (coalesced), or the namespace's listing matched here.
    pub(super) async fn workers_of(
        self: &Arc<Self>,
        conn: ConnKey,
        filter: WorkerFilter,
        namespace: &str,
        interval: Duration,
    ) -> Result<WorkersRead, TemporalError> {
        let query = filter.query();
        let key: NsKey = (conn.clone(), namespace.into());
        let now = Instant::now();
        if !self.namespace_workers.namespace_wide(&key, &query, now) {
            return self.query_workers(conn, namespace, query).await;
        }
        let listing = self.namespace_listing(&key, interval, now).await?;
        Ok(matched(listing, &filter))
    }

    /// A trigger's workers from its namespace's listing, matched here: the read the pool takes
    /// when it is the cheaper one (tests compare it with the trigger's own query).
    pub async fn workers_from_namespace_listing(
        self: &Arc<Self>,
        t: &crate::spec::TriggerConfig,
    ) -> Result<WorkersRead, TemporalError> {
        let conn = Box::pin(super::conn_key(t, self.secrets.get())).await?;
        let key: NsKey = (conn, t.namespace.clone());
        let listing = self
            .namespace_listing(&key, Duration::ZERO, Instant::now())
            .await?;
        Ok(matched(listing, &WorkerFilter::of(t)))
    }

    /// The namespace's listing: the one made within `max_age` (or still in flight), else a
    /// new one.
    fn namespace_listing(
        self: &Arc<Self>,
        key: &NsKey,
        max_age: Duration,
        now: Instant,
    ) -> SharedRead<Listing> {
        let mut listings = self
            .namespace_workers
            .listings
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((at, f)) = listings.get(key)
            && (now.saturating_duration_since(*at) < max_age || f.peek().is_none())
        {
            return f.clone();
        }
        let this = Arc::clone(self);
        let k = WorkersKey {
            conn: key.0.clone(),
            namespace: key.1.to_string(),
            query: String::new(),
        };
        let ns_key = key.clone();
        let f = async move {
            let res = this.listing(&k).await.map_err(|e| TemporalError {
                kind: e.kind,
                message: format!(
                    "{} namespace={} ListWorkers (the whole namespace): {}",
                    k.conn.url, k.namespace, e.message
                ),
            });
            if let Ok(Listing::Workers(_, pages)) = &res {
                this.namespace_workers
                    .note_pages(&ns_key, *pages, Instant::now());
            }
            res
        }
        .boxed()
        .shared();
        listings.insert(key.clone(), (now, f.clone()));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cheaper_read_by_the_numbers() {
        let yaml = "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {name: s}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: temporal\n    metadata: {endpoint: \"t:7233\", taskQueue: q}\n";
        let cfg = crate::source::dir::parse_file(std::path::Path::new("s.yaml"), yaml).unwrap();
        let conn = super::super::conn_key(&cfg[0].triggers[0], None)
            .await
            .unwrap();
        let key = || (conn.clone(), Arc::from("default"));
        let ns = NamespaceWorkers::default();
        let t0 = Instant::now();
        // One query: its own listing (1 call) is as cheap as a namespace page.
        assert!(!ns.namespace_wide(&key(), "TaskQueue = 'a'", t0));
        // A second distinct query: one namespace page beats two listings.
        assert!(ns.namespace_wide(&key(), "TaskQueue = 'b'", t0));
        // The namespace took 3 pages for 2 queries: back to the queries for a while.
        ns.note_pages(&key(), 3, t0);
        assert!(!ns.namespace_wide(&key(), "TaskQueue = 'c'", t0));
        assert!(!ns.namespace_wide(&key(), "TaskQueue = 'd'", t0 + PER_QUERY_BACKOFF / 2));
        // Past the backoff: 3 queries a minute against 3 pages stay with the queries; a 4th
        // distinct one makes the namespace cheaper again.
        let later = t0 + PER_QUERY_BACKOFF + Duration::from_secs(61);
        for q in ["e", "f", "g"] {
            assert!(!ns.namespace_wide(&key(), &format!("TaskQueue = '{q}'"), later));
        }
        assert!(ns.namespace_wide(&key(), "TaskQueue = 'h'", later));
    }
}
