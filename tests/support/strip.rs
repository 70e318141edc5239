//! A gRPC front end of a dev server that answers `ListWorkers` without `workers_info` (field 1,
//! deprecated: "We will stop populating this field in the future"), as such a server will:
//! every other call, and every other field, passes through unchanged. nginx cannot rewrite a
//! gRPC message, so this is an HTTP/2 proxy that decodes that one response.

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use temporalio_common::protos::temporal::api::workflowservice::v1::ListWorkersResponse;

/// What the front end removed: `ListWorkers` answers rewritten, and the heartbeats they held.
#[derive(Default)]
pub struct Stripped {
    pub responses: AtomicUsize,
    pub heartbeats: AtomicUsize,
}

/// Starts the front end of the dev server on `upstream`; returns its port.
pub async fn without_workers_info(upstream: u16) -> (u16, Arc<Stripped>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let stripped = Arc::new(Stripped::default());
    let seen = stripped.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (client, seen) = (client.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    forward(client.clone(), upstream, seen.clone(), req)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (port, stripped)
}

type Body = BoxBody<Bytes, hyper::Error>;

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream: u16,
    seen: Arc<Stripped>,
    req: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let strip = req.uri().path().ends_with(".WorkflowService/ListWorkers");
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = format!("http://127.0.0.1:{upstream}{path}")
        .parse()
        .unwrap();
    let resp = match client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => panic!("the dev server behind the front end failed: {e}"),
    };
    let (mut parts, body) = resp.into_parts();
    if !strip {
        return Ok(Response::from_parts(parts, body.boxed()));
    }
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let out = rewrite(&data, &seen);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    let mut frames: Vec<Result<Frame<Bytes>, hyper::Error>> = vec![Ok(Frame::data(out))];
    frames.extend(trailers.map(|t| Ok(Frame::trailers(t))));
    Ok(Response::from_parts(
        parts,
        StreamBody::new(futures::stream::iter(frames)).boxed(),
    ))
}

/// Each length-prefixed gRPC message of the body, with `workers_info` cleared.
fn rewrite(data: &[u8], seen: &Stripped) -> Bytes {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while rest.len() >= 5 {
        assert_eq!(rest[0], 0, "a compressed ListWorkers answer");
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let mut msg = ListWorkersResponse::decode(&rest[5..5 + len]).expect("ListWorkersResponse");
        #[allow(deprecated)]
        {
            seen.heartbeats
                .fetch_add(msg.workers_info.len(), Ordering::Relaxed);
            msg.workers_info.clear();
        }
        seen.responses.fetch_add(1, Ordering::Relaxed);
        let body = msg.encode_to_vec();
        out.push(0);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        rest = &rest[5 + len..];
    }
    Bytes::from(out)
}
