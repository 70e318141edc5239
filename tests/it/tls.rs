//! Every auth mode against a real TLS front end: nginx (Debian's nginx-light: ssl, http2, grpc)
//! terminating TLS in front of a real Temporal dev server, with certificates made at test time.
//! The agent's reads go through `TemporalPool`, as in production.

use crate::support;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::{ChildGuard, DevServer, free_port, within};
use temporal_autoscaler::metrics::Metrics;
use temporal_autoscaler::spec::TriggerConfig;
use temporal_autoscaler::temporal::{ErrorKind, QueueStats, TemporalError, TemporalPool};

const API_KEY: &str = "tls-test-api-key-9f3b";
const QUEUE: &str = "tls-q";

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `key`: a server one for `names`, or a client one.
    fn leaf(&self, names: &[&str], client: bool, key: &KeyPair, expired: bool) -> String {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, "tls-test");
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2020, 1, 2);
        }
        p.signed_by(key, &self.issuer).unwrap().pem()
    }
}

/// The same key in other PEM encodings, through the openssl CLI (test material only: the agent
/// itself uses rustls).
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the openssl CLI (apt install openssl)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A client identity: certificate and key PEM.
struct Identity {
    cert: String,
    key: String,
}

fn ec_identity(ca: &Ca, expired: bool) -> Identity {
    let key = KeyPair::generate().unwrap();
    Identity {
        cert: ca.leaf(&[], true, &key, expired),
        key: key.serialize_pem(),
    }
}

/// Ports of the front end's servers; all proxy to the dev server with `grpc_pass`. The mTLS
/// server refuses with a gRPC status; the API-key ones with a plain HTTP 401 page, as a generic
/// proxy does.
struct Ports {
    /// TLS, server certificate for 127.0.0.1 and localhost.
    tls: u16,
    /// TLS requiring a client certificate from the CA.
    mtls: u16,
    /// TLS requiring `authorization: Bearer API_KEY`.
    api_key: u16,
    /// TLS whose certificate names only `temporal.test`.
    named: u16,
    /// Plaintext h2c requiring the API key (a trusted proxy on the same host).
    plain_api_key: u16,
}

