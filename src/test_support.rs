//! Recorded-call harness for Kubernetes tests: a mock API server (tower-test) on which every
//! request is asserted (method, path with query, content type, JSON body) and answered.

use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
pub type SendResponse = tower_test::mock::SendResponse<Response<Body>>;

pub const WAIT: Duration = Duration::from_secs(5);
pub fn mock_client() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// One request as the API server received it.
pub struct Call {
    pub content_type: Option<String>,
    pub body: Option<Value>,
    pub send: SendResponse,
}

impl Call {
    pub fn reply(self, status: StatusCode, body: Value) {
        let resp = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        self.send.send_response(resp);
    }

    pub fn reply_text(self, status: StatusCode, text: &str) {
        let resp = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(text.as_bytes().to_vec()))
            .unwrap();
        self.send.send_response(resp);
    }

    pub fn json(&self, content_type: &str) -> Value {
        assert_eq!(self.content_type.as_deref(), Some(content_type));
        self.body.clone().expect("a request body")
    }
}

/// Receives the next request, asserting its method and exact path (with query string).
pub async fn expect(handle: &mut Handle, method: Method, uri: &str) -> Call {
    let (req, send) = handle
        .next_request()
        .await
        .unwrap_or_else(|| panic!("expected {method} {uri}, but the client sent nothing more"));
    let (parts, body) = req.into_parts();
    assert_eq!(
        (&parts.method, parts.uri.to_string().as_str()),
        (&method, uri),
        "unexpected request"
    );
    let bytes = body.collect().await.unwrap().to_bytes();
    let body = (!bytes.is_empty())
        .then(|| serde_json::from_slice(&bytes).expect("the request body is JSON"));
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    if method == Method::GET {
        assert_eq!(body, None, "a GET has no body");
    }
    Call {
        content_type,
        body,
        send,
    }
}

/// Runs the API server script against the client side; fails on a hang, on a missing request,
/// and on any request left over once the client side is done (and dropped).
pub async fn scenario<S, T>(
    handle: Handle,
    server: impl FnOnce(Handle) -> S,
    client: impl Future<Output = T>,
) -> T
where
    S: Future<Output = Handle> + Send + 'static,
{
    let server = tokio::spawn(server(handle));
    // Dropping the client side (done or timed out) closes the mock service.
    let out = tokio::time::timeout(WAIT, client).await;
    let mut handle = match tokio::time::timeout(WAIT, server).await {
        Err(_) => panic!("the API server script hung"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the API server script failed: {e}"),
        Ok(Ok(handle)) => handle,
    };
    let out = out.expect("the client side hung (a request got no response)");
    match tokio::time::timeout(WAIT, handle.next_request()).await {
        Ok(None) => {}
        Ok(Some((req, _))) => panic!("unexpected request: {} {}", req.method(), req.uri()),
        Err(_) => panic!("the client was not dropped"),
    }
    out
}

/// Log lines captured from `tracing` for tests that count them (outage logging).
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Capture this thread's logs (debug and up) until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(sub)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// The lines logged at `level` ("WARN", "ERROR", "INFO", "DEBUG").
    pub fn lines(&self, level: &str) -> Vec<String> {
        let mark = format!(" {level:>5} ");
        self.text()
            .lines()
            .filter(|l| l.contains(&mark))
            .map(str::to_owned)
            .collect()
    }
}
