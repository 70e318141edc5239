//! `temporal-autoscaler check`: the config directory's parsing and validation, offline, plus the
//! cross-file rules (one scaler per name, one scaler per target).

use crate::source::dir::{candidate_files, parse_file};
use std::collections::HashMap;
use std::path::PathBuf;

pub struct CheckReport {
    pub files: usize,
    pub scalers: usize,
    /// One line per problem: file, document, field path, value, expectation.
    pub errors: Vec<String>,
}

pub fn check_paths(paths: &[PathBuf]) -> CheckReport {
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
    let mut targets: HashMap<(String, String, String, String), String> = HashMap::new();
    for f in files {
        report.files += 1;
        let content = match crate::source::dir::read_text(&f) {
            Ok(c) => c,
            Err((_, message)) => {
                report.errors.push(format!("{}: {message}", f.display()));
                continue;
            }
        };
        match parse_file(&f, &content) {
            Err(errs) => report.errors.extend(errs.iter().map(|e| e.to_string())),
            Ok(cfgs) => {
                for (i, c) in cfgs.iter().enumerate() {
                    let here = format!("{} document {i}", f.display());
                    report.scalers += 1;
                    if let Some(first) = names.get(&(c.namespace.clone(), c.name.clone())) {
                        report.errors.push(format!("{}: document {i}: metadata.name: scaler {}/{} is already defined in {first}", f.display(), c.namespace, c.name));
                        continue;
                    }
                    names.insert((c.namespace.clone(), c.name.clone()), here.clone());
                    let tid = (
                        c.namespace.clone(),
                        c.target.group_version().0.to_string(),
                        c.target.kind.clone(),
                        c.target.name.clone(),
                    );
                    if let Some(first) = targets.get(&tid) {
                        report.errors.push(format!(
                            "{}: document {i}: spec.scaleTargetRef: {} {}/{} is already scaled by {first}",
                            f.display(),
                            c.target.kind,
                            c.namespace,
                            c.target.name
                        ));
                        continue;
                    }
                    targets.insert(tid, here);
                }
            }
        }
    }
    report
}
