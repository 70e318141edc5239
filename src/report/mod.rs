//! What the agent writes to Kubernetes about its scalers: the custom resources' status and
//! events ([`status`]). What it exposes is `crate::metrics`, what it remembers `crate::state`,
//! and the web layer that serves both `crate::web`.

pub mod status;
