//! Lease guard tests: the pure decision, `Guard::may_write`, and recorded-call tests of the
//! Lease protocol against a mock API server (every request asserted: method, path with query,
//! content type and JSON body; nothing else may be sent).

use super::*;
use crate::test_support::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Pure: next_action
// ---------------------------------------------------------------------------------------------

fn spec(holder: Option<&str>, duration: Option<i32>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_string),
        lease_duration_seconds: duration,
        renew_time: Some(MicroTime("2025-06-01T10:00:00Z".parse().unwrap())),
        lease_transitions: Some(3),
        ..Default::default()
    }
}

#[test]
fn no_lease_creates() {
    let t0 = Instant::now();
    assert_eq!(next_action(None, "agent-a", t0, t0), LeaseAction::Create);
}

#[test]
fn own_lease_renews_even_when_old() {
    let t0 = Instant::now();
    let s = spec(Some("agent-a"), Some(15));
    assert_eq!(next_action(Some(&s), "agent-a", t0, t0), LeaseAction::Renew);
    let later = t0 + Duration::from_secs(3600);
    assert_eq!(
        next_action(Some(&s), "agent-a", t0, later),
        LeaseAction::Renew
    );
}

#[test]
fn other_holder_seen_recently_is_followed() {
    let t0 = Instant::now();
    let s = spec(Some("agent-b"), Some(15));
    let follow = LeaseAction::Follow {
        holder: "agent-b".into(),
    };
    assert_eq!(next_action(Some(&s), "agent-a", t0, t0), follow);
    // One second short of a full leaseDurationSeconds.
    assert_eq!(
        next_action(Some(&s), "agent-a", t0, t0 + Duration::from_secs(14)),
        follow
    );
    // The lease's own renewTime (years ago by our clock) does not matter: only local observation.
    assert_eq!(
        next_action(
            Some(&s),
            "agent-a",
            t0 + Duration::from_secs(100),
            t0 + Duration::from_secs(101)
        ),
        follow
    );
}

#[test]
fn other_holder_unrenewed_for_a_full_duration_is_taken_over() {
    let t0 = Instant::now();
    let s = spec(Some("agent-b"), Some(15));
    assert_eq!(
        next_action(Some(&s), "agent-a", t0, t0 + Duration::from_secs(15)),
        LeaseAction::TakeOver
    );
    assert_eq!(
        next_action(Some(&s), "agent-a", t0, t0 + Duration::from_secs(60)),
        LeaseAction::TakeOver
    );
    // The duration is the holder's leaseDurationSeconds, not ours.
    let short = spec(Some("agent-b"), Some(2));
    assert_eq!(
        next_action(Some(&short), "agent-a", t0, t0 + Duration::from_secs(2)),
        LeaseAction::TakeOver
    );
    // Absent leaseDurationSeconds: client-go's default of 15 s.
    let unset = spec(Some("agent-b"), None);
    assert_eq!(
        next_action(Some(&unset), "agent-a", t0, t0 + Duration::from_secs(14)),
        LeaseAction::Follow {
            holder: "agent-b".into()
        }
    );
    assert_eq!(
        next_action(Some(&unset), "agent-a", t0, t0 + Duration::from_secs(15)),
        LeaseAction::TakeOver
    );
}

