//! Reporting: what each scaler is doing ([`state`]), Prometheus [`metrics`], and the [`http`] server.

pub mod http;
pub mod metrics;
pub mod state;
pub mod status;
