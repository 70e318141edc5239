//! A Temporal outage over many scalers is a line when it starts and a line when it ends, not a
//! line per scaler per poll: 20 scalers polling every second lose their server (a loopback
//! proxy in front of a real dev server stops forwarding), then get it back. Every failure is
//! still counted in the metrics.

use crate::support;

use std::time::Duration;
use support::{Capture, DevServer, ProxyMode, scaler_yaml, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporal_outage_over_twenty_scalers_is_logged_once_when_it_starts_and_once_when_it_ends()
{
    if !support::alone(
        "outage_logs::a_temporal_outage_over_twenty_scalers_is_logged_once_when_it_starts_and_once_when_it_ends",
    ) {
        return;
    }
    let logs = Capture::install();

    let server = DevServer::start().await;
    let (port, switch) = support::proxy("127.0.0.1".into(), server.port).await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(
            dir.path().join(format!("s{i}.yaml")),
            scaler_yaml(
                &format!("s{i}"),
                &format!("127.0.0.1:{port}"),
                &format!("q{i}"),
                1,
                "",
            ),
        )
        .unwrap();
    }
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    let key = |i: usize| ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: format!("s{i}").into(),
    };
    for i in 0..20 {
        within(
            30,
            "every scaler reads its queue",
            ctx.state.wait_for(&key(i), |v| {
                v.triggers.first().is_some_and(|t| t.backlog.is_some())
            }),
        )
        .await;
    }
    let before = logs.at_any(&["WARN", "ERROR"]).len();

    // The outage: every scaler fails (and keeps failing) for several polls.
    switch.set(ProxyMode::Refuse);
    for i in 0..20 {
        within(
            30,
            "every scaler sees the outage",
            ctx.state.wait_for(&key(i), |v| {
                v.triggers.first().is_some_and(|t| t.error.is_some())
            }),
        )
        .await;
    }
    // Four more seconds: four polls of twenty scalers, each of them a failure.
    tokio::time::sleep(Duration::from_secs(4)).await;
    switch.set(ProxyMode::Up);
    for i in 0..20 {
        within(
            90,
            "every scaler reads again (after the connection's backoff)",
            ctx.state.wait_for(&key(i), |v| {
                v.triggers.first().is_some_and(|t| t.error.is_none())
            }),
        )
        .await;
    }

    let warn: Vec<String> = logs
        .at_any(&["WARN", "ERROR"])
        .into_iter()
        .skip(before)
        .collect();
    assert_eq!(
        warn.len(),
        1,
        "one line for the outage of one connection:\n{}",
        warn.join("\n")
    );
    assert!(warn[0].contains("Temporal connection failed"), "{warn:?}");
    let recovered: Vec<String> = logs
        .at("INFO")
        .into_iter()
        .filter(|l| l.contains("Temporal connection recovered"))
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(recovered[0].contains("lasted_secs="), "{recovered:?}");
    // Nor a line per scaler when it ends: the connection's line says it for all of them.
    let per_scaler = logs
        .at("INFO")
        .into_iter()
        .filter(|l| l.contains("trigger recovered"))
        .count();
    assert_eq!(per_scaler, 0);
    // The metrics count every failure: 20 scalers, several polls each.
    let failures: f64 = ctx
        .metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("temporal_scaler_trigger_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 20.0 * 4.0, "{failures} failures counted");
}