#[test]
fn empty_or_absent_holder_is_taken_over_at_once() {
    let t0 = Instant::now();
    for holder in [None, Some("")] {
        let s = spec(holder, Some(15));
        assert_eq!(
            next_action(Some(&s), "agent-a", t0, t0),
            LeaseAction::TakeOver,
            "holder {holder:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Guard::may_write
// ---------------------------------------------------------------------------------------------

#[test]
fn may_write_follows_the_published_state() {
    let t0 = Instant::now();
    let (tx, rx) = watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let guard = Guard::new(rx, Duration::from_secs(5));
    assert!(!guard.may_write(t0), "not leader");

    tx.send_replace(LeaderState {
        leader: true,
        since: Some(t0),
        valid_until: Some(t0 + Duration::from_secs(15)),
    });
    assert!(guard.state().leader);
    assert!(guard.may_write(t0));
    assert!(guard.may_write(t0 + Duration::from_secs(9)));
    // Within the margin of valid_until: writes stop before the lease would expire.
    assert!(!guard.may_write(t0 + Duration::from_secs(10)));
    assert!(!guard.may_write(t0 + Duration::from_secs(12)));
    assert!(!guard.may_write(t0 + Duration::from_secs(20)));

    // Leader without an expiry (acting alone): always.
    tx.send_replace(LeaderState {
        leader: true,
        since: Some(t0),
        valid_until: None,
    });
    assert!(guard.may_write(t0 + Duration::from_secs(3600)));

    // Leadership lost while valid_until is still ahead: no.
    tx.send_replace(LeaderState {
        leader: false,
        since: None,
        valid_until: Some(t0 + Duration::from_secs(15)),
    });
    assert!(!guard.may_write(t0));
    assert!(!guard.subscribe().borrow().leader);
}

#[test]
fn alone_may_always_write() {
    let guard = Guard::alone();
    let t0 = Instant::now();
    let state = guard.state();
    assert!(state.leader);
    assert!(state.since.is_some());
    assert_eq!(state.valid_until, None);
    assert!(guard.may_write(t0));
    assert!(guard.may_write(t0 + Duration::from_secs(365 * 24 * 3600)));
    // The channel stays open: a clone still sees the same state.
    assert!(guard.clone().may_write(t0));
}

// ---------------------------------------------------------------------------------------------
// Mock API server
// ---------------------------------------------------------------------------------------------

const NS: &str = "temporal-system";
const NAME: &str = "temporal-autoscaler";
const ME: &str = "agent-a";
const OTHER: &str = "agent-b";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/temporal-system/leases";
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/temporal-system/leases/temporal-autoscaler";

fn runner(client: Client) -> LeaseRunner {
    LeaseRunner::new(
        client,
        LeaseSettings {
            name: NAME.into(),
            namespace: NS.into(),
            identity: ME.into(),
            duration: Duration::from_secs(15),
        },
    )
}

fn lease(holder: Option<&str>, rv: &str, renew: &str, transitions: i32) -> Value {
    let mut spec = json!({
        "leaseDurationSeconds": 15,
        "acquireTime": "2025-06-01T09:00:00.000000Z",
        "renewTime": renew,
        "leaseTransitions": transitions,
    });
    if let Some(h) = holder {
        spec["holderIdentity"] = json!(h);
    }
    json!({
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": "6f1c1a4e-5b7d-4c1e-9d3a-2b8e0f4a7c11",
            "resourceVersion": rv,
            "creationTimestamp": "2025-06-01T09:00:00Z",
        },
        "spec": spec,
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": { "name": NAME, "group": "coordination.k8s.io", "kind": "leases" },
        "code": code,
    })
}

fn not_found() -> Value {
    status(
        404,
        "NotFound",
        "leases.coordination.k8s.io \"temporal-autoscaler\" not found",
    )
}

fn conflict() -> Value {
    status(
        409,
        "Conflict",
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"temporal-autoscaler\": \
         the object has been modified; please apply your changes to the latest version and try again",
    )
}

/// Removes `spec.<field>` from a written body and checks it is a fresh MicroTime
/// (RFC 3339, UTC, exactly six fractional digits, as the API server parses it).
fn take_fresh_time(body: &mut Value, field: &str) -> String {
    let v = body["spec"]
        .as_object_mut()
        .unwrap()
        .remove(field)
        .unwrap_or_else(|| panic!("spec.{field} missing"));
    let s = v.as_str().expect("a string").to_string();
    assert_eq!(s.len(), 27, "{s}: not a MicroTime");
    assert_eq!((&s[19..20], &s[26..]), (".", "Z"), "{s}: not a MicroTime");
    let t: jiff::Timestamp = s.parse().unwrap();
    let age = jiff::Timestamp::now().duration_since(t).unsigned_abs();
    assert!(age < Duration::from_secs(60), "{s} is not now");
    s
}

// ---------------------------------------------------------------------------------------------
// Mock: try_acquire_or_renew
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_lease_is_created_and_held() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let leader = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::NOT_FOUND, not_found());
            let call = expect(&mut h, Method::POST, &format!("{LEASES}?")).await;
            let mut body = call.json("application/json");
            let renew = take_fresh_time(&mut body, "renewTime");
            let acquire = take_fresh_time(&mut body, "acquireTime");
            assert_eq!(acquire, renew);
            assert_eq!(
                body,
                json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": { "name": NAME, "namespace": NS },
                    "spec": {
                        "holderIdentity": ME,
                        "leaseDurationSeconds": 15,
                        "leaseTransitions": 0,
                    },
                })
            );
            call.reply(StatusCode::CREATED, lease(Some(ME), "1001", &renew, 0));
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(leader.unwrap());
}

#[tokio::test]
async fn create_losing_the_race_is_not_leader() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let leader = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::NOT_FOUND, not_found());
            let call = expect(&mut h, Method::POST, &format!("{LEASES}?")).await;
            assert_eq!(call.json("application/json")["spec"]["holderIdentity"], ME);
            call.reply(
                StatusCode::CONFLICT,
                status(
                    409,
                    "AlreadyExists",
                    "leases.coordination.k8s.io \"temporal-autoscaler\" already exists",
                ),
            );
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(!leader.unwrap());
}

