//! Identity of a live scaler: where its spec came from (the config directory or a custom
//! resource), its namespace and its name. Every stage keys by it, so it sits with the spec.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

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

/// Identity of a live scaler. Its strings are shared: the registry, the state, the scaler and
/// its view each hold the key (10,000 scalers), and a clone is two reference counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScalerKey {
    pub source: SourceKind,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ScalerKey {
    pub fn new(
        source: SourceKind,
        namespace: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
    ) -> Self {
        ScalerKey {
            source,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ScalerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.source, self.namespace, self.name)
    }
}
