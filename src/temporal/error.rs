//! A failed Temporal read or connection: its kind (for status, metric labels and logs) and a
//! message that names the endpoint and queue, never a credential.

/// Error kinds, for status, metrics labels and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Config,
    Unavailable,
    Auth,
    NotFound,
    RateLimited,
    Timeout,
    /// The server has no such RPC (an older server, or one with the feature off).
    Unsupported,
    Other,
}

impl ErrorKind {
    /// The server could not be reached or did not answer in time: an outage of the
    /// connection, logged by the connection rather than by each scaler on it.
    pub fn is_connectivity(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }

    /// A failed call's kind and message. A proxy in front of Temporal may answer with plain
    /// HTTP (an HTML 401 page): tonic then reports a protocol error naming the HTTP status,
    /// which is mapped as gRPC maps HTTP statuses and said plainly.
    pub(super) fn status_error(method: &str, s: &tonic::Status) -> TemporalError {
        const MARK: &str = "while receiving response with status: ";
        if matches!(s.code(), tonic::Code::Internal | tonic::Code::Unknown)
            && let Some(at) = s.message().find(MARK)
        {
            let http = &s.message()[at + MARK.len()..];
            let kind = match http.get(..3) {
                Some("401") | Some("403") => Some(ErrorKind::Auth),
                Some("404") => Some(ErrorKind::NotFound),
                Some("429") => Some(ErrorKind::RateLimited),
                Some("502") | Some("503") | Some("504") => Some(ErrorKind::Unavailable),
                _ => None,
            };
            if let Some(kind) = kind {
                return terr(
                    kind,
                    format!("{method}: HTTP {http} (a plain HTTP answer, e.g. from a proxy)"),
                );
            }
        }
        // tonic reports a connection that broke or could not be made as Unknown "transport
        // error": the server is unreachable, not misbehaving.
        let kind = match s.code() {
            tonic::Code::Unknown if s.message().starts_with("transport error") => {
                ErrorKind::Unavailable
            }
            code => Self::from_code(code),
        };
        terr(kind, format!("{method}: {:?}: {}", s.code(), s.message()))
    }

    fn from_code(code: tonic::Code) -> Self {
        use tonic::Code::*;
        match code {
            Unauthenticated | PermissionDenied => ErrorKind::Auth,
            NotFound => ErrorKind::NotFound,
            ResourceExhausted => ErrorKind::RateLimited,
            DeadlineExceeded => ErrorKind::Timeout,
            Unavailable | Cancelled | Aborted => ErrorKind::Unavailable,
            InvalidArgument | FailedPrecondition => ErrorKind::Config,
            Unimplemented => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        }
    }
}

/// A failed read. The message names the endpoint and queue, never credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}", kind = kind.as_str())]
pub struct TemporalError {
    pub kind: ErrorKind,
    pub message: String,
}

pub(super) fn terr(kind: ErrorKind, message: impl Into<String>) -> TemporalError {
    TemporalError {
        kind,
        message: message.into(),
    }
}
