//! What an idle-first scale-down costs in Kubernetes requests: the agent's own act step (the
//! target's `/scale` read, the pod list by its selector, the deletion-cost patches, the lower
//! count) with a real kube client against the tests' recording API server over loopback HTTP
//! (`tests/support/api_server.rs`). Every request is counted as the server saw it, so the
//! figures are what a real API server would be sent. A plain harness: one line per case,
//! `scale-down <case>: <figures>`. Run: `cargo bench --bench scale_down` (scripts/bench runs it).
//!
//! Cases, for P pods of which every 5th is a busy worker host (1–4 slots in use), scaled P → P/2:
//! - first: no pod annotated yet (idle pods need no write: unset is 0; busy ones get their cost);
//! - again: the same busy pods, scaled down again (every cost is right already);
//! - churn: a tenth of the pods changed (busy ↔ idle, or other slots in use) since the last one;
//! - drained: every pod idle now (the busy ones' costs go back to 0).

#[allow(dead_code)]
#[path = "../tests/support/api_server.rs"]
mod api_server;

use api_server::ApiServer;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::target::Targets;
use temporal_autoscaler::target::fleet::{Current, Fleet};

const SPEC: &str = r#"
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {name: bench, namespace: default}
spec:
  scaleTargetRef: {name: bench-worker}
  triggers:
    - type: temporal
      metadata: {endpoint: "t:7233", taskQueue: orders, targetSlotUtilization: "0.8"}
"#;

/// The slots in use on pod `i` in `round` (0: idle).
fn busy(i: usize, round: usize) -> u32 {
    // A tenth of the pods change per round of churn: those with i % 10 == round % 10 flip.
    let base = if i.is_multiple_of(5) {
        (i % 4) as u32 + 1
    } else {
        0
    };
    if round > 0 && i % 10 == (round % 10) {
        if base == 0 { 2 } else { 0 }
    } else {
        base
    }
}

fn host(i: usize) -> String {
    format!("w-{i:05}")
}

struct Case {
    pod_writes: usize,
    requests: usize,
    millis: f64,
}

/// One scale-down of the agent's act step: read, steer toward `hosts`, write P/2.
async fn scale_down(
    api: &ApiServer,
    fleet: &mut Fleet,
    pods: usize,
    hosts: &[(String, u32)],
) -> Case {
    api.replicas.store(pods as u64, Ordering::SeqCst);
    let from = api.count();
    let start = Instant::now();
    let Current::Total(n) = fleet.read().await else {
        panic!("the bench API server is readable")
    };
    assert_eq!(n as usize, pods);
    let writes = [Some((pods / 2) as u32)];
    let steered = fleet.steer(&writes, hosts).await;
    assert!(
        matches!(steered.first(), Some(Some(Ok(_)))),
        "steered: {:?}",
        steered
            .first()
            .map(|s| s.as_ref().map(|r| r.as_ref().err().map(|e| e.to_string())))
    );
    let written = fleet.write_all(&writes).await;
    assert!(matches!(written.first(), Some(Some(Ok(true)))));
    let millis = start.elapsed().as_secs_f64() * 1000.0;
    let seen = api.since(from);
    let pod_writes = api
        .writes(&seen)
        .iter()
        .filter(|(what, _)| what != "scale")
        .count();
    Case {
        pod_writes,
        requests: seen.len(),
        millis,
    }
}

async fn run(pods: usize) {
    let api = ApiServer::new("bench", pods as u64);
    let names: Vec<String> = (0..pods).map(host).collect();
    let refs: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
    api.set_pods(&refs);
    let deadline = Duration::from_secs(5);
    let client = api.client(deadline).await;
    let targets = Targets::with_clusters(
        Arc::new(Clusters::new(Some(client), &[]).with_timeout(deadline)),
        false,
    );
    let cfg = Arc::new(
        temporal_autoscaler::source::dir::parse_file(Path::new("bench.yaml"), SPEC)
            .expect("the bench spec is valid")
            .remove(0),
    );
    let mut fleet = Fleet::new(&targets, &cfg);
    // A first read outside the figures: the client's discovery of apps/v1 happens once per
    // target, not per scale-down.
    let _ = fleet.read().await;

    let hosts_at = |round: usize| -> Vec<(String, u32)> {
        let mut h: Vec<(String, u32)> = (0..pods).map(|i| (host(i), busy(i, round))).collect();
        h.sort();
        h
    };
    let busy_pods = (0..pods).filter(|&i| busy(i, 0) > 0).count();
    let cases = [
        ("first", hosts_at(0)),
        ("again", hosts_at(0)),
        ("churn", hosts_at(1)),
        (
            "drained",
            (0..pods).map(|i| (host(i), 0)).collect::<Vec<_>>(),
        ),
    ];
    for (name, hosts) in cases {
        let c = scale_down(&api, &mut fleet, pods, &hosts).await;
        // Requests besides the pod patches: the /scale read, the pod list, the /scale patch.
        let others = c.requests - c.pod_writes;
        println!(
            "scale-down {name}: {pods} pods ({busy_pods} busy) → {}: {} pod writes, {} requests ({} + {} others), {:.1} ms",
            pods / 2,
            c.pod_writes,
            c.requests,
            c.pod_writes,
            others,
            c.millis
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for pods in [10, 100, 1000] {
        rt.block_on(run(pods));
    }
}
