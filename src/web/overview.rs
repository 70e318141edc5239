//! What the status page shows, gathered from the agent: the header's facts (version, lease,
//! Temporal connections, the config directory's last load), and the scalers that match the
//! filter, in the page's order, a page at a time. [`super::page`] renders it.

use crate::context::Context;
use crate::guard::LeaseSeen;
use crate::spec::ScalerKey;
use crate::state::{ConfigLoad, ScalerView};
use crate::temporal::ConnectionHealth;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Scalers per page: a chart is a few kilobytes, and 10,000 of them are not one page.
pub const PAGE_SIZE: usize = 50;
/// The page's refresh bounds, whatever the scalers' pollingIntervals.
const REFRESH_SECS: (u32, u32) = (1, 60);
/// The refresh without a scaler to take the interval from.
const DEFAULT_REFRESH_SECS: u32 = 15;

/// `GET /?namespace=…&name=…&sort=…&page=…`, every field optional and taken leniently (a
/// page that is not a number is the first page, never an error).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Failing scalers first, then the most recently scaled, then by name.
    Recent,
    /// By source, namespace and name, as `/scalers`.
    Name,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Recent => "recent",
            Sort::Name => "name",
        }
    }
}

/// The filter, order and page asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Exact namespace; empty: all.
    pub namespace: String,
    /// Part of the name, any case; empty: all.
    pub name: String,
    pub sort: Sort,
    /// 1-based.
    pub page: usize,
}

