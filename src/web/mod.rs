//! The web layer: the HTTP [`http`] router (`/metrics`, `/scalers`, health, the status page),
//! and the status page ([`page`]: what it shows is gathered by [`overview`] from the shared
//! state, charted by [`chart`] from each scaler's history). It reads the state; nothing below
//! it knows it exists.

pub mod chart;
pub mod http;
pub mod overview;
pub mod page;
