//! Deadlines on Kubernetes requests. An API server that hangs (a partition, a blackholed
//! route, an overloaded or paused process) accepts the connection and never answers; kube's
//! own default is to wait for ever (no read timeout). Every client the agent builds carries
//! [`DeadlineLayer`], so every request (`/scale`, discovery, the Lease, status, events, Secrets,
//! the watches' lists) ends within its deadline; and each operation of the agent (a `/scale`
//! read with its discovery, a write, a Lease round, a status write) is bounded as a whole by
//! [`within`], which also covers clients built elsewhere (tests, embedding programs).
//!
//! The deadline is on the response head: a watch's head comes at once and its stream then
//! runs for as long as the watch lasts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The deadline of a Kubernetes request when the settings name none (`kube_timeout`): well
/// within a polling interval (15 s or more), and at most the Lease's margin (a 15 s Lease stops
/// writes 5 s before it could expire), so a write checked against the Lease ends or is given
/// up before the Lease could pass to another replica.
pub const DEFAULT_KUBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request that got no answer within its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out: no answer from the API server within {after:?}")]
pub struct DeadlineExceeded {
    pub after: Duration,
}

impl DeadlineExceeded {
    fn kube_error(after: Duration) -> kube::Error {
        kube::Error::Service(Box::new(DeadlineExceeded { after }))
    }
}

/// The deadline `e` ran past, if it is a timeout (of [`DeadlineLayer`] or [`within`]).
pub fn timed_out(e: &kube::Error) -> Option<Duration> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(d) = err.downcast_ref::<DeadlineExceeded>() {
            return Some(d.after);
        }
        source = err.source();
    }
    None
}

/// Whether `e` is a timeout: past a deadline of ours, or a connection that could not be made
/// within the client's connect timeout (set to the same deadline by [`client`]; a paused API
/// server's listen backlog fills, and then connecting hangs too).
pub fn is_timeout(e: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<DeadlineExceeded>()
            || err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// Run one Kubernetes operation (one or several requests) under `deadline`: past it, the
/// operation is dropped (its requests cancelled) and fails as [`DeadlineExceeded`].
pub async fn within<T>(
    deadline: Duration,
    op: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    match tokio::time::timeout(deadline, op).await {
        Ok(res) => res,
        Err(_) => Err(DeadlineExceeded::kube_error(deadline)),
    }
}

/// A client for `config` whose every request has `deadline` (connecting included).
pub fn client(mut config: kube::Config, deadline: Duration) -> Result<kube::Client, kube::Error> {
    config.connect_timeout = Some(config.connect_timeout.map_or(deadline, |c| c.min(deadline)));
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&DeadlineLayer(deadline))
        .build())
}

/// Fails a request whose response head has not come within the deadline.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer(pub Duration);

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            after: self.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    after: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, Req> tower::Service<Req> for Deadline<S>
where
    S: tower::Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let (fut, after) = (self.inner.call(req), self.after);
        Box::pin(async move {
            match tokio::time::timeout(after, fut).await {
                Ok(res) => res.map_err(Into::into),
                Err(_) => Err(Box::new(DeadlineExceeded { after }) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    /// A client whose API server takes every request and never answers.
    fn silent() -> (
        kube::Client,
        tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let svc = tower::Layer::layer(&DeadlineLayer(Duration::from_millis(200)), svc);
        (kube::Client::new(svc, "default"), handle)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_with_no_answer_fails_at_its_deadline_and_names_it() {
        let (client, mut handle) = silent();
        let started = tokio::time::Instant::now();
        let call = tokio::spawn(async move { client.apiserver_version().await });
        // The request reached the server, which keeps it unanswered.
        let (_req, _send) = handle.next_request().await.expect("a request");
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(timed_out(&err), Some(Duration::from_millis(200)));
        assert!(is_timeout(&err));
        assert!(
            err.to_string()
                .contains("timed out: no answer from the API server within 200ms"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_deadline_passes_and_other_errors_are_not_timeouts() {
        let (client, mut handle) = silent();
        let call = tokio::spawn(async move { client.apiserver_version().await });
        let (_req, send) = handle.next_request().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        send.send_response(
            Response::builder()
                .body(Body::from(
                    br#"{"major":"1","minor":"36","gitVersion":"v1.36.1","gitCommit":"","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.25","compiler":"gc","platform":"linux/amd64"}"#.to_vec(),
                ))
                .unwrap(),
        );
        assert_eq!(call.await.unwrap().unwrap().minor, "36");

        let refused = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        assert_eq!(timed_out(&refused), None);
        assert!(!is_timeout(&refused));
        // A connect timeout (hyper-timeout's) is a timeout too, of no duration of ours.
        let connect = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "deadline has elapsed",
        )));
        assert!(is_timeout(&connect));
        assert_eq!(timed_out(&connect), None);
    }

    #[tokio::test(start_paused = true)]
    async fn within_bounds_an_operation_of_several_requests() {
        let op = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, kube::Error>(())
        };
        let started = tokio::time::Instant::now();
        let err = within(Duration::from_secs(1), op).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(timed_out(&err), Some(Duration::from_secs(1)));
        let fast = within(Duration::from_secs(1), async { Ok::<_, kube::Error>(7) });
        assert_eq!(fast.await.unwrap(), 7);
    }
}
