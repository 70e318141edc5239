//! temporal-autoscaler: scales Kubernetes workloads on Temporal task-queue backlog.
//!
//! The pipeline, one module per stage: [`source`] (config directory; custom resources) →
//! [`registry`] (live scalers, target conflicts) → [`scaler`] (one loop per scaler: observe
//! [`temporal`] → [`decide`] (pure) → act through [`guard`] (Lease) and [`target`] (`/scale`)
//! → report: [`state`] (what it remembers), [`metrics`] (what it exposes), [`report`] (status
//! and events, what it writes)), served by [`web`].
//!
//! Imports flow one way (`layering_tests` fails on a cycle): [`spec`] (the TemporalScaler type,
//! its validation and a scaler's key) is the bottom and names no other module; [`decide`] and
//! [`outage`] sit just above it; [`clusters`] below [`target`]; the shared [`context`] below
//! `registry`, `scaler` and `web`; [`agent`] wires and runs. Every Kubernetes request has a
//! deadline ([`deadline`]).

pub mod agent;
pub mod check;
pub mod clock;
pub mod clusters;
pub mod context;
pub mod convert;
pub mod deadline;
pub mod decide;
pub mod explain;
pub mod gate;
pub mod guard;
pub mod intern;
pub mod latest;
pub mod metrics;
pub mod outage;
pub mod registry;
pub mod report;
pub mod scaler;
pub mod settings;
pub mod source;
pub mod spec;
pub mod state;
pub mod target;
pub mod temporal;
pub mod vec_map;
pub mod web;
pub mod wrt;

#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod layering_tests;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;

/// Errors that stop a command (start-up, CLI). Per-scaler problems are reported, not raised.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config directory {dir}: {source}")]
    ConfigDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch config directory {dir}: {source}")]
    Watch { dir: PathBuf, source: notify::Error },
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("no Kubernetes cluster reachable ({0}); use --dry-run to run without one")]
    NoCluster(String),
}