struct Nginx {
    _child: ChildGuard,
    ports: Ports,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, ca: &Ca, upstream: u16) -> Nginx {
        let key = KeyPair::generate().unwrap();
        std::fs::write(
            dir.join("server.pem"),
            ca.leaf(&["127.0.0.1", "localhost"], false, &key, false),
        )
        .unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        let named_key = KeyPair::generate().unwrap();
        std::fs::write(
            dir.join("named.pem"),
            ca.leaf(&["temporal.test"], false, &named_key, false),
        )
        .unwrap();
        std::fs::write(dir.join("named.key"), named_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let ports = Ports {
            tls: free_port(),
            mtls: free_port(),
            api_key: free_port(),
            named: free_port(),
            plain_api_key: free_port(),
        };
        let d = dir.display();
        // Every server checks that DescribeTaskQueue carries its namespace header.
        let locations = |check: &str| {
            format!(
                r#"
    location = /temporal.api.workflowservice.v1.WorkflowService/DescribeTaskQueue {{
      if ($http_temporal_namespace != "default") {{ return 400; }}
      {check}
      grpc_pass grpc://127.0.0.1:{upstream};
    }}
    location / {{
      {check}
      grpc_pass grpc://127.0.0.1:{upstream};
    }}"#
            )
        };
        let tls = |port: u16, cert: &str| {
            format!(
                "listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {d}/{cert}.pem;\n    ssl_certificate_key {d}/{cert}.key;"
            )
        };
        let key_check =
            format!("if ($http_authorization != \"Bearer {API_KEY}\") {{ return 401; }}");
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {{
    {tls_plain}
    {loc_plain}
  }}
  server {{
    {tls_mtls}
    ssl_client_certificate {d}/ca.pem;
    ssl_verify_client on;
    # Refusals as gRPC statuses (trailers-only), as a gRPC-aware front end answers.
    # 495: a client certificate that fails verification (expired...); 496: none sent.
    error_page 495 496 = @permission_denied;
    location @permission_denied {{
      internal;
      default_type application/grpc;
      add_header grpc-status 7 always;
      add_header grpc-message "client certificate required" always;
      add_header content-length 0 always;
      return 204;
    }}
    {loc_mtls}
  }}
  server {{
    {tls_key}
    {loc_key}
  }}
  server {{
    {tls_named}
    {loc_plain}
  }}
  server {{
    listen 127.0.0.1:{plain_key} http2;
    {loc_key}
  }}
}}
"#,
            tls_plain = tls(ports.tls, "server"),
            tls_mtls = tls(ports.mtls, "server"),
            tls_key = tls(ports.api_key, "server"),
            tls_named = tls(ports.named, "named"),
            plain_key = ports.plain_api_key,
            loc_plain = locations(""),
            loc_mtls = locations(""),
            loc_key = locations(&key_check),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx_bin())
            .args([
                "-c",
                &format!("{d}/nginx.conf"),
                "-e",
                &format!("{d}/error.log"),
            ])
            .args(["-p", &format!("{d}/")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (apt install nginx-light)");
        Nginx {
            _child: ChildGuard(child),
            ports,
            dir: dir.to_path_buf(),
        }
    }

    /// Ready when every server accepts connections.
    async fn ready(&self) {
        let p = &self.ports;
        for port in [p.tls, p.mtls, p.api_key, p.named, p.plain_api_key] {
            support::wait_listening(port, "nginx to listen").await;
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

use support::nginx_bin;

/// nginx and the openssl CLI, or false where they are missing outside CI (`.ci/run` installs
/// them: there a missing one fails the test).
fn front_end_tools() -> bool {
    let works = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if works(Command::new(nginx_bin()).arg("-v")) && works(Command::new("openssl").arg("version")) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nginx or openssl is missing (apt-get install --no-install-recommends nginx-light openssl)"
    );
    support::skipped("nginx or openssl is not installed (apt-get install nginx-light openssl)");
    false
}

/// A trigger with these metadata lines (YAML, indented by 8), parsed as the agent parses files.
fn trigger(meta: &str) -> Result<TriggerConfig, String> {
    let yaml = format!(
        "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: t}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n    - type: temporal\n      metadata:\n        taskQueue: {QUEUE}\n        queueTypes: workflow\n        minConnectTimeout: 5s\n{meta}"
    );
    temporal_autoscaler::source::dir::parse_file(Path::new("t.yaml"), &yaml)
        .map(|mut v| v.remove(0).triggers.remove(0))
        .map_err(|e| {
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

fn pem_field(name: &str, pem: &str) -> String {
    let body: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    format!("        {name}: |\n{body}")
}

fn pool() -> Arc<TemporalPool> {
    TemporalPool::new(Arc::new(Metrics::new()))
}

async fn read(meta: &str) -> Result<QueueStats, TemporalError> {
    let t = trigger(meta).unwrap_or_else(|e| panic!("invalid trigger: {e}\n{meta}"));
    within(30, "a read", pool().query(&t)).await
}

/// Expects a failure of `kind` whose text contains `needle` and no secret.
fn failed(res: Result<QueueStats, TemporalError>, kind: ErrorKind, needle: &str, secrets: &[&str]) {
    let e = match res {
        Ok(s) => panic!("expected a {kind:?} error, read {s:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind, kind, "{e}");
    assert!(e.message.contains(needle), "{e:?} lacks {needle:?}");
    for s in secrets {
        assert!(!e.to_string().contains(s), "{e} reveals a secret");
    }
}

/// A dev server with 3 workflows waiting on QUEUE, a CA, and nginx in front of the server;
/// None where nginx or openssl is missing outside CI.
struct Setup {
    dev: DevServer,
    dir: tempfile::TempDir,
    ca: Ca,
    nginx: Nginx,
}

impl Setup {
    async fn start() -> Option<Setup> {
        if !front_end_tools() {
            return None;
        }
        let dev = DevServer::start().await;
        dev.start_workflows(QUEUE, 3).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test-ca");
        let nginx = Nginx::start(dir.path(), &ca, dev.port);
        nginx.ready().await;
        Some(Setup {
            dev,
            dir,
            ca,
            nginx,
        })
    }
}

#[tokio::test]
async fn every_auth_mode_against_a_real_tls_front_end() {
    let Some(Setup {
        dev,
        dir,
        ca,
        nginx,
    }) = Setup::start().await
    else {
        return;
    };
    let p = &nginx.ports;
    let host = |port: u16| format!("        endpoint: \"127.0.0.1:{port}\"\n");
    let ok = |res: Result<QueueStats, TemporalError>, what: &str| match res {
        Ok(s) => assert_eq!(s.backlog, 3, "{what}: {s:?}"),
        Err(e) => panic!("{what}: {e}\nnginx error log:\n{}", nginx.error_log()),
    };

    // Plaintext to the server itself: the reference reading.
    within(30, "3 workflows in the backlog", async {
        loop {
            match read(&host(dev.port)).await {
                Ok(s) if s.backlog == 3 => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await;

    // TLS + private CA: inline PEM, base64 of PEM, and a file.
    let ca_pem = ca.pem();
    ok(
        read(&(host(p.tls) + &pem_field("ca", &ca_pem))).await,
        "ca PEM",
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca_pem);
    ok(
        read(&format!("{}        ca: {b64}\n", host(p.tls))).await,
        "ca base64",
    );
    let ca_file = dir.path().join("ca.pem");
    ok(
        read(&format!(
            "{}        caFile: {}\n",
            host(p.tls),
            ca_file.display()
        ))
        .await,
        "caFile",
    );
    // https:// in the endpoint means TLS too.
    ok(
        read(&format!(
            "        endpoint: \"https://127.0.0.1:{}\"\n{}",
            p.tls,
            pem_field("ca", &ca_pem)
        ))
        .await,
        "https:// endpoint",
    );
    // A server certificate from another CA, or the system roots only: refused, as auth.
    let other = Ca::new("other-ca");
    failed(
        read(&(host(p.tls) + &pem_field("ca", &other.pem()))).await,
        ErrorKind::Auth,
        "UnknownIssuer",
        &[],
    );
    failed(
        read(&format!("{}        tls: \"true\"\n", host(p.tls))).await,
        ErrorKind::Auth,
        "UnknownIssuer",
        &[],
    );
    // unsafeSsl: TLS without verification (KEDA's meaning), never plaintext.
    ok(
        read(&format!("{}        unsafeSsl: \"true\"\n", host(p.tls))).await,
        "unsafeSsl",
    );
    // tlsServerName: the certificate names temporal.test, not the address dialled.
    ok(
        read(&format!(
            "{}{}        tlsServerName: temporal.test\n",
            host(p.named),
            pem_field("ca", &ca_pem)
        ))
        .await,
        "tlsServerName",
    );
    failed(
        read(&(host(p.named) + &pem_field("ca", &ca_pem))).await,
        ErrorKind::Auth,
        "not valid for name",
        &[],
    );

    // mTLS: PKCS#8 EC inline, SEC1 EC from files, PKCS#1 RSA.
    let id = ec_identity(&ca, false);
    let mtls = |cert: &str, key: &str| {
        host(p.mtls) + &pem_field("ca", &ca_pem) + &pem_field("cert", cert) + &pem_field("key", key)
    };
    ok(read(&mtls(&id.cert, &id.key)).await, "mTLS PKCS#8");
    let sec1 = openssl(&["pkey", "-traditional"], &id.key);
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
    std::fs::write(dir.path().join("client.pem"), &id.cert).unwrap();
    std::fs::write(dir.path().join("client.key"), &sec1).unwrap();
    ok(
        read(&format!(
            "{}        caFile: {d}/ca.pem\n        certFile: {d}/client.pem\n        keyFile: {d}/client.key\n",
            host(p.mtls),
            d = dir.path().display()
        ))
        .await,
        "mTLS SEC1 from files",
    );
    let rsa_pkcs8 = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "",
    );
    let rsa = KeyPair::from_pem(&rsa_pkcs8).unwrap();
    let rsa_cert = ca.leaf(&[], true, &rsa, false);
    let pkcs1 = openssl(&["pkey", "-traditional"], &rsa_pkcs8);
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    ok(read(&mtls(&rsa_cert, &pkcs1)).await, "mTLS RSA PKCS#1");
    // No client certificate, an expired one: refused by the front end, as auth.
    failed(
        read(&(host(p.mtls) + &pem_field("ca", &ca_pem))).await,
        ErrorKind::Auth,
        "PermissionDenied",
        &[],
    );
    let expired = ec_identity(&ca, true);
    failed(
        read(&mtls(&expired.cert, &expired.key)).await,
        ErrorKind::Auth,
        "PermissionDenied",
        &[],
    );
    // A key that is not the certificate's: a clear config error, the key never echoed.
    let wrong = trigger(&mtls(&id.cert, &expired.key)).unwrap_err();
    assert!(
        wrong.contains("metadata.key: expected a private key that matches the certificate"),
        "{wrong}"
    );
    assert!(!wrong.contains("PRIVATE KEY-----"), "{wrong}");
    std::fs::write(dir.path().join("other.key"), &expired.key).unwrap();
    failed(
        read(&format!(
            "{}        caFile: {d}/ca.pem\n        certFile: {d}/client.pem\n        keyFile: {d}/other.key\n",
            host(p.mtls),
            d = dir.path().display()
        ))
        .await,
        ErrorKind::Config,
        "cert/key: expected a private key that matches the certificate",
        &["PRIVATE KEY"],
    );

    // API key: inline and from a file; missing or wrong is refused by the front end.
    let key_meta = |k: &str| {
        format!(
            "{}{}        apiKey: {k}\n",
            host(p.api_key),
            pem_field("ca", &ca_pem)
        )
    };
    ok(read(&key_meta(API_KEY)).await, "apiKey");
    std::fs::write(dir.path().join("api-key"), format!("{API_KEY}\n")).unwrap();
    ok(
        read(&format!(
            "{}{}        apiKeyFile: {}/api-key\n",
            host(p.api_key),
            pem_field("ca", &ca_pem),
            dir.path().display()
        ))
        .await,
        "apiKeyFile",
    );
    failed(
        read(&(host(p.api_key) + &pem_field("ca", &ca_pem))).await,
        ErrorKind::Auth,
        "HTTP 401 Unauthorized",
        &[],
    );
    failed(
        read(&key_meta("not-the-key-7c1d")).await,
        ErrorKind::Auth,
        "HTTP 401 Unauthorized",
        &["not-the-key-7c1d"],
    );
    // An API key is never sent in plaintext unless explicitly allowed (a trusted local proxy).
    let plain = format!(
        "{}        tls: \"false\"\n        apiKey: {API_KEY}\n",
        host(p.plain_api_key)
    );
    let refused = trigger(&plain).unwrap_err();
    assert!(
        refused.contains("metadata.apiKey: expected TLS for an API key"),
        "{refused}"
    );
    assert!(!refused.contains(API_KEY), "{refused}");
    ok(
        read(&format!("{plain}        allowApiKeyWithoutTls: \"true\"\n")).await,
        "API key over plaintext, allowed",
    );

    // The binary: apiKeyFromEnv from the agent's own environment, and the key appears in none
    // of its outputs (logs at debug, /scalers, /metrics).
    agent_reads_an_api_key_from_its_environment(dir.path(), p.api_key).await;
    drop(nginx);
}

async fn agent_reads_an_api_key_from_its_environment(dir: &Path, port: u16) {
    let cfg = dir.join("scalers");
    std::fs::create_dir(&cfg).unwrap();
    let scaler = support::scaler_yaml(
        "keyed",
        &format!("127.0.0.1:{port}"),
        QUEUE,
        0,
        &format!(
            "        apiKeyFromEnv: TLS_TEST_API_KEY\n        caFile: {}\n",
            dir.join("ca.pem").display()
        ),
    );
    std::fs::write(cfg.join("keyed.yaml"), scaler).unwrap();
    let log = dir.join("agent.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
        .args(["run", "--dry-run", "--no-crds", "--http-addr", &addr])
        .arg("--config-dir")
        .arg(&cfg)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("TLS_TEST_API_KEY", API_KEY)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _agent = ChildGuard(child);
    let listing = within(
        30,
        "the agent's first decision (3 workflows / 5 = 1)",
        async {
            loop {
                if let Some((200, body)) = support::http_get(&addr, "/scalers") {
                    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
                    if list[0]["triggers"][0]["backlog"] == 3 {
                        assert_eq!(list[0]["desiredReplicas"], 1, "{body}");
                        return body;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await;
    let (_, metrics) = support::http_get(&addr, "/metrics").unwrap();
    assert!(metrics.contains("temporal_rpc_requests"), "{metrics}");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("keyed"),
        "the log is empty or elsewhere: {logs}"
    );
    for (what, text) in [
        ("/scalers", &listing),
        ("/metrics", &metrics),
        ("log", &logs),
    ] {
        assert!(!text.contains(API_KEY), "{what} reveals the API key");
    }
}

/// Replace a file the way the kubelet updates a mounted Secret: write aside, then rename.
fn rotate(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn rotated_credential_files_are_picked_up_without_a_restart() {
    let Some(Setup {
        dev: _dev,
        dir,
        ca,
        nginx,
    }) = Setup::start().await
    else {
        return;
    };
    let p = &nginx.ports;
    let ng = &nginx;
    let d = dir.path().display();
    // One pool for the whole test: the agent is not restarted.
    let pool = pool();
    let query = |meta: String| {
        let pool = pool.clone();
        async move {
            let t = trigger(&meta).unwrap();
            within(30, "a read", pool.query(&t)).await
        }
    };
    let backlog = |meta: String| {
        let query = &query;
        async move {
            // The reference server may still be counting the new workflows.
            within(30, "the backlog of 3", async {
                loop {
                    match query(meta.clone()).await {
                        Ok(s) if s.backlog == 3 => return,
                        Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        Err(e) => panic!("{e}\nnginx error log:\n{}", ng.error_log()),
                    }
                }
            })
            .await
        }
    };

    // Client certificate: expired at first, then renewed in place.
    let expired = ec_identity(&ca, true);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    rotate(&cert, &expired.cert);
    rotate(&key, &expired.key);
    let mtls = format!(
        "        endpoint: \"127.0.0.1:{}\"\n        caFile: {d}/ca.pem\n        certFile: {d}/tls.crt\n        keyFile: {d}/tls.key\n",
        p.mtls
    );
    failed(
        query(mtls.clone()).await,
        ErrorKind::Auth,
        "PermissionDenied",
        &[],
    );
    let renewed = ec_identity(&ca, false);
    rotate(&cert, &renewed.cert);
    rotate(&key, &renewed.key);
    backlog(mtls).await;

    // API key file: a revoked key, then the new one.
    let api_key = dir.path().join("api-key");
    rotate(&api_key, "revoked-key-55aa\n");
    let keyed = format!(
        "        endpoint: \"127.0.0.1:{}\"\n        caFile: {d}/ca.pem\n        apiKeyFile: {d}/api-key\n",
        p.api_key
    );
    failed(
        query(keyed.clone()).await,
        ErrorKind::Auth,
        "HTTP 401 Unauthorized",
        &["revoked-key-55aa"],
    );
    rotate(&api_key, API_KEY);
    backlog(keyed).await;

    // CA bundle: the old CA, then the one that issued the server certificate.
    let bundle = dir.path().join("bundle.pem");
    rotate(&bundle, &Ca::new("old-ca").pem());
    let trusted = format!(
        "        endpoint: \"127.0.0.1:{}\"\n        caFile: {d}/bundle.pem\n",
        p.tls
    );
    failed(
        query(trusted.clone()).await,
        ErrorKind::Auth,
        "UnknownIssuer",
        &[],
    );
    rotate(&bundle, &ca.pem());
    backlog(trusted).await;

    // A file that disappears is a config error naming it; nothing else is affected.
    std::fs::remove_file(&bundle).unwrap();
    failed(
        query(format!(
            "        endpoint: \"127.0.0.1:{}\"\n        caFile: {d}/bundle.pem\n",
            p.tls
        ))
        .await,
        ErrorKind::Config,
        &format!("caFile {d}/bundle.pem: cannot read"),
        &[],
    );
    // Each credential set was its own connection.
    assert_eq!(pool.connection_count(), 6);
    drop(nginx);
}
