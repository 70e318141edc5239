//! The benchmark command in its smoke mode (tiny sizes, one interval), on the test build of the
//! agent: every figure of the table is produced from a real run. Figures are not asserted:
//! benchmarks report, they never fail on a time (docs/performance.md).

use crate::support;

use std::path::PathBuf;
use support::{python, temporal_cli};

#[test]
fn the_benchmark_prints_every_figure() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = python()
        .arg(root.join("scripts/bench.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_temporal-autoscaler")])
        .arg("--temporal")
        .arg(temporal_cli())
        .arg("--smoke")
        // The front end that strips workers_info (examples/, built with the tests).
        .arg("--strip-binary")
        .arg(strip_binary())
        .output()
        .expect("python3 with the Temporal SDK (scripts/tools.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    for measure in [
        "process start → first decision",
        "RSS peak / steady",
        "CPU mean over the window",
        "Temporal RPCs per interval / distinct (queue, type)",
        "bytes per scaler",
        "slowest scaler: time since its last decision",
        // The scale scenario again with the worker-capacity signal on and real workers.
        "Temporal RPCs per interval / backlog reads + min(worker queries, namespace listing pages)",
        "real workers",
        // And through the front end that strips workers_info.
        "+ workers × interval ÷ heartbeat",
        "DescribeWorker per interval",
        "start → all N decided",
        "one file edited → new spec in force",
        "backlog visible → decision, p50 / p99",
        "as built / stripped",
    ] {
        let row = rows
            .iter()
            .find(|r| r.contains(measure))
            .unwrap_or_else(|| panic!("no row for {measure:?}:\n{stdout}"));
        // Each result holds a measured number.
        let result = row.split(" | ").nth(2).unwrap_or_default();
        assert!(
            result.chars().any(|c| c.is_ascii_digit()),
            "{measure}: {row}"
        );
    }
    // Behaviour (not time) the benchmark reports: the edited scaler alone restarted.
    let reload = rows
        .iter()
        .find(|r| r.contains("new spec in force"))
        .unwrap();
    assert!(
        reload.contains("spec restarts: 1; other scalers changed: 0 of 49"),
        "{reload}"
    );
    // Every scaler counted exactly its own workers (by queue and by version), with the
    // heartbeats listed and without them.
    let counted: Vec<&&str> = rows.iter().filter(|r| r.contains("real workers")).collect();
    assert_eq!(counted.len(), 2, "{stdout}");
    for r in counted {
        assert!(r.contains("every scaler counted its own: 50 of 50"), "{r}");
    }
}

/// examples/strip_workers_info, which `cargo test` builds beside the test binaries.
fn strip_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join("examples").join("strip_workers_info")
}
