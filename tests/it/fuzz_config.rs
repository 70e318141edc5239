//! Bad input, fuzzed, through the loader the config directory and `check` use (`DirState`:
//! list, read, parse, validate): arbitrary bytes, broken UTF-8, mutated documents, wrong types
//! in every field, huge numbers and deep nesting. For every case: no panic and no hang (the
//! case ends; parsing has nesting and size budgets); every rejection names the file, and, past
//! the file level, the document and the field or line; and the directory's other file keeps
//! its scaler running. The number of cases is printed (to the unredirected stderr, so CI shows
//! it without --nocapture).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use temporal_autoscaler::source::dir::{DirState, ReloadResult};

const GOOD: &str = r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: fuzzed
  namespace: shop
  labels: {team: orders}
  annotations: {note: x}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: fuzzed-worker
  pollingInterval: 5
  cooldownPeriod: 10
  initialCooldownPeriod: 0
  minReplicaCount: 0
  maxReplicaCount: 10
  idleReplicaCount: 0
  fallback: {failureThreshold: 3, replicas: 2, behavior: static}
  advanced:
    scaleToZeroReads: 3
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 30
          selectPolicy: Max
          tolerance: 0.1
          policies:
            - {type: Pods, value: 4, periodSeconds: 15}
  placement:
    policy: Weighted
    failureThreshold: 3
    clusters:
      - {name: local, weight: 2, minReplicaCount: 0, maxReplicaCount: 6}
      - {name: eu, weight: 1}
  scaleDown: {idleFirst: true}
  triggers:
    - type: temporal
      name: orders
      metadata:
        endpoint: temporal:7233
        taskQueue: orders
        queueTypes: workflow,activity
        targetQueueSize: "5"
        targetSlotUtilization: "0.8"
        tls: "true"
        apiKey: s3cr3t-key
"#;

/// The healthy neighbour: its scaler must run whatever its neighbour holds.
const NEIGHBOUR: &str = r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {name: neighbour}
spec:
  scaleTargetRef: {name: neighbour-worker}
  triggers:
    - type: temporal
      metadata: {endpoint: "temporal:7233", taskQueue: neighbour}
"#;

struct Outcome {
    accepted: bool,
}

/// Load a directory with the neighbour and `bytes` as `name`; check the invariants.
fn load(dir: &Path, name: &str, bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    std::fs::write(dir.join("0-neighbour.yaml"), NEIGHBOUR).unwrap();
    let mut st = DirState::new(dir);
    let result = st.reload().unwrap();
    let snap = st.snapshot();
    prop_assert!(
        snap.scalers.iter().any(|s| &*s.key.name == "neighbour"),
        "the neighbour's scaler stopped"
    );
    std::fs::remove_file(&file).unwrap();
    let Some(errors) = snap.errors.get(&file) else {
        return Ok(Outcome {
            accepted: result == ReloadResult::Applied,
        });
    };
    prop_assert!(!errors.is_empty());
    for e in errors {
        let text = e.to_string();
        prop_assert!(text.starts_with(&file.display().to_string()), "{text}");
        if let Some(d) = e.document {
            prop_assert!(text.contains(&format!("document {d}: ")), "{text}");
            if text.contains("invalid YAML") {
                // A syntax error has no field: it names its line.
                prop_assert!(
                    e.line.is_some() || text.contains(" at line "),
                    "a syntax error without a line: {text}"
                );
            } else {
                // Anything else names the field it is about (or the document's own shape).
                let names_field = ["spec", "metadata", "apiVersion", "kind"]
                    .iter()
                    .any(|f| text.contains(&format!("document {d}: {f}")))
                    || text.contains("missing field")
                    || text.contains("unknown field")
                    || text.contains("invalid type");
                prop_assert!(names_field, "no field: {text}");
            }
        }
        // The document's API key, whatever else is wrong with it.
        prop_assert!(!text.contains("s3cr3t-key"), "a secret was echoed: {text}");
    }
    Ok(Outcome { accepted: false })
}

