//! Reporting: what each scaler is doing ([`state`]), Prometheus [`metrics`], the [`http`] server,
//! logging persisting failures without a flood ([`outage`]), and the status page ([`page`]:
//! what it shows is gathered by [`overview`], charted by [`chart`] from each scaler's
//! [`history`]).

pub mod chart;
pub mod history;
pub mod http;
pub mod metrics;
pub mod outage;
pub mod overview;
pub mod page;
pub mod state;
pub mod status;
