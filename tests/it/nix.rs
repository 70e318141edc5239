//! The Nix flake, as far as it can be checked without nixpkgs or the network: every Nix file
//! parses (`nix-instantiate --parse`, Debian's nix-bin, which .ci/run installs), the source
//! filter keeps the files the build and the sandboxed tests read (evaluated for real: it uses
//! only builtins), and flake.lock pins exactly the flake's inputs.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `nix-instantiate`, or None where it is missing outside CI (CI installs it: there a missing
/// one fails the test).
fn nix_instantiate() -> Option<Command> {
    let found = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if found {
        return Some(Command::new("nix-instantiate"));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nix-instantiate is missing (apt-get install --no-install-recommends nix-bin)"
    );
    // Straight to stderr, which the harness does not capture: visible in a plain `cargo test`.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: nix-instantiate is not installed (apt-get install nix-bin)"
    );
    None
}

fn nix_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("flake.nix")];
    for entry in std::fs::read_dir(root().join("nix")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "nix") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn nix_files_parse() {
    let files = nix_files();
    for name in ["flake.nix", "package.nix", "image.nix", "source-filter.nix"] {
        assert!(
            files.iter().any(|f| f.file_name().unwrap() == name),
            "{name} is missing: {files:?}"
        );
    }
    if nix_instantiate().is_none() {
        return;
    }
    for file in files {
        let out = nix_instantiate()
            .unwrap()
            .arg("--parse")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not parse: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every file under `dir`, relative to the repository root.
fn files_under(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(
                path.strip_prefix(root())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn the_source_filter_keeps_what_the_build_and_tests_read() {
    // Besides crane's *.rs / *.toml / Cargo.lock: the committed CRD and the examples (read by
    // src/spec's and tests/it/cli.rs' tests), the Python worker, proptest's regressions, protos.
    let mut kept = Vec::new();
    files_under(&root().join("config"), &mut kept);
    assert!(kept.contains(&"config/crd/temporalscalers.yaml".to_string()));
    files_under(&root().join("proptest-regressions"), &mut kept);
    kept.push("tests/support/noop_worker.py".into());
    kept.push("proto/example.proto".into());
    let dropped = [
        "README.md",
        "flake.nix",
        "flake.lock",
        "nix/package.nix",
        "scripts/helm.py",
        "charts/temporal-autoscaler/values.yaml",
        "charts/temporal-autoscaler/files/crd.yaml",
        ".ci/run",
    ];
    let Some(mut nix) = nix_instantiate() else {
        return;
    };
    let list = |paths: &[String]| {
        paths
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let all: Vec<String> = kept
        .iter()
        .cloned()
        .chain(dropped.iter().map(|s| s.to_string()))
        .collect();
    let expr = format!(
        "let root = {root}; f = import {root}/nix/source-filter.nix root; \
         in map (p: f (root + \"/${{p}}\") \"regular\") [ {list} ]",
        root = root().display(),
        list = list(&all),
    );
    let out = nix
        .args(["--eval", "--strict", "--json", "--expr", &expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    for (path, keep) in all.iter().zip(verdicts) {
        let expected = kept.contains(path);
        assert_eq!(keep, expected, "source filter on {path}");
    }
}

#[test]
fn flake_lock_pins_exactly_the_flakes_inputs() {
    let flake = std::fs::read_to_string(root().join("flake.nix")).unwrap();
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("flake.lock")).unwrap()).unwrap();
    assert_eq!(lock["version"], 7);
    let root_node = lock["root"].as_str().unwrap();
    let inputs = lock["nodes"][root_node]["inputs"].as_object().unwrap();
    let mut names: Vec<&String> = inputs.keys().collect();
    names.sort();
    assert_eq!(names, ["crane", "nixpkgs"]);
    for (name, node) in inputs {
        assert!(
            flake.contains(&format!("{name}.url = \"github:")),
            "flake.nix has no input {name}"
        );
        let locked = &lock["nodes"][node.as_str().unwrap()]["locked"];
        assert_eq!(locked["type"], "github", "{name}");
        let rev = locked["rev"].as_str().unwrap();
        assert!(
            rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: {rev}"
        );
        assert!(
            locked["narHash"].as_str().unwrap().starts_with("sha256-"),
            "{name}"
        );
    }
}
