//! The agent's own API server hangs: it takes every request and answers none (an overloaded
//! or paused API server, a partition), with a real Temporal dev server behind the trigger and a
//! real kube client (every request under a 300 ms deadline) over loopback HTTP. While it hangs
//! the scaler writes nothing, one line says the cluster is unreachable (naming the timeout),
//! and the decision made meanwhile is in force soon after the server answers again, with one
//! line saying so. Its own test binary: it counts the lines of the whole process.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::api_server::ApiServer;
use support::{Capture, DevServer, within};
use temporal_autoscaler::agent::Context;
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::target::Targets;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_home_api_server_means_no_write_one_line_and_recovery() {
    if !support::alone("home_hang::a_hung_home_api_server_means_no_write_one_line_and_recovery") {
        return;
    }
    let logs = Capture::install();
    let server = DevServer::start().await;
    server.start_workflows("q-home-hang", 6).await;

    let home = ApiServer::new("hang", 0);
    let deadline = Duration::from_millis(300);
    let client = home.client(deadline).await;
    let clusters = Clusters::new(Some(client), &[]).with_timeout(deadline);
    let ctx = Context::new(
        Targets::with_clusters(Arc::new(clusters), false),
        Guard::alone(),
    );
    let running = support::run_scaler(
        &ctx,
        "default",
        "hang",
        &support::scaler_yaml("hang", &server.endpoint(), "q-home-hang", 0, ""),
    )
    .await;
    let key = running.key.clone();
    // 6 tasks at 5 a replica.
    within(
        60,
        "scaled to 2",
        ctx.state
            .wait_for(&key, |v| v.current_replicas == Some(2) && v.error.is_none()),
    )
    .await;
    let before = logs.at_any(&["WARN", "ERROR"]).len();

    home.hung.store(true, Ordering::SeqCst);
    let hung_at = Instant::now();
    // More work arrives meanwhile: 16 tasks would be 4 replicas.
    server.start_workflows("q-home-hang", 10).await;
    let v = within(
        30,
        "the read timing out",
        ctx.state.wait_for(&key, |v| {
            v.error.as_deref().is_some_and(|e| e.contains("timed out"))
        }),
    )
    .await;
    let err = v.error.unwrap();
    assert!(
        err.contains("default/Deployment/hang-worker") && err.contains("within 300ms"),
        "{err}"
    );
    // Several ticks of it (each at most the deadline), then the server answers again.
    within(30, "three reads while hung", async {
        while home.since(0).iter().filter(|s| s.hung).count() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    home.hung.store(false, Ordering::SeqCst);
    let back_at = Instant::now();
    within(
        30,
        "the decision made meanwhile in force",
        ctx.state
            .wait_for(&key, |v| v.current_replicas == Some(4) && v.error.is_none()),
    )
    .await;
    // A tick or two of the 1 s interval (the first may be under way, waiting on a read the
    // server now answers late), with slack for a loaded machine.
    let recovered_in = back_at.elapsed();
    assert!(
        recovered_in < Duration::from_secs(5),
        "in force {recovered_in:?} after the server answered again"
    );

    // No write while it hung: only reads were tried, of the /scale (and the HPAs, once a
    // recheck period).
    let all: Vec<_> = home.since(0).into_iter().filter(|s| s.hung).collect();
    assert!(all.iter().all(|s| s.method == "GET"), "{all:?}");
    let tried: Vec<_> = all
        .into_iter()
        .filter(|s| s.path == home.scale_path())
        .collect();
    // Each tick gave up at the deadline: about one read per 1 s tick, not one per deadline.
    let hung_for = back_at - hung_at;
    assert!(
        tried.len() as f64 <= hung_for.as_secs_f64() + 2.0,
        "{} reads in {hung_for:?}",
        tried.len()
    );

    // Each timed-out read is counted, logged or not: every read tried while hung but the last
    // (which the server may have answered in time once it came back).
    let metrics = ctx.metrics.encode();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("temporal_scaler_target_errors_total{")
                && l.contains("cluster=\"local\"")
                && l.contains("kind=\"timeout\"")
        })
        .unwrap_or_else(|| panic!("no timeout counted:\n{metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        counted >= (tried.len() - 1) as f64 && counted <= tried.len() as f64,
        "{line} for {} reads",
        tried.len()
    );

    let warn = logs.at_any(&["WARN", "ERROR"]);
    let warn = &warn[before..];
    assert_eq!(warn.len(), 1, "one line for the outage: {warn:#?}");
    assert!(
        warn[0].contains("cluster unreachable")
            && warn[0].contains("cluster=\"local\"")
            && warn[0].contains("timed out"),
        "{warn:?}"
    );
    let recovered: Vec<String> = logs
        .at("INFO")
        .into_iter()
        .filter(|l| l.contains("cluster reachable again"))
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert!(recovered[0].contains("cluster=\"local\""), "{recovered:?}");
}
