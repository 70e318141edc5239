//! Where specs come from. A source knows nothing about Temporal or scaling: it produces
//! validated [`ScalerConfig`]s keyed by [`ScalerKey`], and the errors of what it could not use.

pub mod crd;
pub mod dir;
pub mod yaml;

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The mounted config directory.
    Dir,
    /// TemporalScaler custom resources.
    Crd,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Dir => "dir",
            SourceKind::Crd => "crd",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a live scaler.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScalerKey {
    pub source: SourceKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ScalerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.source, self.namespace, self.name)
    }
}
