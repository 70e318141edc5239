//! A scaler's chart on the status page: inline SVG drawn on the server from its [`History`],
//! so the page needs no script or library to show it. Two panels over the same time axis:
//! each trigger's backlog (and slot utilization, dashed, 0–100 % on the right axis), and the
//! current (solid) and desired (dashed) replicas as steps; a marker at each scale event,
//! labelled `from → to` and the rule; and, with the Schedules signal, each schedule's next
//! action as a marker ahead of now (the axis then runs a quarter of its span into the future).
//! Pure: the page passes the time.

use super::page::escape;
use crate::state::history::{History, Point, Replicas, WINDOW_SECS};
use std::fmt::Write;

/// The drawing's size and the panels' bounds, in SVG units (pixels at 100 %).
pub const WIDTH: f64 = 560.0;
pub const HEIGHT: f64 = 178.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = WIDTH - 40.0;
/// Two rows of event labels above the panels.
const LABEL_ROWS: [f64; 2] = [9.0, 20.0];
const BACKLOG_TOP: f64 = 28.0;
const BACKLOG_BOTTOM: f64 = 96.0;
const REPLICAS_TOP: f64 = 108.0;
const REPLICAS_BOTTOM: f64 = 148.0;
const AXIS_LABELS: f64 = 164.0;
/// About the width of a character of an event label (9 px sans-serif), and the space kept
/// between two labels.
const LABEL_CHAR_WIDTH: f64 = 5.0;
const LABEL_GAP: f64 = 6.0;

/// The time spans a chart may show, with the step of their time labels: the shortest that
/// holds the history, up to the hour, so a young scaler is not a few pixels at the right edge.
const SPANS: [(u32, u32); 5] = [
    (60, 15),
    (300, 60),
    (900, 300),
    (1800, 600),
    (WINDOW_SECS, 900),
];

/// Trigger colours, in order; the page's legend uses the same (classes `c0`…).
pub const PALETTE: [&str; 6] = [
    "#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2",
];

pub fn color(trigger: usize) -> &'static str {
    PALETTE[trigger % PALETTE.len()]
}

/// A linear map from a domain to a range of SVG coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 {
            return self.r0;
        }
        let v = v.clamp(self.d0.min(self.d1), self.d0.max(self.d1));
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1): the top of a value axis.
pub fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * e)
}

/// A value for an axis label: `12`, `3.5k`, `2M`.
pub fn compact(v: f64) -> String {
    let (v, unit) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s}{unit}")
}

/// "45 s", "12 min", "1 h 5 min".
pub fn duration(secs: u32) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s % 3600 < 60 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// A polyline through the points (x, y); `None` lifts the pen, so a failed read is a gap. A
/// lone point is a zero-length segment, which a round line cap shows as a dot.
pub fn line_path(points: &[(f64, Option<f64>)]) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (i, (x, y)) in points.iter().enumerate() {
        let Some(y) = y else {
            pen_down = false;
            continue;
        };
        if pen_down {
            let _ = write!(d, "L{x:.1},{y:.1}");
        } else {
            let _ = write!(d, "M{x:.1},{y:.1}");
            let alone = points.get(i + 1).is_none_or(|(_, next)| next.is_none());
            if alone {
                d.push_str("h0.1");
            }
            pen_down = true;
        }
    }
    d
}

/// Steps through the points (x, y): each value holds until the next point, the last until
/// `x_end`.
pub fn step_path(points: &[(f64, f64)], x_end: f64) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i == 0 {
            let _ = write!(d, "M{x:.1},{y:.1}");
        } else {
            let _ = write!(d, "H{x:.1}V{y:.1}");
        }
    }
    if !points.is_empty() {
        let _ = write!(d, "H{x_end:.1}");
    }
    d
}

