//! `temporal-autoscaler check`: the config directory's parsing and validation, offline, plus the
//! cross-file rules (one scaler per name, one scaler per target). Files with Temporal worker
//! controller WorkerResourceTemplates are rendered and checked per version ([`wrt`]).

pub mod wrt;

use crate::source::dir::{candidate_files, parse_file};
use crate::spec::{LOCAL, ScalerConfig};
use std::collections::HashMap;
use std::path::PathBuf;

pub struct CheckReport {
    pub files: usize,
    pub scalers: usize,
    /// One line per problem: file, document, field path, value, expectation.
    pub errors: Vec<String>,
}

/// The version WorkerResourceTemplates are rendered for when none is given.
pub fn example_version() -> crate::wrt::Version {
    crate::wrt::Version {
        build_id: "check".into(),
        temporal_namespace: "default".into(),
    }
}

/// Check `paths` for an agent that knows the remote clusters `known` (its settings' names).
pub fn check_paths_with(paths: &[PathBuf], known: &[String]) -> CheckReport {
    check_paths_for(paths, known, &example_version())
}

/// [`check_paths_with`], rendering WorkerResourceTemplates for `version`.
pub fn check_paths_for(
    paths: &[PathBuf],
    known: &[String],
    version: &crate::wrt::Version,
) -> CheckReport {
    let mut report = CheckReport {
        files: 0,
        scalers: 0,
        errors: Vec::new(),
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match candidate_files(p) {
                Ok(fs) => files.extend(fs),
                Err(e) => report
                    .errors
                    .push(format!("{}: cannot read directory: {e}", p.display())),
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut names: HashMap<(String, String), String> = HashMap::new();
    let mut targets: HashMap<(String, String, String, String, String), String> = HashMap::new();
    for f in files {
        report.files += 1;
        let content = match crate::source::dir::read_text(&f) {
            Ok(c) => c,
            Err((_, message)) => {
                report.errors.push(format!("{}: {message}", f.display()));
                continue;
            }
        };
        if let Some(checked) = wrt::check_file(&f, &content, version) {
            report.scalers += checked.scalers;
            report
                .errors
                .extend(checked.errors.iter().map(|e| e.to_string()));
            continue;
        }
        match parse_file(&f, &content) {
            Err(errs) => report.errors.extend(errs.iter().map(|e| e.to_string())),
            Ok(cfgs) => {
                for (i, c) in cfgs.iter().enumerate() {
                    let here = format!("{} document {i}", f.display());
                    report.scalers += 1;
                    if let Some(first) = names.get(&(c.namespace.to_string(), c.name.to_string())) {
                        report.errors.push(format!("{}: document {i}: metadata.name: scaler {}/{} is already defined in {first}", f.display(), c.namespace, c.name));
                        continue;
                    }
                    names.insert((c.namespace.to_string(), c.name.to_string()), here.clone());
                    report.errors.extend(
                        unknown_clusters(c, known)
                            .map(|e| format!("{}: document {i}: {e}", f.display())),
                    );
                    for cluster in c.placement.names() {
                        let tid = (
                            cluster.to_string(),
                            c.namespace.to_string(),
                            c.target.group_version().0.to_string(),
                            c.target.kind.to_string(),
                            c.target.name.clone(),
                        );
                        if let Some(first) = targets.get(&tid) {
                            let in_cluster = if cluster == LOCAL {
                                String::new()
                            } else {
                                format!(" in cluster {cluster}")
                            };
                            report.errors.push(format!(
                                "{}: document {i}: spec.scaleTargetRef: {} {}/{}{in_cluster} is already scaled by {first}",
                                f.display(),
                                c.target.kind,
                                c.namespace,
                                c.target.name
                            ));
                            continue;
                        }
                        targets.insert(tid, here.clone());
                    }
                }
            }
        }
    }
    report
}

/// The cluster names of a scaler that the agent does not know, as field errors.
fn unknown_clusters<'a>(
    c: &'a ScalerConfig,
    known: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    let field = |j: usize| {
        if c.placement.spread {
            format!("spec.placement.clusters[{j}].name")
        } else {
            "spec.scaleTargetRef.cluster".to_string()
        }
    };
    c.placement
        .names()
        .enumerate()
        .filter(move |(_, n)| *n != LOCAL && !known.iter().any(|k| k == n))
        .map(move |(j, n)| {
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            format!(
                "{}: got {n:?}, expected a cluster the agent knows (local, or one of its settings' clusters: {known}; give them with --settings or --cluster NAME=KUBECONFIG)",
                field(j)
            )
        })
}
