//! The integration tests, as one test binary: one link of the crate (with tonic and kube)
//! instead of one per file. Each file is a module; `cargo test --test it cluster::` runs one
//! file's tests, and the `#[ignore]`d real-cluster tests stay ignored
//! (`cargo test --test it -- --ignored`). Tests that install a process-global log subscriber
//! run alone in a child process of this binary (`support::alone`).

#[path = "../support/mod.rs"]
mod support;

mod bench_smoke;
mod capacity;
mod chart;
mod cli;
mod cluster;
mod cluster_outage;
mod crd_flow;
mod from_env;
mod fuzz_config;
mod home_hang;
mod hpa_conflict;
mod idle_first;
mod kube_flow;
mod multi_cluster;
mod nix;
mod outage_logs;
mod pipeline;
mod schedules;
mod status_page;
mod tls;
mod two_clusters;
mod versioning;
