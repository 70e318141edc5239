//! What the agent writes to Kubernetes about its scalers: the custom resources' status and
//! events ([`status`]). What it exposes and remembers (metrics, state, the HTTP layer) is
//! in other modules; this one imports none of them.

pub mod status;