#[tokio::test]
async fn own_lease_is_renewed_with_its_resource_version() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let old_renew = "2025-06-01T10:00:00.000000Z";
    let leader = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, lease(Some(ME), "4711", old_renew, 2));
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            let mut body = call.json("application/json");
            let renew = take_fresh_time(&mut body, "renewTime");
            assert_ne!(renew, old_renew);
            // Everything else exactly as read: same resourceVersion, acquireTime, transitions.
            let mut expected = lease(Some(ME), "4711", old_renew, 2);
            expected["spec"]
                .as_object_mut()
                .unwrap()
                .remove("renewTime");
            assert_eq!(body, expected);
            call.reply(StatusCode::OK, lease(Some(ME), "4712", &renew, 2));
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(leader.unwrap());
}

#[tokio::test]
async fn fresh_lease_of_another_holder_is_only_read() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let leader = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE).await.reply(
                StatusCode::OK,
                lease(Some(OTHER), "4711", "2025-06-01T10:00:00.000000Z", 2),
            );
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(!leader.unwrap());
}

#[tokio::test]
async fn conflict_on_renew_is_not_leader() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let leader = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE).await.reply(
                StatusCode::OK,
                lease(Some(ME), "4711", "2025-06-01T10:00:00.000000Z", 2),
            );
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            assert_eq!(
                call.json("application/json")["metadata"]["resourceVersion"],
                "4711"
            );
            call.reply(StatusCode::CONFLICT, conflict());
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(!leader.unwrap());
}

#[tokio::test]
async fn other_api_errors_are_returned() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let res = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE).await.reply(
                StatusCode::FORBIDDEN,
                status(
                    403,
                    "Forbidden",
                    "leases.coordination.k8s.io \"temporal-autoscaler\" is forbidden: User \
                     \"system:serviceaccount:temporal-system:autoscaler\" cannot get resource \
                     \"leases\" in API group \"coordination.k8s.io\" in the namespace \"temporal-system\"",
                ),
            );
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    match res {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("expected a 403, got {other:?}"),
    }
}

/// Round 1 sees agent-b (follow), round 2 sees it renewed (follow: the clock restarts),
/// round 3 sees no change for a full leaseDurationSeconds since round 2: take over, with
/// leaseTransitions + 1 and the resourceVersion read in round 3.
#[tokio::test]
async fn stale_lease_of_another_holder_is_taken_over() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let renew_a = "2025-06-01T10:00:00.000000Z";
    let renew_b = "2025-06-01T10:00:02.000000Z";
    let rounds = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, lease(Some(OTHER), "100", renew_a, 4));
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, lease(Some(OTHER), "101", renew_b, 4));
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, lease(Some(OTHER), "101", renew_b, 4));
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            let mut body = call.json("application/json");
            let renew = take_fresh_time(&mut body, "renewTime");
            let acquire = take_fresh_time(&mut body, "acquireTime");
            assert_eq!(acquire, renew);
            let mut expected = lease(Some(ME), "101", renew_b, 5);
            let spec = expected["spec"].as_object_mut().unwrap();
            spec.remove("renewTime");
            spec.remove("acquireTime");
            assert_eq!(body, expected);
            call.reply(StatusCode::OK, lease(Some(ME), "102", &renew, 5));
            h
        },
        async move {
            let t0 = Instant::now();
            let mut out = vec![];
            for at in [0, 10, 25] {
                out.push(
                    r.try_acquire_or_renew(t0 + Duration::from_secs(at))
                        .await
                        .unwrap(),
                );
            }
            out
        },
    )
    .await;
    assert_eq!(rounds, [false, false, true]);
}

