//! The status page (`GET /`): one self-contained HTML document, with no external script,
//! font or stylesheet, so it works air-gapped. Everything is rendered on the server, charts
//! included ([`super::chart`]): without JavaScript the page is complete, and with it a small
//! inline script swaps in fresh data every pollingInterval.
//!
//! Safety: every string the page did not write itself (names, queues, files, errors) goes
//! through [`escape`], so `<script>` in a trigger name is text. The page's own script and
//! style are allowed by their hashes in a Content-Security-Policy that allows nothing else:
//! even a string that escaped escaping could not run. Nothing here is a secret: the views
//! carry none (see docs/http.md, "HTTP endpoints").

use super::chart;
use super::overview::{Overview, Role, Sort};
use crate::decide::{Basis, Rule};
use crate::state::ScalerView;
use crate::state::history::History;
use crate::temporal::ConnState;
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::LazyLock;

/// Text for HTML element content, quoted attribute values, and inline SVG alike.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

const STYLE: &str = r#"
:root{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:#f9fafb}
body{margin:0 auto;padding:12px 16px;max-width:1400px}
h1{font-size:18px;margin:0 0 6px}h1 small{font-weight:normal;color:#6b7280;font-size:13px}
h2{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:#6b7280;margin:0 0 4px}
p{margin:2px 0}ul{margin:0;padding:0;list-style:none}
.facts{display:grid;grid-template-columns:1.2fr .6fr 1fr 1.4fr;gap:8px;margin:8px 0}
.fact{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px;min-width:0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
th,td{padding:6px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{font-size:11px;text-transform:uppercase;color:#6b7280;background:#f3f4f6;font-weight:600}
tr.failing td:first-child{box-shadow:inset 3px 0 #dc2626}
td.name{min-width:200px}td.decision{min-width:180px;max-width:260px}
.n{font-size:18px;font-weight:600}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;margin:0 2px 2px 0;background:#e5e7eb;white-space:nowrap}
.b-active,.b-leader,.b-ok{background:#dcfce7;color:#166534}.b-paused{background:#fef3c7;color:#92400e}
.b-fallback{background:#ffedd5;color:#9a3412}.b-failing{background:#fee2e2;color:#991b1b}
.b-standby,.b-idle{background:#e5e7eb;color:#374151}
.tag{font-size:11px;color:#6b7280;border:1px solid #e5e7eb;border-radius:4px;padding:0 4px}
.err{color:#b91c1c;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:#6b7280}.file{overflow-wrap:anywhere;font-size:12px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.reason{color:#374151;margin-top:2px}
details{margin-top:4px}summary{cursor:pointer;color:#6b7280}details ol{margin:4px 0;padding-left:18px}
.triggers li{margin-top:3px}
.clusters{list-style:none;padding:0;margin:4px 0 0;font-size:12px}
.sw{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}
.c0{background:#2563eb}.c1{background:#d97706}.c2{background:#059669}.c3{background:#9333ea}.c4{background:#dc2626}.c5{background:#0891b2}
.sw.cur{background:#111827}.sw.des{background:repeating-linear-gradient(90deg,#6b7280 0 4px,transparent 4px 7px)}
.sw.ev{background:repeating-linear-gradient(90deg,#9ca3af 0 2px,transparent 2px 4px)}
.legend{font-size:11px}
.chart{display:block;max-width:100%;height:auto}
.chart path{fill:none;stroke-linejoin:round;stroke-linecap:round}
.chart .grid{stroke:#e5e7eb}.chart .tick{stroke:#f3f4f6}
.chart .backlog{stroke-width:1.6}.chart .utilization{stroke-width:1.2;stroke-dasharray:3 2}
.chart .current{stroke:#111827;stroke-width:1.6}.chart .desired{stroke:#6b7280;stroke-width:1.2;stroke-dasharray:4 3}
.chart .scale-event path{stroke:#9ca3af;stroke-dasharray:2 2}
.chart .future{fill:#f9fafb}.chart .schedule path{stroke:#7c3aed;stroke-dasharray:1 2}.chart .schedule text{fill:#7c3aed}
.chart text{font-size:9px;fill:#374151}.chart .axis{fill:#6b7280}.chart .panel{fill:#9ca3af}
form.filter{display:flex;gap:10px;align-items:end;flex-wrap:wrap;margin:6px 0}
form.filter label{display:flex;flex-direction:column;font-size:11px;color:#6b7280}
nav.pager a{margin-left:8px}
.foot{margin-top:8px;font-size:12px}
.live-note,.stale{display:none}[data-live] .live-note{display:inline}
[data-stale] .stale{display:inline;color:#b91c1c}[data-stale] #live{opacity:.6}
"#;

/// Every refresh interval (`data-refresh-ms` of the newest page), fetch this URL and swap the
/// live part in; open "decision walk" boxes stay open. Paused while the tab is hidden.
const SCRIPT: &str = r#"
(function () {
  var root = document.documentElement;
  root.setAttribute("data-live", "1");
  var every = Number(root.getAttribute("data-refresh-ms")) || 15000, updates = 0;
  function tick() {
    if (document.hidden) { setTimeout(tick, every); return; }
    fetch(location.href, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      var next = new DOMParser().parseFromString(html, "text/html");
      var fresh = next.getElementById("live"), live = document.getElementById("live");
      if (fresh && live) {
        var open = {};
        live.querySelectorAll("details[open]").forEach(function (d) { open[d.getAttribute("data-key")] = true; });
        fresh.querySelectorAll("details").forEach(function (d) { if (open[d.getAttribute("data-key")]) { d.open = true; } });
        live.replaceWith(document.adoptNode(fresh));
      }
      every = Number(next.documentElement.getAttribute("data-refresh-ms")) || every;
      root.removeAttribute("data-stale");
      root.setAttribute("data-updates", String(++updates));
    }).catch(function () {
      root.setAttribute("data-stale", "1");
    }).then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
"#;

fn csp_hash(s: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The page's Content-Security-Policy: its own script and style (by hash), data from its own
/// origin, and nothing else: no other script, no external resource, no framing.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    )
});

/// A wall-clock time as the page shows it.
fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "… (5 min ago)".
fn when_ago(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let secs = now
        .duration_since(t)
        .as_secs()
        .clamp(0, i64::from(u32::MAX)) as u32;
    format!("{} ({} ago)", when(t), chart::duration(secs))
}

/// The whole page.
pub fn render(o: &Overview) -> String {
    let mut out = String::with_capacity(16 * 1024 + o.rows.len() * 12 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en" data-refresh-ms="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>temporal-autoscaler</title><link rel="icon" href="data:,"><style>{STYLE}</style></head><body><header><h1>temporal-autoscaler <small>{}</small></h1>"#,
        u64::from(o.refresh_secs) * 1000,
        escape(o.version)
    );
    filter_form(&mut out, o);
    let _ = write!(
        out,
        r#"</header><main id="live" data-rendered="{}">"#,
        escape(&o.wall.to_string())
    );
    facts(&mut out, o);
    scalers(&mut out, o);
    footer(&mut out, o);
    let _ = writeln!(out, "</main><script>{SCRIPT}</script></body></html>");
    out
}

fn filter_form(out: &mut String, o: &Overview) {
    let s = &o.selection;
    out.push_str(r#"<form class="filter" method="get"><label>Namespace <select name="namespace"><option value="">all</option>"#);
    let mut listed = false;
    for ns in &o.namespaces {
        let selected = *ns == s.namespace;
        listed |= selected;
        let _ = write!(
            out,
            r#"<option value="{0}"{1}>{0}</option>"#,
            escape(ns),
            if selected { " selected" } else { "" }
        );
    }
    if !listed && !s.namespace.is_empty() {
        let _ = write!(
            out,
            r#"<option value="{0}" selected>{0}</option>"#,
            escape(&s.namespace)
        );
    }
    let _ = write!(
        out,
        r#"</select></label><label>Name contains <input name="name" value="{}" placeholder="any"></label><label>Sort <select name="sort"><option value="recent"{}>failing first, then most recently scaled</option><option value="name"{}>by name</option></select></label><button type="submit">Apply</button><a href="?">clear</a></form>"#,
        escape(&s.name),
        if s.sort == Sort::Recent {
            " selected"
        } else {
            ""
        },
        if s.sort == Sort::Name {
            " selected"
        } else {
            ""
        },
    );
}

/// The header's facts: this replica and the Lease, the scalers, Temporal, the config
/// directory.
fn facts(out: &mut String, o: &Overview) {
    out.push_str(r#"<section class="facts"><div class="fact agent"><h2>Agent</h2><p>"#);
    match &o.role {
        Role::Alone => out.push_str(
            r#"<span class="badge b-leader">acting alone</span> no cluster, so no Lease to hold"#,
        ),
        Role::Leader { since } => {
            out.push_str(r#"<span class="badge b-leader">leader</span> "#);
            if let Some(t) = since {
                let _ = write!(out, "since {}", escape(&when_ago(*t, o.wall)));
            }
        }
        Role::Standby => out.push_str(
            r#"<span class="badge b-standby">standby</span> another replica acts; this one keeps the specs loaded"#,
        ),
    }
    out.push_str("</p>");
    if let Some(l) = &o.lease {
        let _ = write!(
            out,
            "<p>Lease <code>{}/{}</code>: ",
            escape(&l.namespace),
            escape(&l.name)
        );
        match &l.holder {
            Some(h) => {
                let _ = write!(
                    out,
                    "held by <code>{}</code>{}",
                    escape(h),
                    if *h == l.identity {
                        " (this replica)"
                    } else {
                        ""
                    }
                );
                if let Some(t) = l.acquired {
                    let _ = write!(out, " since {}", escape(&when_ago(t, o.wall)));
                }
            }
            None => out.push_str("held by nobody"),
        }
        let _ = write!(
            out,
            r#"</p><p class="muted">this replica: <code>{}</code></p>"#,
            escape(&l.identity)
        );
        if let Some(e) = &l.error {
            let _ = write!(out, r#"<p class="err">last read failed: {}</p>"#, escape(e));
        }
    }
    if o.dry_run {
        out.push_str(if o.simulated {
            r#"<p class="muted">dry run: simulated targets (each starts at minReplicaCount and follows the decisions)</p>"#
        } else {
            r#"<p class="muted">dry run: reads /scale, never writes</p>"#
        });
    }
    let _ = write!(
        out,
        r#"</div><div class="fact"><h2>Scalers</h2><p><span class="n">{}</span> scaler(s)</p><p>{}</p>"#,
        o.total,
        if o.failing > 0 {
            format!(
                r#"<span class="badge b-failing">{} failing</span>"#,
                o.failing
            )
        } else {
            r#"<span class="badge b-ok">none failing</span>"#.to_string()
        }
    );
    if !o.broken_files.is_empty() {
        let _ = write!(
            out,
            r#"<p class="err">{} file(s) with no good version</p>"#,
            o.broken_files.len()
        );
    }
    out.push_str(r#"</div><div class="fact temporal"><h2>Temporal connections</h2><ul>"#);
    if o.connections.is_empty() {
        out.push_str(r#"<li class="muted">none yet (opened by the first poll)</li>"#);
    }
    for c in &o.connections {
        let (class, word) = match &c.state {
            ConnState::Connected => ("b-ok", "connected"),
            ConnState::Connecting => ("b-idle", "connecting"),
            ConnState::NotConnected => ("b-idle", "not connected yet"),
            ConnState::Failing { .. } => ("b-failing", "failing"),
        };
        let _ = write!(
            out,
            r#"<li><span class="badge {class}">{word}</span> <code>{}</code> <span class="muted">{}</span>"#,
            escape(&c.endpoint),
            escape(&c.security)
        );
        if let ConnState::Failing { failures, error } = &c.state {
            let _ = write!(
                out,
                r#"<div class="err">{failures} failure(s) in a row: {}</div>"#,
                escape(error)
            );
        }
        out.push_str("</li>");
    }
    out.push_str(r#"</ul></div><div class="fact config"><h2>Config directory</h2>"#);
    match &o.config {
        None => out.push_str(r#"<p class="muted">none (custom resources only)</p>"#),
        Some(c) => {
            let _ = write!(
                out,
                "<p><code>{}</code></p><p>loaded {}: {}, {} scaler(s)</p>",
                escape(&c.dir.display().to_string()),
                escape(&when_ago(c.loaded_at, o.wall)),
                c.result,
                c.scalers,
            );
            if c.errors.is_empty() {
                out.push_str(r#"<p class="muted">no errors</p>"#);
            } else {
                out.push_str(r#"<ul class="errors">"#);
                for e in &c.errors {
                    let _ = write!(out, r#"<li class="err">{}</li>"#, escape(e));
                }
                if c.more_errors > 0 {
                    let _ = write!(out, "<li>and {} more</li>", c.more_errors);
                }
                out.push_str("</ul>");
            }
        }
    }
    out.push_str("</div></section>");
}

fn scalers(out: &mut String, o: &Overview) {
    out.push_str(r#"<table class="scalers"><thead><tr><th>Scaler</th><th>Replicas</th><th>State</th><th>Last decision</th><th>Last hour</th></tr></thead><tbody>"#);
    if o.rows.is_empty() {
        out.push_str(r#"<tr><td colspan="5" class="muted">No scaler matches.</td></tr>"#);
    }
    for v in &o.rows {
        row(out, v, o);
    }
    out.push_str("</tbody></table>");
}

fn row(out: &mut String, v: &ScalerView, o: &Overview) {
    let ns = v.namespace.as_deref().unwrap_or("");
    let name = v.name.as_deref().unwrap_or("");
    let key = format!("{}/{ns}/{name}", v.source);
    let _ = write!(
        out,
        r#"<tr class="scaler{}" data-key="{}"><td class="name"><div><strong>{}/{}</strong> <span class="tag">{}</span></div>"#,
        if v.failing() { " failing" } else { "" },
        escape(&key),
        escape(ns),
        escape(name),
        v.source
    );
    if let Some(t) = &v.target {
        let _ = write!(
            out,
            r#"<div class="target">{}/{} <span class="muted">{}</span></div>"#,
            escape(&t.kind),
            escape(&t.name),
            escape(&t.api_version)
        );
    }
    if let Some(f) = &v.file {
        let _ = write!(
            out,
            r#"<div class="file muted">{}</div>"#,
            escape(&f.display().to_string())
        );
    }
    out.push_str(r#"<ul class="triggers">"#);
    for (i, t) in v.triggers.iter().enumerate() {
        let _ = write!(
            out,
            r#"<li class="trigger"><span class="sw c{}"></span><b>{}</b> <span class="muted">{}/{}</span><br>backlog {}"#,
            i % chart::PALETTE.len(),
            escape(&t.name),
            escape(&t.temporal_namespace),
            escape(&t.task_queue),
            t.backlog.map_or("?".to_string(), |b| b.to_string()),
        );
        if let Some(u) = t.capacity.as_ref().and_then(|c| c.utilization) {
            let _ = write!(out, ", slots {:.0} %", u * 100.0);
        }
        if let Some(r) = t.recommended_replicas {
            let _ = write!(out, " → {r}");
        }
        if let Some(b) = t.basis {
            let _ = write!(out, r#" <span class="muted">[{}]</span>"#, b.as_str());
        }
        if let Some(e) = &t.error {
            let _ = write!(out, r#"<div class="err">{}</div>"#, escape(e));
        }
        if let Some(u) = t.capacity.as_ref().and_then(|c| c.unavailable.as_ref()) {
            let _ = write!(out, r#"<div class="muted">{}</div>"#, escape(u));
        }
        out.push_str("</li>");
    }
    let count = |n: Option<u32>| n.map_or("?".to_string(), |n| n.to_string());
    let _ = write!(
        out,
        r#"</ul></td><td class="replicas"><span class="n current">{}</span> → <span class="n desired">{}</span>"#,
        count(v.current_replicas),
        count(v.desired_replicas)
    );
    if !v.clusters.is_empty() {
        // Each cluster: its current count → its share, and whether it is reachable.
        out.push_str(r#"<ul class="clusters">"#);
        for c in &v.clusters {
            let _ = write!(
                out,
                r#"<li class="cluster" title="{}"><b>{}</b> {} → {}{}</li>"#,
                escape(c.error.as_deref().unwrap_or_default()),
                escape(&c.name),
                count(c.current_replicas),
                count(c.share),
                if c.reachable {
                    ""
                } else {
                    r#" <span class="err">unreachable</span>"#
                }
            );
        }
        out.push_str("</ul>");
    }
    if let Some(t) = v
        .last_scale_time
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        let secs = o
            .wall
            .duration_since(t)
            .as_secs()
            .clamp(0, i64::from(u32::MAX)) as u32;
        let _ = write!(
            out,
            r#"<div class="muted" title="{}">scaled {} ago</div>"#,
            escape(&when(t)),
            chart::duration(secs)
        );
    }
    scale_down(out, v);
    out.push_str(r#"</td><td class="state">"#);
    state_badges(out, v);
    out.push_str(r#"</td><td class="decision">"#);
    decision(out, v, &key);
    out.push_str(r#"</td><td class="history">"#);
    let names: Vec<&str> = v.triggers.iter().map(|t| &*t.name).collect();
    let empty = History::default();
    let upcoming = upcoming(v, o.wall);
    chart::render(
        out,
        v.history.as_deref().unwrap_or(&empty),
        &names,
        o.now,
        &upcoming,
    );
    out.push_str(r#"<div class="legend muted"><span class="sw cur"></span>current <span class="sw des"></span>desired <span class="sw ev"></span>scale event; backlog in trigger colours, slot use dashed</div></td></tr>"#);
}

/// The schedules' next actions (Schedules signal), not paused, each once, from the page's clock.
fn upcoming(v: &ScalerView, wall: jiff::Timestamp) -> Vec<chart::Upcoming<'_>> {
    let mut out: Vec<chart::Upcoming<'_>> = Vec::new();
    for s in v.triggers.iter().flat_map(|t| &t.schedules) {
        let Some(at) = s
            .next_action_time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            continue;
        };
        let secs = at.duration_since(wall).as_secs();
        if s.paused || secs <= 0 || out.iter().any(|u| u.schedule == s.id) {
            continue;
        }
        out.push(chart::Upcoming {
            schedule: &s.id,
            in_secs: secs.min(i64::from(u32::MAX)) as u32,
        });
    }
    out
}

/// The last scale-down's pods (idle pods first): the busy ones kept, with their slots in use,
/// and how many idle ones went first; or why nothing could be told apart.
fn scale_down(out: &mut String, v: &ScalerView) {
    let placed = !v.clusters.is_empty();
    for s in &v.scale_down {
        let at = if placed {
            format!(" in {}", escape(&s.cluster))
        } else {
            String::new()
        };
        let text = if let Some(why) = &s.unmatched {
            format!("last scale-down{at}: by count alone ({})", escape(why))
        } else {
            let busy: Vec<String> = s
                .busy
                .iter()
                .map(|b| format!("{} ({})", escape(&b.pod), b.slots_used))
                .collect();
            let kept = if busy.is_empty() {
                "no busy pod".to_string()
            } else {
                format!("busy pods kept: {}", busy.join(", "))
            };
            format!("last scale-down{at}: {} idle pod(s) first; {kept}", s.idle)
        };
        let _ = write!(out, r#"<div class="scaledown muted">{text}</div>"#);
    }
}

fn state_badges(out: &mut String, v: &ScalerView) {
    let paused = v.decision.iter().any(|s| s.rule == Rule::Paused);
    let fallback = v.triggers.iter().any(|t| t.basis == Some(Basis::Fallback));
    if !v.leader {
        out.push_str(
            r#"<span class="badge b-standby" title="only the Lease holder polls">standby</span>"#,
        );
    }
    if v.failing() {
        out.push_str(r#"<span class="badge b-failing">failing</span>"#);
    }
    if paused {
        out.push_str(r#"<span class="badge b-paused">paused</span>"#);
    }
    if fallback {
        out.push_str(r#"<span class="badge b-fallback">fallback</span>"#);
    }
    if v.leader && !paused {
        out.push_str(if v.active {
            r#"<span class="badge b-active">active</span>"#
        } else {
            r#"<span class="badge b-idle">not active</span>"#
        });
    }
}

/// The rule that decided last, with its reason as `explain` words it, the whole walk in a box
/// that opens without script, and what keeps the scaler from acting.
fn decision(out: &mut String, v: &ScalerView, key: &str) {
    match v.decision.last() {
        Some(s) => {
            let _ = write!(
                out,
                r#"<div><code class="rule">{}</code> → {}</div><div class="reason">{}</div>"#,
                s.rule,
                s.replicas,
                escape(&s.detail)
            );
        }
        None => out.push_str(r#"<div class="muted">no decision yet</div>"#),
    }
    if v.decision.len() > 1 {
        let _ = write!(
            out,
            r#"<details data-key="{}"><summary>decision walk ({} steps)</summary><ol>"#,
            escape(key),
            v.decision.len()
        );
        for s in &v.decision {
            let _ = write!(
                out,
                "<li><code>{}</code> {} <span class=\"muted\">{}</span></li>",
                s.rule,
                s.replicas,
                escape(&s.detail)
            );
        }
        out.push_str("</ol></details>");
    }
    if let Some(e) = &v.error {
        let _ = write!(out, r#"<div class="err">{}</div>"#, escape(e));
    }
    if let Some(e) = &v.config_error {
        let _ = write!(
            out,
            r#"<div class="err">config (its last good version runs): {}</div>"#,
            escape(e)
        );
    }
}

fn footer(out: &mut String, o: &Overview) {
    let s = &o.selection;
    let pages = o.pages();
    let _ = write!(
        out,
        r#"<nav class="pager">{} of {} scaler(s) match; page {} of {}"#,
        o.matched, o.total, s.page, pages
    );
    if s.page > 1 {
        let _ = write!(
            out,
            r#"<a href="{}">← previous</a>"#,
            escape(&s.query_string(s.page - 1))
        );
    }
    if s.page < pages {
        let _ = write!(
            out,
            r#"<a href="{}">next →</a>"#,
            escape(&s.query_string(s.page + 1))
        );
    }
    let _ = write!(
        out,
        r#"</nav><p class="foot muted">Rendered {}. <span class="live-note">Updates every {} s.</span> <span class="stale">The last update failed; retrying.</span> <a href="{}">Reload</a> · <a href="scalers">/scalers</a> (JSON) · <a href="metrics">/metrics</a></p>"#,
        escape(&when(o.wall)),
        o.refresh_secs,
        escape(&s.query_string(s.page)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ScalerKey, SourceKind};
    use crate::state::history::Sample;
    use crate::state::{ConfigLoad, TriggerView};
    use crate::web::overview::{PageQuery, Selection};

    const EVIL: &str = "<script>alert('x')</script>";

    fn overview(rows: Vec<ScalerView>) -> Overview {
        Overview {
            version: "0.1.0",
            role: Role::Alone,
            dry_run: true,
            simulated: true,
            lease: None,
            connections: Vec::new(),
            config: None,
            broken_files: Vec::new(),
            total: rows.len(),
            failing: rows.iter().filter(|v| v.failing()).count(),
            namespaces: vec!["default".into()],
            selection: Selection::from_query(&PageQuery::default()),
            matched: rows.len(),
            rows,
            now: 30,
            wall: jiff::Timestamp::UNIX_EPOCH,
            refresh_secs: 5,
        }
    }

    fn scaler() -> ScalerView {
        let mut v = ScalerView::new(&ScalerKey {
            source: SourceKind::Dir,
            namespace: "default".into(),
            name: "orders-worker".into(),
        });
        v.leader = true;
        v.active = true;
        v.target = Some(std::sync::Arc::new(crate::spec::TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "orders-worker".into(),
        }));
        v.current_replicas = Some(3);
        v.desired_replicas = Some(3);
        v.triggers = vec![TriggerView {
            name: EVIL.into(),
            temporal_namespace: "default".into(),
            task_queue: "orders".into(),
            backlog: Some(12),
            error: Some(format!("not_found: {EVIL}").into()),
            ..Default::default()
        }]
        .into();
        v.decision = vec![crate::decide::Step {
            rule: Rule::TriggerMax,
            replicas: 3,
            detail: "max over triggers of ceil(backlog / targetQueueSize)".into(),
        }]
        .into();
        let mut h = History::default();
        for at in 0..20 {
            h.record(&Sample {
                at,
                backlog: vec![Some(12.0)],
                current: if at < 3 { 0 } else { 3 },
                desired: 3,
                scaled: (at == 3).then_some((0, 3, Rule::TriggerMax)),
                interval_secs: 1,
                ..Default::default()
            });
        }
        v.history = Some(Box::new(h));
        v
    }

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(escape("plain"), Cow::Borrowed("plain"));
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_script_in_any_user_string_is_text() {
        let mut o = overview(vec![scaler()]);
        o.config = Some(ConfigLoad {
            dir: EVIL.into(),
            loaded_at: jiff::Timestamp::UNIX_EPOCH,
            result: "rejected",
            scalers: 1,
            errors: vec![format!("{EVIL}.yaml: document 0: bad")],
            more_errors: 0,
        });
        o.selection.name = EVIL.into();
        o.namespaces.push(EVIL.into());
        let html = render(&o);
        assert_eq!(html.matches("<script").count(), 1, "only the page's own");
        assert!(!html.contains("alert('x')"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    }

    #[test]
    fn a_row_lists_each_cluster_with_its_count_share_and_reachability() {
        use crate::state::ClusterView;
        let mut v = scaler();
        assert!(!render(&overview(vec![v.clone()])).contains("class=\"clusters\""));
        v.clusters = ClusterView::two_one_down().into();
        let html = render(&overview(vec![v]));
        assert!(
            html.contains(r#"<li class="cluster" title=""><b>local</b> 6 → 6</li>"#),
            "{html}"
        );
        assert!(html.contains(r#"<li class="cluster" title="&lt;refused&gt;"><b>eu</b> 2 → 0 <span class="err">unreachable</span></li>"#), "{html}");
    }

    #[test]
    fn a_row_shows_the_last_scale_down_s_busy_pods_and_idle_ones() {
        use crate::state::{BusyPod, ScaleDownView};
        let mut v = scaler();
        assert!(!render(&overview(vec![v.clone()])).contains("scaledown"));
        v.scale_down = vec![ScaleDownView {
            cluster: "local".into(),
            pods: 3,
            busy: vec![BusyPod {
                pod: "w-<a>".into(),
                slots_used: 2,
            }],
            idle: 2,
            costs_written: 1,
            ..Default::default()
        }]
        .into();
        let html = render(&overview(vec![v.clone()]));
        assert!(
            html.contains(r#"<div class="scaledown muted">last scale-down: 2 idle pod(s) first; busy pods kept: w-&lt;a&gt; (2)</div>"#),
            "{html}"
        );
        v.scale_down[0].unmatched = Some("none of the 3 pod(s) is a worker host".into());
        let html = render(&overview(vec![v]));
        assert!(
            html.contains(
                "last scale-down: by count alone (none of the 3 pod(s) is a worker host)"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_row_shows_replicas_state_the_deciding_rule_and_a_chart() {
        let html = render(&overview(vec![scaler()]));
        assert!(html.contains(r#"data-key="dir/default/orders-worker""#));
        assert!(
            html.contains(r#"<span class="n current">3</span> → <span class="n desired">3</span>"#)
        );
        assert!(html.contains(r#"<span class="badge b-active">active</span>"#));
        assert!(html.contains(r#"<span class="badge b-failing">failing</span>"#));
        assert!(html.contains(r#"<code class="rule">triggerMax</code> → 3"#));
        assert!(html.contains("max over triggers of ceil(backlog / targetQueueSize)"));
        assert!(html.contains(r#"class="scale-event" data-from="0" data-to="3""#));
        assert!(html.contains(r#"data-refresh-ms="5000""#));
        assert!(html.contains("<span class=\"badge b-leader\">acting alone</span>"));
    }

    #[test]
    fn the_policy_allows_exactly_the_page_s_script_and_style() {
        let csp = CONTENT_SECURITY_POLICY.as_str();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains(&csp_hash(SCRIPT)) && csp.contains(&csp_hash(STYLE)));
        assert!(!csp.contains("unsafe"));
        // The page embeds them byte for byte.
        let html = render(&overview(Vec::new()));
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        assert!(html.contains("No scaler matches."));
    }
}