/// The span shown (and its label step): the shortest that holds the history.
fn window(h: &History, now: u32) -> (u32, u32) {
    let age = h.first_at().map_or(0, |t| now.saturating_sub(t));
    SPANS
        .into_iter()
        .find(|(span, _)| *span >= age)
        .unwrap_or(SPANS[SPANS.len() - 1])
}

/// The chart of a scaler's history as of `now` (seconds on the history's clock). `triggers`
/// names the series, in order.
/// A schedule's next action, ahead of now (the Schedules signal).
#[derive(Clone, Debug, PartialEq)]
pub struct Upcoming<'a> {
    pub schedule: &'a str,
    pub in_secs: u32,
}

pub fn render(out: &mut String, h: &History, triggers: &[&str], now: u32, upcoming: &[Upcoming]) {
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img""#
    );
    if h.is_empty() {
        let _ = write!(
            out,
            r#" data-points="0" aria-label="no samples yet"><text x="{}" y="{}" text-anchor="middle" class="muted">no samples yet: this scaler has not polled while this agent led</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return;
    }
    let (span, step) = window(h, now);
    let since = now.saturating_sub(span);
    // Room for the next actions of schedules: a quarter of the span after now.
    let ahead = if upcoming.is_empty() { 0 } else { span / 4 };
    // From `now - span`, which is before the agent started while it is younger than the span.
    let x = Scale {
        d0: f64::from(now) - f64::from(span),
        d1: f64::from(now) + f64::from(ahead),
        r0: LEFT,
        r1: RIGHT,
    };
    let backlogs: Vec<Vec<Point>> = (0..h.triggers()).map(|i| h.backlog(i, since)).collect();
    let utilizations: Vec<Vec<Point>> =
        (0..h.triggers()).map(|i| h.utilization(i, since)).collect();
    let steps = h.replicas(since);
    let points: usize = backlogs.iter().map(Vec::len).sum();
    let _ = write!(
        out,
        r#" data-points="{points}" data-capacity="{}" data-span="{span}" aria-label="backlog and replicas over the last {}">"#,
        h.points(),
        duration(span)
    );

    let peak = backlogs
        .iter()
        .flatten()
        .filter_map(|p| p.value)
        .fold(0.0, f64::max);
    let backlog_y = Scale {
        d0: 0.0,
        d1: nice_ceiling(peak),
        r0: BACKLOG_BOTTOM,
        r1: BACKLOG_TOP,
    };
    let most_replicas = steps
        .iter()
        .map(|r| u32::from(r.current.max(r.desired)))
        .max()
        .unwrap_or(0)
        .max(1);
    let replicas_y = Scale {
        d0: 0.0,
        d1: f64::from(most_replicas),
        r0: REPLICAS_BOTTOM,
        r1: REPLICAS_TOP,
    };
    let with_utilization = utilizations.iter().any(|u| !u.is_empty());
    axes(
        out,
        (span, step),
        &x,
        backlog_y.d1,
        most_replicas,
        with_utilization,
    );

    for (i, series) in backlogs.iter().enumerate() {
        let name = triggers.get(i).copied().unwrap_or("");
        backlog_series(out, i, name, series, &x, &backlog_y);
    }
    let util_y = Scale {
        d0: 0.0,
        d1: 1.0,
        r0: BACKLOG_BOTTOM,
        r1: BACKLOG_TOP,
    };
    for (i, series) in utilizations.iter().enumerate() {
        if series.is_empty() {
            continue;
        }
        let coords: Vec<(f64, Option<f64>)> = series
            .iter()
            .map(|p| (x.map(f64::from(p.at)), p.value.map(|v| util_y.map(v))))
            .collect();
        let last = series.iter().rev().find_map(|p| p.value);
        let _ = write!(
            out,
            r#"<path class="utilization" data-points="{}" d="{}" stroke="{}"><title>{}: slot utilization, last {}</title></path>"#,
            series.len(),
            line_path(&coords),
            color(i),
            escape(triggers.get(i).copied().unwrap_or("")),
            last.map_or("unknown".to_string(), |u| format!("{:.0} %", u * 100.0)),
        );
    }
    replica_steps(out, &steps, &x, &replicas_y, h.last_at());
    events(out, h, since, now, &x);
    schedules(out, upcoming, now, ahead, &x);
    out.push_str("</svg>");
}

