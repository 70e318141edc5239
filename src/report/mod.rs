//! Reporting: what each scaler is doing ([`state`]), Prometheus [`metrics`], the [`http`] server,
//! and logging persisting failures without a flood ([`outage`]).

pub mod http;
pub mod metrics;
pub mod outage;
pub mod state;
pub mod status;
