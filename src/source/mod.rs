//! Where specs come from. A source knows nothing about Temporal or scaling: it produces
//! validated [`ScalerConfig`]s keyed by [`ScalerKey`], and the errors of what it could not use.

pub mod crd;
pub mod dir;
pub mod yaml;

// A scaler's identity is part of the spec layer (below the stages that report on it); the
// sources are where keys are made, so they are named here too.
pub use crate::spec::key::{ScalerKey, SourceKind};