/// Each schedule's next action as a marker ahead of now, labelled with its schedule; one
/// further than the chart reaches is drawn at its right edge, labelled with how far it is.
fn schedules(out: &mut String, upcoming: &[Upcoming], now: u32, ahead: u32, x: &Scale) {
    for (i, u) in upcoming.iter().enumerate() {
        let at = now.saturating_add(u.in_secs.min(ahead));
        let ux = x.map(f64::from(at));
        let label = if u.in_secs <= ahead {
            u.schedule.to_string()
        } else {
            format!("{} in {}", u.schedule, duration(u.in_secs))
        };
        let y = LABEL_ROWS[i % LABEL_ROWS.len()];
        let _ = write!(
            out,
            r#"<g class="schedule" data-schedule="{}" data-in="{}"><title>schedule {} fires in {}</title><path d="M{ux:.1},{}V{REPLICAS_BOTTOM}"/><text x="{:.1}" y="{y}" text-anchor="end">{}</text></g>"#,
            escape(u.schedule),
            u.in_secs,
            escape(u.schedule),
            duration(u.in_secs),
            y + 2.0,
            ux - 2.0,
            escape(&label)
        );
    }
}

/// Grid lines, the value labels of both panels, and the time labels.
fn axes(
    out: &mut String,
    (span, step): (u32, u32),
    x: &Scale,
    backlog_max: f64,
    replicas_max: u32,
    utilization: bool,
) {
    for (top, bottom, name) in [
        (BACKLOG_TOP, BACKLOG_BOTTOM, "backlog"),
        (REPLICAS_TOP, REPLICAS_BOTTOM, "replicas"),
    ] {
        let _ = write!(
            out,
            r#"<path class="grid" d="M{LEFT},{top}H{RIGHT}M{LEFT},{bottom}H{RIGHT}"/><text class="panel" x="{}" y="{}">{name}</text>"#,
            LEFT + 3.0,
            top + 9.0
        );
    }
    let labels = [
        (BACKLOG_TOP, compact(backlog_max)),
        (BACKLOG_BOTTOM, "0".to_string()),
        (REPLICAS_TOP, replicas_max.to_string()),
        (REPLICAS_BOTTOM, "0".to_string()),
    ];
    for (y, text) in labels {
        let _ = write!(
            out,
            r#"<text class="axis" x="{}" y="{}" text-anchor="end">{text}</text>"#,
            LEFT - 4.0,
            y + 3.5
        );
    }
    if utilization {
        let _ = write!(
            out,
            r#"<text class="axis" x="{x}" y="{}">100 %</text><text class="axis" x="{x}" y="{}">0 %</text>"#,
            BACKLOG_TOP + 3.5,
            BACKLOG_BOTTOM + 3.5,
            x = RIGHT + 4.0
        );
    }
    let ticks = span / step.max(1);
    let now = x.d0 + f64::from(span);
    if now < x.d1 {
        // The future, where schedules' next actions are drawn.
        let _ = write!(
            out,
            r#"<rect class="future" x="{:.1}" y="{BACKLOG_TOP}" width="{:.1}" height="{}"/>"#,
            x.map(now),
            RIGHT - x.map(now),
            REPLICAS_BOTTOM - BACKLOG_TOP
        );
    }
    for k in 0..=ticks {
        let ago = span - step * k;
        let xk = x.map(now - f64::from(ago));
        let label = if ago == 0 {
            "now".to_string()
        } else {
            format!("−{}", duration(ago))
        };
        let anchor = match k {
            0 => "start",
            k if k == ticks && now >= x.d1 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<path class="tick" d="M{xk:.1},{BACKLOG_TOP}V{REPLICAS_BOTTOM}"/><text class="axis" x="{xk:.1}" y="{AXIS_LABELS}" text-anchor="{anchor}">{label}</text>"#
        );
    }
}

