//! A gRPC front end of a Temporal server that answers `ListWorkers` without the deprecated
//! `workers_info` (as a server that stops filling it will), for `./scripts/bench`'s capacity
//! scenario without heartbeats in the listing. The tests use the same code
//! (tests/support/strip.rs).
//!
//!   strip_workers_info <upstream port>   # prints the port it listens on (127.0.0.1)

#[path = "../tests/support/strip.rs"]
mod strip;

#[tokio::main]
async fn main() {
    let upstream: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: strip_workers_info <upstream port>");
    let (port, _) = strip::without_workers_info(upstream).await;
    println!("{port}");
    std::future::pending::<()>().await;
}
