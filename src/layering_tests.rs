//! The module graph, from the source: top-level module A depends on B when A's code (outside
//! its tests) names `crate::B` (also inside `crate::{…}`). Imports flow one way: `spec` at the
//! bottom names nothing; `agent` wires, `registry` and `scaler` run scalers, `web` serves, all
//! on the shared `context` below them. No top-level module may sit in a cycle (a new one fails
//! here, in `cargo test`), and no source file grows past what a person reads in one sitting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and the top-level modules its non-test code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                // Test-only folders (decide/tests/).
                if path.file_name().is_some_and(|n| n != "tests") {
                    stack.push(path);
                }
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let name = rel.file_name().unwrap().to_str().unwrap();
            let test_only = name == "tests.rs"
                || name.ends_with("_tests.rs")
                || name == "test_support.rs"
                || name == "lib.rs"
                || name == "main.rs";
            if test_only || !name.ends_with(".rs") {
                continue;
            }
            let module = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let deps = g.entry(module.clone()).or_default();
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for used in named(&code) {
                if used != module {
                    deps.insert(used);
                }
            }
        }
    }
    g
}

/// The top-level modules `code` names: `crate::a::…`, and each `a` of `crate::{a::…, b}`.
fn named(code: &str) -> Vec<String> {
    let ident = |t: &str| -> String {
        t.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's top level: `b::{c, d}` inside names `b` alone.
            let (mut depth, mut start) = (0usize, 0usize);
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// Whether `to` is reachable from `from`.
fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for d in g.get(&m).into_iter().flatten() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    false
}

#[test]
fn no_top_level_module_is_in_a_cycle() {
    let g = graph();
    let mut cycles = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if reaches(&g, d, m) {
                cycles.push(format!("{m} -> {d} -> … -> {m}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
    // The spec is the bottom layer: it names no other module of the crate.
    assert!(g["spec"].is_empty(), "spec imports {:?}", g["spec"]);
}

#[test]
fn the_wiring_and_the_shared_context_are_in_no_cycle() {
    let g = graph();
    assert!(
        g.contains_key("agent") && g.contains_key("context"),
        "{g:?}"
    );
    let mut cycles = Vec::new();
    for m in [
        "agent", "context", "registry", "scaler", "web", "explain", "check",
    ] {
        for d in g.get(m).into_iter().flatten() {
            if reaches(&g, d, m) {
                cycles.push(format!("{m} -> {d} -> … -> {m}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
    // The shared state sits below its users.
    for above in ["agent", "registry", "scaler", "web"] {
        assert!(!reaches(&g, "context", above), "context depends on {above}");
    }
}

#[test]
fn grouped_imports_name_each_top_level_module() {
    assert_eq!(
        named("use crate::{spec::{A, B}, decide, metrics::M};\nx = crate::state::X;"),
        ["spec", "decide", "metrics", "state"]
    );
    assert_eq!(named("use crate::{self as c};"), Vec::<String>::new());
}

#[test]
fn the_graph_reader_sees_the_imports() {
    let g = graph();
    // Known edges: a scaler uses the shared context; the web layer reads the scalers' state.
    assert!(g["scaler"].contains("context"), "{:?}", g["scaler"]);
    assert!(g["web"].contains("state"), "{:?}", g["web"]);
    assert!(g["agent"].contains("registry"), "{:?}", g["agent"]);
}

/// Each source file (outside test files) in lines before its `#[cfg(test)]` module.
fn code_lines() -> Vec<(String, usize)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_str().unwrap();
            let test_only = name == "tests.rs" || name.ends_with("_tests.rs");
            if !name.ends_with(".rs") || test_only || path.parent().unwrap().ends_with("tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            let rel = path.strip_prefix(&src).unwrap().display().to_string();
            out.push((rel, code.lines().count()));
        }
    }
    out
}

#[test]
fn every_source_file_is_readable_in_one_sitting() {
    let files = code_lines();
    assert!(files.iter().any(|(f, _)| f == "lib.rs"), "{files:?}");
    let long: Vec<&(String, usize)> = files.iter().filter(|(_, n)| *n > 800).collect();
    assert!(
        long.is_empty(),
        "over 800 lines outside tests (split by concern): {long:?}"
    );
}