fn backlog_series(out: &mut String, i: usize, name: &str, series: &[Point], x: &Scale, y: &Scale) {
    let coords: Vec<(f64, Option<f64>)> = series
        .iter()
        .map(|p| (x.map(f64::from(p.at)), p.value.map(|v| y.map(v))))
        .collect();
    let last = series.iter().rev().find_map(|p| p.value);
    let peak = series.iter().filter_map(|p| p.value).fold(0.0, f64::max);
    let failed = series.iter().filter(|p| p.value.is_none()).count();
    let _ = write!(
        out,
        r#"<path class="backlog" data-trigger="{i}" data-points="{}" d="{}" stroke="{}"><title>{}: backlog, last {}, peak {}{}</title></path>"#,
        series.len(),
        line_path(&coords),
        color(i),
        escape(name),
        last.map_or("unknown".to_string(), compact),
        compact(peak),
        if failed > 0 {
            format!(", {failed} failed read(s)")
        } else {
            String::new()
        }
    );
    if let Some((cx, Some(cy))) = coords.last() {
        let _ = write!(
            out,
            r#"<circle class="last" cx="{cx:.1}" cy="{cy:.1}" r="2.5" fill="{}"/>"#,
            color(i)
        );
    }
}

fn replica_steps(out: &mut String, steps: &[Replicas], x: &Scale, y: &Scale, last_at: u32) {
    let x_end = x.map(f64::from(last_at));
    for (class, pick) in [
        (
            "desired",
            (|r: &Replicas| r.desired) as fn(&Replicas) -> u16,
        ),
        ("current", |r: &Replicas| r.current),
    ] {
        let points: Vec<(f64, f64)> = steps
            .iter()
            .map(|r| (x.map(f64::from(r.at)), y.map(f64::from(pick(r)))))
            .collect();
        let last = steps.last().map(pick).unwrap_or(0);
        let _ = write!(
            out,
            r#"<path class="{class}" data-points="{}" d="{}"><title>{class} replicas: {last}</title></path>"#,
            points.len(),
            step_path(&points, x_end),
        );
    }
}

