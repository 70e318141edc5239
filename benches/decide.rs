//! Micro-benchmark of the decision core: one `decide()` with a full HPA behavior (both
//! directions with policies, stabilization windows, tolerance), two triggers, and a history of
//! a busy hour. A plain harness (no extra dependency): the median of 30 batches, printed as
//! `decide: <ns> per decision`. Run: `cargo bench --bench decide`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use temporal_autoscaler::decide::{History, Input, Pause, Signals, TriggerReading, decide};

const SPEC: &str = r#"
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {name: bench, namespace: bench}
spec:
  scaleTargetRef: {name: worker}
  pollingInterval: 15
  cooldownPeriod: 300
  minReplicaCount: 0
  maxReplicaCount: 200
  fallback: {failureThreshold: 3, replicas: 5}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 60
          selectPolicy: Max
          policies:
            - {type: Percent, value: 100, periodSeconds: 15}
            - {type: Pods, value: 4, periodSeconds: 15}
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          policies:
            - {type: Percent, value: 10, periodSeconds: 60}
            - {type: Pods, value: 2, periodSeconds: 60}
  triggers:
    - type: temporal
      name: workflows
      metadata: {endpoint: "t:7233", taskQueue: orders, queueTypes: workflow, targetQueueSize: "5", targetBacklogAgeSeconds: "30", growthLookaheadSeconds: "60"}
    - type: temporal
      name: activities
      metadata: {endpoint: "t:7233", taskQueue: orders, queueTypes: activity, targetQueueSize: "10"}
"#;

fn main() {
    let cfg = temporal_autoscaler::source::dir::parse_file(Path::new("bench.yaml"), SPEC)
        .expect("the bench spec is valid")
        .remove(0);
    let start = Instant::now();
    // An hour of 15 s ticks: recommendations and scale events fill the windows.
    let mut history = History::default();
    let mut current = 10u32;
    for i in 0..240u64 {
        let t = start + Duration::from_secs(15 * i);
        let rec = 10 + (i % 17) as u32;
        history.record_recommendation(t, rec, &cfg.behavior);
        if i % 8 == 0 {
            history.record_scale(t, current, rec, &cfg.behavior);
            current = rec;
        }
    }
    let now = start + Duration::from_secs(15 * 240);
    let readings = vec![
        TriggerReading {
            name: "workflows".into(),
            backlog: Ok(137),
            target: 5.0,
            activation: 0.0,
            signals: Signals {
                backlog_age_secs: 42.0,
                target_backlog_age_secs: Some(30.0),
                growth_per_sec: 1.5,
                lookahead_secs: Some(60.0),
                ..Signals::default()
            },
        },
        TriggerReading {
            name: "activities".into(),
            backlog: Ok(80),
            target: 10.0,
            activation: 0.0,
            signals: Signals::default(),
        },
    ];
    let input = Input {
        config: &cfg,
        current,
        readings: &readings,
        now,
        observing_since: start,
        started_at: start,
        pause: Pause::No,
    };
    let per_batch = 20_000u32;
    let mut batches = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        for _ in 0..per_batch {
            black_box(decide(black_box(&input), black_box(&history)));
        }
        batches.push(t.elapsed() / per_batch);
    }
    batches.sort();
    let d = decide(&input, &history);
    println!(
        "decide: {} ns per decision (median of 30 batches of {per_batch}; min {} ns; result {} replicas)",
        batches[15].as_nanos(),
        batches[0].as_nanos(),
        d.desired
    );
}