impl Selection {
    pub fn from_query(q: &PageQuery) -> Selection {
        let trimmed = |s: &Option<String>| s.as_deref().unwrap_or("").trim().to_string();
        Selection {
            namespace: trimmed(&q.namespace),
            name: trimmed(&q.name),
            sort: match q.sort.as_deref() {
                Some("name") => Sort::Name,
                _ => Sort::Recent,
            },
            page: q
                .page
                .as_deref()
                .and_then(|p| p.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    pub fn keeps(&self, v: &ScalerView) -> bool {
        let ns = v.namespace.as_deref().unwrap_or("");
        let name = v.name.as_deref().unwrap_or("");
        (self.namespace.is_empty() || ns == self.namespace)
            && (self.name.is_empty() || name.to_lowercase().contains(&self.name.to_lowercase()))
    }

    /// The query string of this selection on another page, percent-encoded (not yet
    /// HTML-escaped), for links.
    pub fn query_string(&self, page: usize) -> String {
        let mut parts = Vec::new();
        if !self.namespace.is_empty() {
            parts.push(format!("namespace={}", percent_encode(&self.namespace)));
        }
        if !self.name.is_empty() {
            parts.push(format!("name={}", percent_encode(&self.name)));
        }
        if self.sort != Sort::Recent {
            parts.push(format!("sort={}", self.sort.as_str()));
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        format!("?{}", parts.join("&"))
    }
}

/// A query value: unreserved characters as they are, every other byte as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a scaler is sorted by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rank {
    pub failing: bool,
    pub scaled: Option<jiff::Timestamp>,
    pub key: ScalerKey,
}

impl Rank {
    pub fn of(v: &ScalerView) -> Rank {
        Rank {
            failing: v.failing(),
            scaled: v.last_scale_time.as_deref().and_then(|t| t.parse().ok()),
            key: ScalerKey {
                source: v.source,
                namespace: v.namespace.clone().unwrap_or_default(),
                name: v.name.clone().unwrap_or_default(),
            },
        }
    }
}

/// The page's order: by name, or failing first, then the most recently scaled (never scaled
/// last), then by name.
pub fn order(sort: Sort, a: &Rank, b: &Rank) -> Ordering {
    match sort {
        Sort::Name => a.key.cmp(&b.key),
        Sort::Recent => b
            .failing
            .cmp(&a.failing)
            .then_with(|| match (a.scaled, b.scaled) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| a.key.cmp(&b.key)),
    }
}

/// This replica's part.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// No cluster: nothing to guard, the agent acts alone.
    Alone,
    /// Holds the Lease, since then.
    Leader { since: Option<jiff::Timestamp> },
    /// Another replica holds the Lease (or nobody yet): this one loads the specs and waits.
    Standby,
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct Overview {
    pub version: &'static str,
    pub role: Role,
    pub dry_run: bool,
    /// No cluster: targets are simulated.
    pub simulated: bool,
    pub lease: Option<LeaseSeen>,
    pub connections: Vec<ConnectionHealth>,
    pub config: Option<ConfigLoad>,
    /// Broken files that no scaler represents.
    pub broken_files: Vec<(PathBuf, String)>,
    pub total: usize,
    pub failing: usize,
    pub namespaces: Vec<String>,
    pub selection: Selection,
    /// Scalers that match the filter, and the page's share of them, in order.
    pub matched: usize,
    pub rows: Vec<ScalerView>,
    /// The histories' clock (seconds since the agent started) and the wall clock, now.
    pub now: u32,
    pub wall: jiff::Timestamp,
    /// The shortest pollingInterval among the rows, within bounds: the script refreshes at it.
    pub refresh_secs: u32,
}

impl Overview {
    pub fn pages(&self) -> usize {
        self.matched.div_ceil(PAGE_SIZE).max(1)
    }
}

/// When an `Instant` was, on the wall clock.
pub fn wall_time(at: Instant) -> Option<jiff::Timestamp> {
    let ago: Duration = Instant::now().saturating_duration_since(at);
    jiff::Timestamp::now().checked_sub(ago).ok()
}

/// Gather the page: the header's facts, and the selected scalers. The scalers are ranked a
/// store page at a time (the lock is held for one page only), then only the rows shown are
/// copied.
pub fn gather(ctx: &Context, q: &PageQuery) -> Overview {
    let selection = Selection::from_query(q);
    let mut ranks = Vec::new();
    let (mut total, mut failing) = (0, 0);
    let mut namespaces = BTreeSet::new();
    let mut after = None;
    loop {
        after = ctx.state.visit_page(after.as_ref(), 500, |v| {
            total += 1;
            failing += usize::from(v.failing());
            if let Some(ns) = &v.namespace {
                namespaces.insert(ns.clone());
            }
            if selection.keeps(v) {
                ranks.push(Rank::of(v));
            }
        });
        if after.is_none() {
            break;
        }
    }
    ranks.sort_by(|a, b| order(selection.sort, a, b));
    let matched = ranks.len();
    let pages = matched.div_ceil(PAGE_SIZE).max(1);
    let selection = Selection {
        page: selection.page.min(pages),
        ..selection
    };
    let rows: Vec<ScalerView> = ranks
        .iter()
        .skip((selection.page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .filter_map(|r| ctx.state.get(&r.key))
        .collect();
    let refresh_secs = rows
        .iter()
        .filter_map(|v| v.history.as_ref().map(|h| h.interval_secs()))
        .filter(|s| *s > 0)
        .min()
        .unwrap_or(DEFAULT_REFRESH_SECS)
        .clamp(REFRESH_SECS.0, REFRESH_SECS.1);
    let leader = ctx.guard.state();
    let role = if !leader.leader {
        Role::Standby
    } else if ctx.lease.is_none() && leader.valid_until.is_none() {
        Role::Alone
    } else {
        Role::Leader {
            since: leader.since.and_then(wall_time),
        }
    };
    let now = tokio::time::Instant::now().saturating_duration_since(ctx.epoch);
    Overview {
        version: env!("CARGO_PKG_VERSION"),
        role,
        dry_run: ctx.targets.is_dry_run(),
        simulated: matches!(ctx.targets, crate::target::Targets::Simulated),
        lease: ctx
            .lease
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        connections: ctx.pool.connections(),
        config: ctx.state.config_load(),
        broken_files: ctx.state.broken_files(),
        total,
        failing,
        namespaces: namespaces.into_iter().map(|n| n.to_string()).collect(),
        selection,
        matched,
        rows,
        now: now.as_secs().min(u64::from(u32::MAX)) as u32,
        wall: jiff::Timestamp::now(),
        refresh_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SourceKind;

    fn view(ns: &str, name: &str, scaled: Option<&str>, failing: bool) -> ScalerView {
        let mut v = ScalerView::new(&ScalerKey {
            source: SourceKind::Dir,
            namespace: ns.into(),
            name: name.into(),
        });
        v.last_scale_time = scaled.map(String::from);
        v.error = failing.then(|| "boom".to_string());
        v
    }

    #[test]
    fn failing_first_then_most_recently_scaled_then_by_name() {
        let views = [
            view("a", "never", None, false),
            view("a", "old", Some("2025-01-01T00:00:00Z"), false),
            view("b", "new", Some("2025-01-01T00:00:05.5Z"), false),
            view("b", "broken", None, true),
            view(
                "a",
                "newer-same-second",
                Some("2025-01-01T00:00:05Z"),
                false,
            ),
            view("a", "also-never", None, false),
        ];
        let mut ranks: Vec<Rank> = views.iter().map(Rank::of).collect();
        ranks.sort_by(|a, b| order(Sort::Recent, a, b));
        let names: Vec<&str> = ranks.iter().map(|r| &*r.key.name).collect();
        assert_eq!(
            names,
            [
                "broken",
                "new",
                "newer-same-second",
                "old",
                "also-never",
                "never"
            ]
        );
        ranks.sort_by(|a, b| order(Sort::Name, a, b));
        let names: Vec<&str> = ranks.iter().map(|r| &*r.key.name).collect();
        assert_eq!(
            names,
            [
                "also-never",
                "never",
                "newer-same-second",
                "old",
                "broken",
                "new"
            ]
        );
    }

    #[test]
    fn the_filter_is_an_exact_namespace_and_part_of_the_name() {
        let q = PageQuery {
            namespace: Some(" shop ".into()),
            name: Some("Work".into()),
            sort: Some("name".into()),
            page: Some("x".into()),
        };
        let s = Selection::from_query(&q);
        assert_eq!((s.sort, s.page), (Sort::Name, 1));
        assert!(s.keeps(&view("shop", "orders-worker", None, false)));
        assert!(!s.keeps(&view("shop-2", "orders-worker", None, false)));
        assert!(!s.keeps(&view("shop", "orders", None, false)));
        assert!(Selection::from_query(&PageQuery::default()).keeps(&view("x", "y", None, false)));
    }

    #[test]
    fn links_carry_the_selection_percent_encoded() {
        let s = Selection {
            namespace: "shop".into(),
            name: "a&b <c>".into(),
            sort: Sort::Name,
            page: 1,
        };
        assert_eq!(
            s.query_string(3),
            "?namespace=shop&name=a%26b%20%3Cc%3E&sort=name&page=3"
        );
        let plain = Selection::from_query(&PageQuery::default());
        assert_eq!(plain.query_string(1), "?");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
