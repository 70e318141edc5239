//! The status page (`GET /`) of the real binary, in a real browser: a dry-run agent against a
//! real Temporal dev server, a backlog that makes it scale, and headless Chromium (Debian's
//! `chromium`; `.ci/run` installs it) loading the page. The assertions are on the DOM as the
//! browser built it (`--dump-dom`, after its scripts ran), and on a screenshot.

use crate::support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ChildGuard, DevServer, free_port, http_get, scaler_yaml};

/// A trigger name and a scaler name that would run as script if they were not escaped.
const EVIL: &str = "<script>document.title='pwned'</script>";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"));
    // No cluster, whatever the machine has: the agent acts alone in dry run.
    c.env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST");
    for (k, _) in std::env::vars() {
        if k.starts_with("TEMPORAL_AUTOSCALER_") {
            c.env_remove(k);
        }
    }
    c
}

/// A dry-run agent on `dir` with `extra` flags, once it is ready.
fn agent(dir: &std::path::Path, extra: &[&str]) -> (ChildGuard, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = bin()
        .args(["run", "--dry-run", "--no-crds", "--http-addr", &addr])
        .arg("--config-dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&addr, "/readyz").map(|r| r.0) != Some(200) {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("agent exited early: {status}");
        }
        assert!(Instant::now() < deadline, "agent not ready on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

/// A response's head (lowercased) and body.
fn get_with_head(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    (head.to_lowercase(), body.to_string())
}

/// Wait until `/scalers` shows a scaler for which `pred` holds.
async fn wait_scaler(
    addr: &str,
    name: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, body)) = http_get(addr, "/scalers") {
            let list: serde_json::Value = serde_json::from_str(&body).unwrap();
            let found = list
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .cloned();
            if found.as_ref().is_some_and(&pred) {
                return;
            }
            assert!(Instant::now() < deadline, "{name}: no {what}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `<tr>` of a scaler in the DOM.
fn row<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = format!(r#"data-key="dir/default/{name}""#);
    let after = dom
        .split_once(&start)
        .unwrap_or_else(|| panic!("no row for {name}:\n{dom}"))
        .1;
    after.split("</tr>").next().unwrap()
}

/// The number in `attr="N"` after `marker` in `html`.
fn number_after(html: &str, marker: &str, attr: &str) -> usize {
    let rest = html
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker} in:\n{html}"))
        .1;
    let value = rest
        .split_once(&format!("{attr}=\""))
        .unwrap_or_else(|| panic!("no {attr} after {marker}"))
        .1;
    value.split('"').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_a_browser_shows_scaling_and_escapes_names() {
    if !support::have_chromium() {
        return;
    }
    let server = DevServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let evil_trigger = scaler_yaml("page-orders", &server.endpoint(), "q-page", 0, "").replace(
        "    - type: temporal\n",
        &format!("    - type: temporal\n      name: \"{EVIL}\"\n"),
    );
    std::fs::write(dir.path().join("orders.yaml"), evil_trigger).unwrap();
    // The idle scaler's queue has an hourly Schedule: its next action is a marker ahead of now.
    std::fs::write(
        dir.path().join("idle.yaml"),
        scaler_yaml(
            "page-idle",
            &server.endpoint(),
            "q-page-idle",
            0,
            "        scheduleLeadSeconds: \"30\"\n",
        ),
    )
    .unwrap();
    server.cli(&[
        "schedule",
        "create",
        "--schedule-id",
        "idle-hourly",
        "--interval",
        "1h",
        "--task-queue",
        "q-page-idle",
        "--type",
        "Noop",
        "--workflow-id",
        "idle-run",
    ]);
    // A file whose error quotes the bad name: shown in the config section, as text.
    std::fs::write(
        dir.path().join("broken.yaml"),
        scaler_yaml("broken", &server.endpoint(), "q", 0, "")
            .replace("name: broken\n", &format!("name: \"{EVIL}\"\n")),
    )
    .unwrap();
    let (_agent, addr) = agent(dir.path(), &[]);
    let url = format!("http://{addr}/");

    // Idle polls first, then the backlog: the chart has points before and after the scale.
    wait_scaler(&addr, "page-orders", "first decision", |v| {
        v["desiredReplicas"] == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.start_workflows("q-page", 12).await;
    wait_scaler(&addr, "page-orders", "scale to 3", |v| {
        v["currentReplicas"] == 3 && v["lastScaleTime"].is_string()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dom = support::chromium(&["--dump-dom"], &url);
    // The page's script ran (its hash is in the Content-Security-Policy); nothing else did.
    assert!(dom.contains(r#"data-live="1""#), "{dom}");
    assert!(dom.contains("<title>temporal-autoscaler</title>"), "{dom}");
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    assert!(!dom.contains("<script>document.title"), "{dom}");
    // The trigger's name and the broken file's error are shown as text.
    let orders = row(&dom, "page-orders");
    assert!(
        orders.contains("<b>&lt;script&gt;document.title='pwned'&lt;/script&gt;</b>"),
        "{orders}"
    );
    assert!(
        dom.contains("metadata.name: got \"&lt;script&gt;document.title='pwned'&lt;/script&gt;\""),
        "{dom}"
    );
    // Each scaler has a chart with points: its backlog line and replica steps.
    for name in ["page-orders", "page-idle"] {
        let r = row(&dom, name);
        let points = number_after(r, r#"<path class="backlog""#, "data-points");
        assert!(points >= 3, "{name}: {points} points:\n{r}");
        let d = r
            .split_once(r#"<path class="backlog""#)
            .and_then(|(_, p)| p.split_once(" d=\""))
            .map(|(_, d)| d.split('"').next().unwrap())
            .unwrap();
        assert!(d.starts_with('M') && d.contains('L'), "{name}: {d}");
        assert!(r.contains(r#"<path class="current""#), "{r}");
        // Two scalers: far below the global budget, each series keeps 120 points.
        assert!(r.contains(r#"data-capacity="120""#), "{r}");
    }
    // A marker at the scale event, labelled from → to and the rule; the rule that decided.
    assert!(
        orders.contains(r#"class="scale-event" data-from="0" data-to="3" data-rule="triggerMax""#),
        "{orders}"
    );
    assert!(orders.contains(">0 → 3 triggerMax</text>"), "{orders}");
    assert!(
        orders.contains(r#"<code class="rule">triggerMax</code> → 3"#),
        "{orders}"
    );
    assert!(orders.contains("max over triggers of ceil(backlog / targetQueueSize)"));
    assert!(!row(&dom, "page-idle").contains("scale-event"));
    // The schedule's next action, ahead of now (past the chart's reach: at its edge, with how
    // far); none on the scaler without schedules.
    let idle = row(&dom, "page-idle");
    assert!(
        idle.contains(r#"<g class="schedule" data-schedule="idle-hourly""#)
            && idle.contains(r#"<rect class="future""#)
            && idle.contains(">idle-hourly in "),
        "{idle}"
    );
    assert!(!orders.contains(r#"class="schedule""#), "{orders}");
    // The header: version, role, scalers, the Temporal connection, the config load.
    assert!(dom.contains(env!("CARGO_PKG_VERSION")));
    assert!(dom.contains("acting alone"), "{dom}");
    assert!(
        dom.contains(r#"<span class="n">2</span> scaler(s)"#),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            r#"<span class="badge b-ok">connected</span> <code>http://{}</code>"#,
            server.endpoint()
        )),
        "{dom}"
    );
    assert!(dom.contains("rejected, 2 scaler(s)"), "{dom}");

    // With time to run, the script swaps fresh data in (every pollingInterval: 1 s here), and
    // the swapped-in part is the same page.
    let refreshed = support::chromium(&["--virtual-time-budget=5000", "--dump-dom"], &url);
    let updates = number_after(&refreshed, "<html", "data-updates");
    assert!(updates >= 1, "{refreshed}");
    assert!(row(&refreshed, "page-orders").contains(r#"class="scale-event""#));
    assert!(!refreshed.contains(r#"data-stale=""#), "{refreshed}");

    // A screenshot of the expected size.
    let shot = tempfile::tempdir().unwrap();
    let png = shot.path().join("page.png");
    support::chromium(
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", png.display()),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 900));
    assert!(bytes.len() > 20_000, "a blank page? {} bytes", bytes.len());
}

#[test]
fn the_page_is_locked_down_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_on, addr) = agent(dir.path(), &[]);
    let (head, body) = get_with_head(&addr, "/?page=abc&name=%3Cscript%3E");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'sha256-"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        body.contains(r#"value="&lt;script&gt;""#),
        "the filter is echoed escaped"
    );
    assert_eq!(body.matches("<script").count(), 1);

    let (_off, addr) = agent(dir.path(), &["--ui=false"]);
    assert_eq!(http_get(&addr, "/").map(|r| r.0), Some(404));
    assert_eq!(http_get(&addr, "/scalers").map(|r| r.0), Some(200));
}