#[tokio::test]
async fn released_lease_is_taken_over_at_once() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let leader = scenario(
        handle,
        |mut h| async move {
            let mut released = lease(None, "200", "2025-06-01T10:00:00.000000Z", 4);
            released["spec"]["leaseDurationSeconds"] = json!(1);
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, released);
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            let body = call.json("application/json");
            assert_eq!(body["metadata"]["resourceVersion"], "200");
            assert_eq!(body["spec"]["holderIdentity"], ME);
            assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(body["spec"]["leaseTransitions"], 5);
            call.reply(
                StatusCode::OK,
                lease(Some(ME), "201", "2025-06-01T10:00:05.000000Z", 5),
            );
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(leader.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Mock: release
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn release_clears_our_holder() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    let old_renew = "2025-06-01T10:00:00.000000Z";
    scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, lease(Some(ME), "4711", old_renew, 2));
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            let mut body = call.json("application/json");
            let renew = take_fresh_time(&mut body, "renewTime");
            assert!(
                body["spec"]
                    .get("holderIdentity")
                    .is_none_or(Value::is_null),
                "holderIdentity must be cleared: {body}"
            );
            let mut expected = lease(None, "4711", old_renew, 2);
            let spec = expected["spec"].as_object_mut().unwrap();
            spec.remove("renewTime");
            spec.insert("leaseDurationSeconds".into(), json!(1));
            assert_eq!(body, expected);
            let mut done = lease(None, "4712", &renew, 2);
            done["spec"]["leaseDurationSeconds"] = json!(1);
            call.reply(StatusCode::OK, done);
            h
        },
        async move { r.release().await },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn release_leaves_another_holders_lease_alone() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE).await.reply(
                StatusCode::OK,
                lease(Some(OTHER), "4711", "2025-06-01T10:00:00.000000Z", 2),
            );
            h
        },
        async move { r.release().await },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn release_without_a_lease_does_nothing() {
    let (client, handle) = mock_client();
    let mut r = runner(client);
    scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::NOT_FOUND, not_found());
            h
        },
        async move { r.release().await },
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn renewals_refresh_validity_without_waking_subscribers_and_flips_do() {
    let (client, mut h) = mock_client();
    let (tx, rx) = watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let mut sub = rx.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(runner(client).run(tx, Arc::new(Metrics::new()), stop_rx));
    let renew = "2025-06-01T10:00:00.000000Z";

    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::NOT_FOUND, not_found());
    expect(&mut h, Method::POST, &format!("{LEASES}?"))
        .await
        .reply(StatusCode::CREATED, lease(Some(ME), "1", renew, 0));
    tokio::time::timeout(WAIT, sub.changed())
        .await
        .unwrap()
        .unwrap();
    let first = sub.borrow_and_update().clone();
    assert!(first.leader);

    // A renewal: validity moves on, subscribers are not woken.
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "1", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(Some(ME), "2", renew, 0));
    let third = expect(&mut h, Method::GET, LEASE).await;
    assert!(!sub.has_changed().unwrap(), "a renewal woke the scalers");
    let renewed = rx.borrow().clone();
    assert!(renewed.leader && renewed.since == first.since);
    assert!(renewed.valid_until > first.valid_until);

    // Another replica took the lease: a flip, which wakes them.
    third.reply(StatusCode::OK, lease(Some(OTHER), "3", renew, 1));
    tokio::time::timeout(WAIT, sub.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(!sub.borrow().leader);

    // Stopping as a follower releases nothing.
    stop_tx.send(true).unwrap();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(h.next_request().await.is_none());
}

/// An API server outage over ten retry periods is one WARN line when it starts and one INFO
/// line when the lease renews again, not a line per retry (a 20 s outage once gave 73).
#[tokio::test(start_paused = true)]
async fn an_api_server_outage_is_logged_when_it_starts_and_ends_not_per_retry() {
    let logs = LogCapture::default();
    let _capture = logs.install();
    let (client, mut h) = mock_client();
    let (tx, rx) = watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let task = tokio::spawn(runner(client).run(tx, metrics, stop_rx));
    let unavailable = status(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
    );
    for _ in 0..10 {
        expect(&mut h, Method::GET, LEASE)
            .await
            .reply(StatusCode::SERVICE_UNAVAILABLE, unavailable.clone());
    }
    // Back: the lease is ours and renews.
    let renew = "2025-06-01T10:00:00.000000Z";
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "1", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(Some(ME), "2", renew, 0));
    let mut sub = rx.clone();
    tokio::time::timeout(WAIT, sub.wait_for(|s| s.leader))
        .await
        .unwrap()
        .unwrap();
    stop_tx.send(true).unwrap();
    // Shutdown releases the lease.
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "2", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(None, "3", renew, 0));
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();

    let warn = logs.lines("WARN");
    assert_eq!(warn.len(), 1, "{}", logs.text());
    assert!(warn[0].contains("lease renewal failed"), "{warn:?}");
    assert!(logs.lines("ERROR").is_empty(), "{}", logs.text());
    let recovered: Vec<String> = logs
        .lines("INFO")
        .into_iter()
        .filter(|l| l.contains("lease renewal recovered"))
        .collect();
    assert_eq!(recovered.len(), 1, "{}", logs.text());
    assert!(recovered[0].contains("failures=10"), "{recovered:?}");
    // Every failure is still there at debug.
    assert_eq!(
        logs.lines("DEBUG")
            .iter()
            .filter(|l| l.contains("lease renewal failed"))
            .count(),
        9
    );
}

