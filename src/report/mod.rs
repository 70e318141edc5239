//! Reporting: what each scaler is doing ([`state`]) and has done ([`history`]), Prometheus
//! [`metrics`], status and events on the custom resources ([`status`]), and logging
//! persisting failures without a flood ([`outage`]). The web layer that serves them is
//! `crate::web`, above this module.

pub mod history;
pub mod metrics;
pub mod outage;
pub mod state;
pub mod status;