/// Every leaf path of a JSON value, as (path, value).
fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(json!(k));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(json!(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
    if !path.is_empty() {
        out.push(path.clone());
    }
}

fn set(root: &mut Value, path: &[Value], new: Value) {
    let mut cur = root;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = match seg {
            Value::String(k) => cur.get_mut(k.as_str()),
            Value::Number(n) => cur.get_mut(n.as_u64().unwrap() as usize),
            _ => None,
        };
        match next {
            Some(child) if last => {
                *child = new;
                return;
            }
            Some(child) => cur = child,
            None => return,
        }
    }
}

/// Wrong types and extreme values for any field.
fn wrong_values() -> Vec<Value> {
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    vec![
        json!(null),
        json!(true),
        json!(-1),
        json!(0),
        json!(1.5e308),
        json!(-9_223_372_036_854_775_808i64),
        json!(18_446_744_073_709_551_615u64),
        json!(""),
        json!("not-a-number"),
        json!([]),
        json!({}),
        json!({"unexpected": {"nested": [1, 2, 3]}}),
        deep,
    ]
}

fn err_out(line: &str) {
    // Straight to the process's stderr: the test harness captures only the print macros.
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn every_field_with_every_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let good: Value = serde_saphyr::from_str(GOOD).unwrap();
    let mut paths = Vec::new();
    leaves(&good, &mut Vec::new(), &mut paths);
    let (mut cases, mut accepted) = (0, 0);
    for path in &paths {
        for bad in wrong_values() {
            let mut doc = good.clone();
            set(&mut doc, path, bad);
            for (ext, text) in [
                ("yaml", serde_saphyr::to_string(&doc).unwrap()),
                ("json", serde_json::to_string(&doc).unwrap()),
            ] {
                cases += 1;
                let out = load(dir.path(), &format!("case.{ext}"), text.as_bytes())
                    .unwrap_or_else(|e| panic!("{path:?}: {e}\n{text}"));
                accepted += usize::from(out.accepted);
            }
        }
    }
    err_out(&format!(
        "fuzz_config: {cases} documents with a wrong type in one of {} fields: {} rejected, {accepted} accepted (a value that is valid there)",
        paths.len(),
        cases - accepted
    ));
    assert!(cases > 1000);
}

fn mutation() -> impl Strategy<Value = Vec<u8>> {
    let good = GOOD.as_bytes().to_vec();
    let len = good.len();
    prop_oneof![
        // Arbitrary bytes, including broken UTF-8.
        prop::collection::vec(any::<u8>(), 0..400),
        // Flip, insert or delete bytes of a valid document.
        prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
            let mut b = good.clone();
            for (at, byte, op) in edits {
                let at = at.min(b.len());
                match op {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            b
        }),
        // Lines dropped, repeated or cut short.
        (prop::collection::vec(0usize..60, 1..5), any::<bool>()).prop_map(|(lines, cut)| {
            let mut ls: Vec<String> = GOOD.lines().map(str::to_owned).collect();
            for l in lines {
                let l = l % ls.len();
                if cut {
                    let keep = ls[l].len() / 2;
                    ls[l].truncate(keep);
                } else {
                    let dup = ls[l].clone();
                    ls.insert(l, dup);
                }
            }
            ls.join("\n").into_bytes()
        }),
        // Huge numbers and deep nesting in YAML text.
        (1usize..5000).prop_map(|depth| format!(
            "{}spec: {}{}{}\n",
            GOOD.split("spec:").next().unwrap(),
            "[".repeat(depth),
            "1",
            "]".repeat(depth)
        )
        .into_bytes()),
        "[0-9]{20,400}".prop_map(|n| GOOD
            .replace("maxReplicaCount: 10", &format!("maxReplicaCount: {n}"))
            .into_bytes()),
    ]
}

#[test]
fn arbitrary_and_mutated_documents() {
    let dir = tempfile::tempdir().unwrap();
    let cases = 600;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&(mutation(), any::<bool>()), |(bytes, json)| {
            let name = if json { "case.json" } else { "case.yaml" };
            let out = load(dir.path(), name, &bytes)?;
            let (a, r) = counts.get();
            counts.set(if out.accepted { (a + 1, r) } else { (a, r + 1) });
            Ok(())
        })
        .unwrap();
    let (a, r) = counts.get();
    err_out(&format!(
        "fuzz_config: {} arbitrary or mutated files: {r} rejected, {a} accepted",
        a + r
    ));
}