/// An API server that takes the Lease requests and never answers: each round fails at the
/// deadline (`kube_timeout`) instead of waiting for ever, and the next starts a retry period
/// later; the outage is logged once, as a timeout; it renews again once answered. (Losing the
/// lease when it runs out is judged on the real clock, which paused time does not move.)
#[tokio::test(start_paused = true)]
async fn a_silent_api_server_fails_each_round_at_its_deadline() {
    let logs = LogCapture::default();
    let _capture = logs.install();
    let (client, mut h) = mock_client();
    let (tx, rx) = watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let deadline = Duration::from_secs(2);
    let task = tokio::spawn(runner(client).with_timeout(deadline).run(
        tx,
        Arc::new(Metrics::new()),
        stop_rx,
    ));
    let renew = "2025-06-01T10:00:00.000000Z";
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "1", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(Some(ME), "2", renew, 0));
    let mut sub = rx.clone();
    tokio::time::timeout(WAIT, sub.wait_for(|s| s.leader))
        .await
        .unwrap()
        .unwrap();

    // Silent: every GET is taken and never answered (its reply handle kept).
    let mut unanswered = Vec::new();
    let mut at = Vec::new();
    for _ in 0..4 {
        unanswered.push(expect(&mut h, Method::GET, LEASE).await);
        at.push(tokio::time::Instant::now());
    }
    // A round every retry period (2 s) plus its deadline (2 s): never stuck on one request.
    for w in at.windows(2) {
        assert_eq!(w[1] - w[0], Duration::from_secs(4), "{at:?}");
    }

    // Answered again: renewed.
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "2", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(Some(ME), "3", renew, 0));
    tokio::time::timeout(WAIT, sub.wait_for(|s| s.leader))
        .await
        .unwrap()
        .unwrap();
    stop_tx.send(true).unwrap();
    expect(&mut h, Method::GET, LEASE)
        .await
        .reply(StatusCode::OK, lease(Some(ME), "3", renew, 0));
    expect(&mut h, Method::PUT, &format!("{LEASE}?"))
        .await
        .reply(StatusCode::OK, lease(None, "4", renew, 0));
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    drop(unanswered);

    let warn = logs.lines("WARN");
    assert_eq!(warn.len(), 1, "{}", logs.text());
    assert!(
        warn[0].contains("lease renewal failed") && warn[0].contains("timed out"),
        "{warn:?}"
    );
}

/// Config-directory scalers' learned schedules ride on the renewal (the same PUT, as an
/// annotation), and what the Lease holds is read into the state (the later run wins).
#[tokio::test]
async fn learned_schedules_ride_on_the_renewal_and_are_read_back() {
    use crate::decide::schedule::Learned;
    use crate::spec::{ScalerKey, SourceKind};
    let (client, handle) = mock_client();
    let state = crate::state::StateStore::new();
    let key = |name: &str| ScalerKey {
        source: SourceKind::Dir,
        namespace: "shop".into(),
        name: name.into(),
    };
    state.set_learned(
        &key("orders"),
        [(
            "default/nightly".to_string(),
            Learned {
                replicas: 12,
                action_at: 1_700_000_000,
            },
        )]
        .into(),
    );
    let mut r = runner(client).with_learned(state.clone());
    let old_renew = "2025-06-01T10:00:00.000000Z";
    let leader = scenario(
        handle,
        |mut h| async move {
            let mut read = lease(Some(ME), "4711", old_renew, 2);
            read["metadata"]["annotations"] = json!({
                learned::ANNOTATION: r#"{"shop/batch":{"default/hourly":{"actionAt":1699999000,"replicas":4}}}"#,
            });
            expect(&mut h, Method::GET, LEASE)
                .await
                .reply(StatusCode::OK, read);
            let call = expect(&mut h, Method::PUT, &format!("{LEASE}?")).await;
            let body = call.json("application/json");
            let kept: Value = serde_json::from_str(
                body["metadata"]["annotations"][learned::ANNOTATION]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                kept,
                json!({
                    "shop/batch": {"default/hourly": {"actionAt": 1699999000, "replicas": 4}},
                    "shop/orders": {"default/nightly": {"actionAt": 1700000000, "replicas": 12}},
                })
            );
            call.reply(StatusCode::OK, lease(Some(ME), "4712", old_renew, 2));
            h
        },
        async move { r.try_acquire_or_renew(Instant::now()).await },
    )
    .await;
    assert!(leader.unwrap());
    assert_eq!(state.learned(&key("batch"))["default/hourly"].replicas, 4);
}
