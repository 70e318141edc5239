//! Real Temporal workers for the tests (tests/capacity/slot_worker.py, Python SDK): slot
//! workers that heartbeat every second, optionally each on a host name of its own, and the
//! `Hold` workflows whose activities keep a slot busy until a release file exists.

use super::{ChildGuard, DevServer, python, within};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/capacity/slot_worker.py")
}

/// A slot worker (see the script), running until dropped; returns once it polls.
pub async fn worker(server: &DevServer, queue: &str, args: &[&str]) -> ChildGuard {
    spawn_worker(python(), server, queue, args).await
}

/// A slot worker on a host of its own: its process in a new UTS namespace named `host`
/// (`unshare --uts`), so its heartbeats carry that host name, as a pod's would.
pub async fn worker_on(server: &DevServer, queue: &str, host: &str, args: &[&str]) -> ChildGuard {
    let py = python();
    let mut cmd = Command::new("unshare");
    cmd.args(["--uts", "sh", "-c", r#"hostname "$0" && exec "$@""#, host])
        .arg(py.get_program());
    for (k, v) in py.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    spawn_worker(cmd, server, queue, args).await
}

async fn spawn_worker(
    mut cmd: Command,
    server: &DevServer,
    queue: &str,
    args: &[&str],
) -> ChildGuard {
    let mut child = cmd
        .arg(script())
        .args([
            "worker",
            "--address",
            &server.endpoint(),
            "--task-queue",
            queue,
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with the Temporal SDK (scripts/tools.sh)");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    within(
        60,
        "the worker to poll",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).ok();
            assert_eq!(line.trim(), "ready", "the worker did not start");
        }),
    )
    .await
    .unwrap();
    guard
}

/// Start `n` workflows of `kind` (hold: one activity that waits for `release`; quick).
pub fn start(server: &DevServer, queue: &str, n: usize, kind: &str, release: &Path) {
    let out = python()
        .arg(script())
        .args([
            "start",
            "--address",
            &server.endpoint(),
            "--task-queue",
            queue,
        ])
        .args(["--workflows", &n.to_string(), "--kind", kind])
        .args(["--release-file", &release.display().to_string()])
        .output()
        .expect("python3 with the Temporal SDK");
    assert!(
        out.status.success(),
        "starting workflows: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