/// A marker per scale event: a line across both panels, and `from → to rule` above it. The
/// newest events are labelled first, in the first of the two label rows with room; a label
/// that fits in neither is left to the marker's tooltip.
fn events(out: &mut String, h: &History, since: u32, now: u32, x: &Scale) {
    let events: Vec<_> = h.events(since).collect();
    // Per label row: where the labels drawn so far (to the right) begin.
    let mut free_until = [f64::INFINITY; LABEL_ROWS.len()];
    for e in events.into_iter().rev() {
        let ex = x.map(f64::from(e.at));
        let label = format!("{} → {} {}", e.from, e.to, e.rule);
        let _ = write!(
            out,
            r#"<g class="scale-event" data-from="{}" data-to="{}" data-rule="{}"><title>scaled {} → {} ({}), {} ago</title>"#,
            e.from,
            e.to,
            e.rule,
            e.from,
            e.to,
            e.rule,
            duration(now.saturating_sub(e.at)),
        );
        let width = label.chars().count() as f64 * LABEL_CHAR_WIDTH;
        let (start, anchor, tx) = if ex + 3.0 + width <= WIDTH {
            (ex + 3.0, "start", ex + 3.0)
        } else {
            (ex - 3.0 - width, "end", ex - 3.0)
        };
        let row = (0..LABEL_ROWS.len())
            .find(|r| start >= 0.0 && start + width + LABEL_GAP <= free_until[*r]);
        let top = match row {
            Some(r) => {
                let _ = write!(
                    out,
                    r#"<text x="{tx:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                    LABEL_ROWS[r],
                    escape(&label)
                );
                free_until[r] = start;
                LABEL_ROWS[r] - 8.0
            }
            None => BACKLOG_TOP,
        };
        let _ = write!(out, r#"<path d="M{ex:.1},{top}V{REPLICAS_BOTTOM}"/></g>"#);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Rule;
    use crate::state::history::Sample;

    #[test]
    fn axis_tops_are_round_numbers() {
        let cases = [
            (0.0, 1.0),
            (1.0, 1.0),
            (1.5, 2.0),
            (3.0, 5.0),
            (12.0, 20.0),
            (50.0, 50.0),
            (51.0, 100.0),
            (999.0, 1000.0),
            (f64::NAN, 1.0),
        ];
        for (v, top) in cases {
            assert_eq!(nice_ceiling(v), top, "{v}");
        }
        assert_eq!(compact(12.0), "12");
        assert_eq!(compact(3500.0), "3.5k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(75), "1 min");
        assert_eq!(duration(900), "15 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(3900), "1 h 5 min");
    }

    #[test]
    fn a_scale_maps_and_clamps() {
        let s = Scale {
            d0: 0.0,
            d1: 10.0,
            r0: 100.0,
            r1: 0.0,
        };
        assert_eq!(s.map(0.0), 100.0);
        assert_eq!(s.map(5.0), 50.0);
        assert_eq!(s.map(20.0), 0.0, "clamped to the range");
        let flat = Scale { d1: 0.0, ..s };
        assert_eq!(flat.map(3.0), 100.0);
    }

    #[test]
    fn a_line_breaks_at_failed_reads_and_shows_lone_points() {
        assert_eq!(line_path(&[]), "");
        assert_eq!(
            line_path(&[(1.0, Some(2.0)), (3.0, Some(4.5)), (5.0, Some(6.0))]),
            "M1.0,2.0L3.0,4.5L5.0,6.0"
        );
        assert_eq!(
            line_path(&[
                (1.0, Some(2.0)),
                (2.0, Some(2.0)),
                (3.0, None),
                (4.0, Some(5.0)),
                (5.0, None),
                (6.0, Some(1.0)),
                (7.0, Some(1.0)),
            ]),
            "M1.0,2.0L2.0,2.0M4.0,5.0h0.1M6.0,1.0L7.0,1.0"
        );
        assert_eq!(line_path(&[(9.0, Some(1.0))]), "M9.0,1.0h0.1");
    }

    #[test]
    fn steps_hold_each_value_until_the_next() {
        assert_eq!(step_path(&[], 10.0), "");
        assert_eq!(
            step_path(&[(0.0, 50.0), (4.0, 20.0), (6.0, 30.0)], 10.0),
            "M0.0,50.0H4.0V20.0H6.0V30.0H10.0"
        );
    }

    #[test]
    fn the_chart_has_every_series_and_a_labelled_marker_per_scale() {
        let mut h = History::default();
        for t in 0..30u32 {
            h.record(&Sample {
                at: t,
                backlog: vec![Some(12.0), if t == 5 { None } else { Some(1.0) }],
                utilization: vec![None, Some(0.5)],
                current: if t < 10 { 0 } else { 3 },
                desired: if t < 10 { 0 } else { 3 },
                scaled: (t == 10).then_some((0, 3, Rule::TriggerMax)),
                interval_secs: 1,
                ..Default::default()
            });
        }
        let mut svg = String::new();
        render(&mut svg, &h, &["orders", "<b>x</b>"], 30, &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains(r#"data-points="60""#), "{svg}");
        assert_eq!(svg.matches(r#"class="backlog""#).count(), 2);
        assert_eq!(svg.matches(r#"class="utilization""#).count(), 1);
        assert!(
            svg.contains(r#"<path class="current" data-points="2""#),
            "{svg}"
        );
        assert!(svg.contains(r#"data-from="0" data-to="3" data-rule="triggerMax""#));
        assert!(svg.contains(">0 → 3 triggerMax</text>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;: backlog"), "{svg}");
        assert!(!svg.contains("<b>"));
        // The second trigger's failed read is a gap: two sub-paths.
        let second = svg.split(r#"data-trigger="1""#).nth(1).unwrap();
        let d = second
            .split("d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        // 30 s of history: a one-minute axis, labelled every 15 s.
        assert!(
            svg.contains(r#"data-span="60""#) && svg.contains(">−45 s</text>"),
            "{svg}"
        );
        assert!(svg.contains(">now</text>"));
    }

    #[test]
    fn close_scale_events_keep_their_markers_and_the_newest_label() {
        let mut h = History::default();
        for (at, from, to) in [(0, 0, 1), (2, 1, 2), (4, 2, 4), (50, 4, 8)] {
            h.record(&Sample {
                at,
                backlog: vec![Some(1.0)],
                current: to,
                desired: to,
                scaled: Some((from, to, Rule::Policy)),
                interval_secs: 1,
                ..Default::default()
            });
        }
        let mut svg = String::new();
        render(&mut svg, &h, &["t"], 60, &[]);
        assert_eq!(svg.matches(r#"class="scale-event""#).count(), 4);
        assert!(svg.contains(">4 → 8 policy</text>"), "{svg}");
        // The three before it are a few pixels apart: two rows of labels hold two of them.
        assert!(svg.contains(">2 → 4 policy</text>"), "{svg}");
        assert!(svg.contains(">1 → 2 policy</text>"), "{svg}");
        assert!(!svg.contains(">0 → 1 policy</text>"), "{svg}");
    }

    #[test]
    fn an_empty_history_says_so() {
        let mut svg = String::new();
        render(&mut svg, &History::default(), &[], 0, &[]);
        assert!(svg.contains(r#"data-points="0""#) && svg.contains("no samples yet"));
    }

    #[test]
    fn schedules_next_actions_are_markers_ahead_of_now() {
        let mut h = History::default();
        for at in 0..60 {
            h.record(&Sample {
                at,
                backlog: vec![Some(2.0)],
                current: 1,
                desired: 1,
                interval_secs: 1,
                ..Default::default()
            });
        }
        let up = [
            Upcoming {
                schedule: "nightly",
                in_secs: 10,
            },
            Upcoming {
                schedule: "weekly",
                in_secs: 3600,
            },
        ];
        let mut svg = String::new();
        render(&mut svg, &h, &["t"], 60, &up);
        // A 60 s span runs 15 s ahead: "now" at x = LEFT + (RIGHT − LEFT) × 60/75.
        let now_x = LEFT + (RIGHT - LEFT) * 60.0 / 75.0;
        assert!(
            svg.contains(&format!(r#"<rect class="future" x="{now_x:.1}""#)),
            "{svg}"
        );
        let marker = |x: f64| format!("M{x:.1},{}V{REPLICAS_BOTTOM}", LABEL_ROWS[0] + 2.0);
        let x10 = LEFT + (RIGHT - LEFT) * 70.0 / 75.0;
        assert!(
            svg.contains(r#"data-schedule="nightly" data-in="10""#),
            "{svg}"
        );
        assert!(svg.contains(&marker(x10)), "{svg}");
        // Beyond the chart: at its right edge, saying how far.
        assert!(svg.contains(">weekly in 1 h</text>"), "{svg}");
        assert!(
            svg.contains(&format!("M{RIGHT:.1},{}V", LABEL_ROWS[1] + 2.0)),
            "{svg}"
        );
        assert!(svg.contains(r#">now</text>"#));
        // Without schedules the axis ends at now, as before.
        let mut plain = String::new();
        render(&mut plain, &h, &["t"], 60, &[]);
        assert!(!plain.contains("future") && !plain.contains("schedule"));
    }
}
