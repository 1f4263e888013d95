//! heapster's own server over TLS with access control, tested with certificates made here and the real binary:
//! https with `--tls_cert`/`--tls_key`, client certificates checked against `--tls_client_ca` and
//! `--allowed_users`, bearer tokens from `--token_auth_file` and from the (simulated) API server's TokenReview,
//! `/healthz` open to all, and bad files stopping heapster with one line naming the flag.

mod common;

use common::Heapster;
use heapster_sim::tls::TestPki;
use heapster_sim::{SimConfig, Simulation};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A directory of its own for one test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("heapster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An https client trusting `ca` (none: no roots at all), presenting `identity` (cert and key PEM) if given.
fn client(ca: Option<&str>, identity: Option<&(String, String)>) -> reqwest::Client {
    heapster_sources::ensure_crypto_provider();
    let roots = ca.map(|ca| vec![reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]).unwrap_or_default();
    let mut b = reqwest::Client::builder().tls_certs_only(roots).timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Status and body of `GET url` with an optional bearer token; `Err` when no HTTP answer came (the handshake or
/// connection failed).
async fn get(c: &reqwest::Client, url: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let mut req = c.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.map_err(|e| format!("{e:?}"))?;
    Ok((r.status().as_u16(), r.text().await.unwrap_or_default()))
}

/// Asserts a Kubernetes Status denial with `code` and `reason`, and returns its message.
fn status_denial(answer: &Result<(u16, String), String>, code: u16, reason: &str) -> String {
    let (status, body) = answer.as_ref().unwrap_or_else(|e| panic!("no answer: {e}"));
    assert_eq!(*status, code, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(
        (v["kind"].as_str(), v["apiVersion"].as_str(), v["status"].as_str()),
        (Some("Status"), Some("v1"), Some("Failure")),
        "{v}"
    );
    assert_eq!((v["reason"].as_str(), v["code"].as_u64()), (Some(reason), Some(code as u64)), "{v}");
    v["message"].as_str().unwrap().to_string()
}

/// Waits until heapster answers `/healthz` over https (any status: it is up), for at most 30s.
async fn wait_up(c: &reqwest::Client, base: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while get(c, &format!("{base}/healthz"), None).await.is_err() {
        assert!(Instant::now() < until, "heapster did not serve https on {base}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of the Prometheus sample whose line starts with `series` in `/metrics` text (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_client_certificates_and_static_tokens() {
    let dir = TempDir::new("tls-auth");
    let server_pki = TestPki::new("heapster serving CA");
    let client_pki = TestPki::new("heapster client CA");
    let (cert, key) = server_pki.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let tokens = dir.write("tokens.csv", "good-token,alice,uid-1,\"readers,dev\"\nother-token,mallory,uid-2\n");
    let h = Heapster::start(&[
        &format!("--tls_cert={}", dir.write("tls.crt", &cert)),
        &format!("--tls_key={}", dir.write("tls.key", &key)),
        &format!("--tls_client_ca={}", dir.write("client-ca.crt", &client_pki.ca_pem)),
        "--allowed_users=front-proxy-client,alice",
        &format!("--token_auth_file={tokens}"),
        "--metric_resolution=1s",
    ]);
    let base = format!("https://127.0.0.1:{}", h.port);
    let trusting = client(Some(&server_pki.ca_pem), None);
    wait_up(&trusting, &base).await;
    let metrics_url = format!("{base}/metrics");

    // Only https, and only with the CA that signed heapster's certificate.
    let untrusting = client(None, None);
    let e = get(&untrusting, &metrics_url, None).await.unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    let plain = get(&reqwest::Client::new(), &format!("http://127.0.0.1:{}/metrics", h.port), None).await;
    let (status, body) = plain.expect("plain http gets an answer saying what is wrong");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HTTP request to an HTTPS server") && !body.contains("heapster_"), "{body}");

    // /healthz needs nothing: probes have no credentials. It turns 200 once the first batches are in.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&trusting, &format!("{base}/healthz"), None).await.unwrap();
        assert_ne!(status, 401, "{body}");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < until, "/healthz: {status} {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // No credentials: 401 on every other path.
    let m = status_denial(&get(&trusting, &metrics_url, None).await, 401, "Unauthorized");
    assert!(m.contains("client certificate") && m.contains("bearer token"), "{m}");
    status_denial(&get(&trusting, &format!("{base}/api/v1/model/nodes/"), None).await, 401, "Unauthorized");
    status_denial(&get(&trusting, &format!("{base}/no/such/path"), None).await, 401, "Unauthorized");

    // Client certificates: an allowed CN reads, another CN is forbidden, another CA's certificate is refused.
    let proxy_cert = client_pki.client_cert("front-proxy-client", &[]);
    let proxy = client(Some(&server_pki.ca_pem), Some(&proxy_cert));
    let (status, body) = get(&proxy, &metrics_url, None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("heapster_"), "{body}");
    let (status, nodes) = get(&proxy, &format!("{base}/api/v1/model/nodes/"), None).await.unwrap();
    assert_eq!(status, 200, "{nodes}");
    assert!(serde_json::from_str::<Value>(&nodes).unwrap().is_array(), "{nodes}");
    let eve = client(Some(&server_pki.ca_pem), Some(&client_pki.client_cert("eve", &["system:masters"])));
    let m = status_denial(&get(&eve, &metrics_url, None).await, 403, "Forbidden");
    assert!(m.contains("\"eve\"") && m.contains("--allowed_users"), "{m}");
    let forged = client(Some(&server_pki.ca_pem), Some(&server_pki.client_cert("front-proxy-client", &[])));
    let e =
        get(&forged, &metrics_url, None).await.expect_err("a certificate of another CA is refused at the handshake");
    assert!(!e.is_empty());
    let (status, _) = get(&eve, &format!("{base}/healthz"), None).await.unwrap();
    assert_eq!(status, 200, "/healthz is open to a forbidden user too");

    // Bearer tokens from the static token file: a listed and allowed user reads, a listed user not allowed is
    // forbidden, an unknown token is unauthorized; a good token also helps a forbidden certificate.
    let (status, body) = get(&trusting, &metrics_url, Some("good-token")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = status_denial(&get(&trusting, &metrics_url, Some("other-token")).await, 403, "Forbidden");
    assert!(m.contains("mallory"), "{m}");
    let m = status_denial(&get(&trusting, &metrics_url, Some("made-up")).await, 401, "Unauthorized");
    assert_eq!(m, "invalid bearer token");
    let (status, _) = get(&eve, &metrics_url, Some("good-token")).await.unwrap();
    assert_eq!(status, 200, "a certificate or a token: either may let the request in");

    // Every decision is counted on /metrics.
    let (_, text) = get(&proxy, &metrics_url, None).await.unwrap();
    let count = |outcome: &str, credential: &str| {
        sample(
            &text,
            &format!("heapster_http_auth_decisions_total{{outcome=\"{outcome}\",credential=\"{credential}\"}}"),
        )
    };
    assert!(count("allowed", "client_cert") >= 2.0, "{text}");
    assert_eq!(count("allowed", "token"), 2.0, "{text}");
    assert_eq!(count("unauthorized", "none"), 3.0, "{text}");
    assert_eq!(count("unauthorized", "token"), 1.0, "{text}");
    assert_eq!(count("forbidden", "client_cert"), 1.0, "{text}");
    assert_eq!(count("forbidden", "token"), 1.0, "{text}");

    // SIGTERM with keep-alive connections open (the clients above pool theirs): a clean exit, promptly.
    let mut h = h;
    assert!(Command::new("kill").arg("-TERM").arg(h.child.id().to_string()).status().unwrap().success());
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = h.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "heapster did not stop within 10s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "heapster exited with {status} after SIGTERM");
}

/// A token of the form the API server issues (a JWT: JSON header and claims, base64url), for `sub`; the
/// simulated API server vouches for those a test accepts.
fn jwt(sub: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.{}", b64(r#"{"alg":"RS256","kid":"sim"}"#), b64(&format!(r#"{{"sub":"{sub}"}}"#)), b64("signature"))
}

/// A kubeconfig trusting `ca` and authenticating with `token`.
fn kubeconfig(dir: &TempDir, server: &str, ca: &str, token: &str) -> String {
    let ca_path = dir.write("cluster-ca.crt", ca);
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
         clusters:\n- name: sim\n  cluster:\n    server: {server}\n    certificate-authority: {ca_path}\n\
         users:\n- name: heapster\n  user:\n    token: {token}\n\
         contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: heapster\n"
    );
    dir.write("kubeconfig", &text)
}

/// Bearer tokens checked by the simulated API server (which itself requires heapster's token, over https): a
/// token it vouches for reads, others are refused, and answers are cached rather than asked for every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_reviewed_by_the_api_server() {
    let dir = TempDir::new("token-review");
    let cluster = TestPki::new("cluster CA");
    let sim = Simulation::start(SimConfig {
        nodes: 2,
        pods_per_node: 3,
        api_tls: Some(cluster.sim_tls(&[std::net::Ipv4Addr::LOCALHOST.into()])),
        api_token: Some("heapster-sa-token".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (hpa_token, dev_token, stolen_token) = (jwt("hpa"), jwt("dev"), jwt("stolen"));
    sim.token_reviews().accept(
        &hpa_token,
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        &["system:serviceaccounts"],
    );
    sim.token_reviews().accept(&dev_token, "dev", &[]);
    let auth = kubeconfig(&dir, &sim.api_url(), &cluster.ca_pem, "heapster-sa-token");
    let serving = TestPki::new("serving CA");
    let (cert, key) = serving.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let h = Heapster::start(&[
        &format!(
            "--source=kubernetes.summary_api:?auth={auth}&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
            sim.nodes[0].addr.port()
        ),
        &format!("--tls_cert={}", dir.write("tls.crt", &cert)),
        &format!("--tls_key={}", dir.write("tls.key", &key)),
        "--authentication_token_webhook",
        "--authentication_token_webhook_cache_ttl=1m",
        "--allowed_users=system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "--metric_resolution=2s",
    ]);
    let base = format!("https://127.0.0.1:{}", h.port);
    let c = client(Some(&serving.ca_pem), None);
    wait_up(&c, &base).await;
    let url = format!("{base}/api/v1/model/nodes/");
    let served = || sim.token_reviews().served();
    assert_eq!(served(), 0, "no review before a token is presented");

    let (status, body) = get(&c, &url, Some(&hpa_token)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(), 1);
    // The answer is cached: the next requests ask the API server nothing.
    for _ in 0..3 {
        assert_eq!(get(&c, &url, Some(&hpa_token)).await.unwrap().0, 200);
    }
    assert_eq!(served(), 1, "a reviewed token is remembered for the cache TTL");

    let m = status_denial(&get(&c, &url, Some(&stolen_token)).await, 401, "Unauthorized");
    assert!(m.contains("invalid bearer token") && m.contains("not known"), "{m}");
    assert_eq!(served(), 2);
    status_denial(&get(&c, &url, Some(&stolen_token)).await, 401, "Unauthorized");
    assert_eq!(served(), 2, "refusals are remembered too, for a short while");
    let m = status_denial(&get(&c, &url, Some(&dev_token)).await, 403, "Forbidden");
    assert!(m.contains("\"dev\""), "{m}");
    status_denial(&get(&c, &url, None).await, 401, "Unauthorized");
    assert_ne!(get(&c, &format!("{base}/healthz"), None).await.unwrap().0, 401, "/healthz is open");

    let (_, text) = get(&c, &format!("{base}/metrics"), Some(&hpa_token)).await.unwrap();
    let reviews = |result: &str, cached: &str| {
        sample(&text, &format!("heapster_token_reviews_total{{result=\"{result}\",cached=\"{cached}\"}}"))
    };
    // hpa-token and dev-token asked once each, hpa-token then answered from the cache 4 times; stolen-token asked
    // once and then answered from the cache.
    assert_eq!((reviews("authenticated", "false"), reviews("authenticated", "true")), (2.0, 4.0), "{text}");
    assert_eq!((reviews("rejected", "false"), reviews("rejected", "true")), (1.0, 1.0), "{text}");
    assert_eq!(served(), 3);
}

/// Runs heapster with `args` expecting it to stop at start-up; returns its stderr.
fn start_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args(["--listen_ip=127.0.0.1", "--heapster_port=0"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} started: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_tls_and_token_files_stop_heapster_with_one_line() {
    let dir = TempDir::new("tls-bad-files");
    let pki = TestPki::new("CA");
    let (cert, key) = pki.server_cert(&[]);
    let (cert, key) = (dir.write("tls.crt", &cert), dir.write("tls.key", &key));
    let (_, other_key) = pki.server_cert(&[]);
    let other_key = dir.write("other.key", &other_key);
    let junk = dir.write("junk", "hello");
    let missing = dir.0.join("missing.crt");
    let missing = missing.display().to_string();

    let line = |stderr: &str| -> String {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("heapster: ")).collect();
        assert_eq!(lines.len(), 1, "one error line: {stderr}");
        lines[0].to_string()
    };
    let e = line(&start_fails(&[&format!("--tls_cert={missing}"), &format!("--tls_key={key}")]));
    assert!(e.contains(&format!("--tls_cert={missing}")) && e.contains("cannot read it"), "{e}");
    let e = line(&start_fails(&[&format!("--tls_cert={junk}"), &format!("--tls_key={key}")]));
    assert!(e.contains("--tls_cert=") && e.contains("no certificate"), "{e}");
    let e = line(&start_fails(&[&format!("--tls_cert={cert}"), &format!("--tls_key={junk}")]));
    assert!(e.contains("--tls_key=") && e.contains("not a PEM private key"), "{e}");
    let e = line(&start_fails(&[&format!("--tls_cert={cert}"), &format!("--tls_key={other_key}")]));
    assert!(e.contains("is the key the certificate's?"), "{e}");
    let e = line(&start_fails(&[
        &format!("--tls_cert={cert}"),
        &format!("--tls_key={key}"),
        &format!("--tls_client_ca={junk}"),
    ]));
    assert!(e.contains("--tls_client_ca="), "{e}");
    let e = line(&start_fails(&[&format!("--tls_cert={cert}")]));
    assert!(e.contains("--tls_cert needs --tls_key"), "{e}");
    let bad_tokens = dir.write("tokens.csv", "t1,alice,1\njust-a-token\n");
    let e = line(&start_fails(&[&format!("--token_auth_file={bad_tokens}")]));
    assert!(e.contains("--token_auth_file=") && e.contains("line 2") && e.contains("3 columns"), "{e}");
    let e = line(&start_fails(&["--authentication_token_webhook"]));
    assert!(e.contains("kubernetes source"), "{e}");
}

/// A certificate renewed in place (as cert-manager updates a Secret volume) is served to new connections without a
/// restart; a half-written pair keeps the previous certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_serving_certificate_is_served_without_a_restart() {
    let dir = TempDir::new("tls-renew");
    let old_ca = TestPki::new("old serving CA");
    let new_ca = TestPki::new("new serving CA");
    let localhost = [std::net::Ipv4Addr::LOCALHOST.into()];
    let (cert, key) = old_ca.server_cert(&localhost);
    let (cert_path, key_path) = (dir.write("tls.crt", &cert), dir.write("tls.key", &key));
    let h = Heapster::start(&[&format!("--tls_cert={cert_path}"), &format!("--tls_key={key_path}")]);
    let url = format!("https://127.0.0.1:{}/metrics", h.port);
    // A new client per request: a pooled connection would keep the handshake it made.
    let fetch = |ca: &str| {
        let c = client(Some(ca), None);
        let url = url.clone();
        async move { get(&c, &url, None).await.map(|(status, _)| status) }
    };
    wait_up(&client(Some(&old_ca.ca_pem), None), &format!("https://127.0.0.1:{}", h.port)).await;
    assert_eq!(fetch(&old_ca.ca_pem).await, Ok(200));
    assert!(fetch(&new_ca.ca_pem).await.is_err());

    // Half renewed: a new key with the old certificate does not load; the old pair is still served.
    let (new_cert, new_key) = new_ca.server_cert(&localhost);
    dir.write("tls.key", &new_key);
    assert_eq!(fetch(&old_ca.ca_pem).await, Ok(200), "a mismatched pair keeps the previous certificate");
    dir.write("tls.crt", &new_cert);
    assert_eq!(fetch(&new_ca.ca_pem).await, Ok(200), "the renewed certificate is served");
    assert!(fetch(&old_ca.ca_pem).await.is_err(), "the old one no longer");
}

/// heapster over plain http with `sim` as its kubernetes source and `args`, once it serves: the process, its base
/// URL and a client.
async fn start_on_sim(sim: &Simulation, args: &[&str]) -> (Heapster, String, reqwest::Client) {
    let source = format!(
        "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_server,
        sim.nodes[0].addr.port()
    );
    let h = Heapster::start(&[&[source.as_str()], args].concat());
    let (base, c) = serving_http(&h).await;
    (h, base, c)
}

/// The base URL of `h` over plain http and a client, once it serves.
async fn serving_http(h: &Heapster) -> (String, reqwest::Client) {
    let base = format!("http://127.0.0.1:{}", h.port);
    heapster_sources::ensure_crypto_provider();
    let c = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while get(&c, &format!("{base}/healthz"), None).await.is_err() {
        assert!(Instant::now() < until, "heapster did not serve on {base}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (base, c)
}

/// Made-up bearer tokens do not become TokenReviews one for one (each would cost the API server a call under
/// heapster's service account): tokens that are not JWTs are refused without a review, new JWTs are reviewed at
/// `--authentication_token_webhook_rate` and the rest answered 429, refusals are remembered, and a user's token
/// reviewed before the flood keeps working without a new review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_do_not_flood_the_api_server() {
    let sim = Simulation::start(SimConfig { nodes: 1, pods_per_node: 1, ..Default::default() }).await.unwrap();
    let hpa_token = jwt("hpa");
    sim.token_reviews().accept(&hpa_token, "system:serviceaccount:kube-system:horizontal-pod-autoscaler", &[]);
    let (_h, base, c) =
        start_on_sim(&sim, &["--authentication_token_webhook", "--authentication_token_webhook_rate=1"]).await;
    let url = format!("{base}/metrics");
    let served = || sim.token_reviews().served();
    assert_eq!(get(&c, &url, Some(&hpa_token)).await.unwrap().0, 200);
    assert_eq!(served(), 1);

    // Not JWTs: refused here, the API server is not asked.
    for i in 0..200 {
        let m = status_denial(&get(&c, &url, Some(&format!("made-up-{i}"))).await, 401, "Unauthorized");
        assert!(m.contains("not a JWT"), "{m}");
    }
    assert_eq!(served(), 1, "tokens that are not JWTs cost no TokenReview");

    // 300 new JWTs, 20 at a time: reviewed at the rate (1/s, bursts of 2), the rest answered 429.
    let started = Instant::now();
    let mut statuses = Vec::new();
    for batch in 0..15 {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (c, url, token) = (c.clone(), url.clone(), jwt(&format!("made-up-{batch}-{i}")));
            requests.spawn(async move { (get(&c, &url, Some(&token)).await, token) });
        }
        while let Some(r) = requests.join_next().await {
            statuses.push(r.unwrap());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("300 new made-up JWTs in {elapsed:.1}s: {} TokenReviews", served() - 1);
    let reviewed: Vec<&String> = statuses.iter().filter(|(r, _)| matches!(r, Ok((401, _)))).map(|(_, t)| t).collect();
    let throttled = statuses.iter().filter(|(r, _)| matches!(r, Ok((429, _)))).count();
    assert_eq!(reviewed.len() + throttled, 300, "every answer is 401 (reviewed) or 429 (over the rate)");
    assert_eq!(served(), 1 + reviewed.len() as u64);
    assert!(reviewed.len() as f64 <= 3.0 + elapsed, "{} reviews in {elapsed:.1}s at 1/s", reviewed.len());
    let throttled_answer = statuses.iter().find(|(r, _)| matches!(r, Ok((429, _)))).unwrap();
    let m = status_denial(&throttled_answer.0, 429, "TooManyRequests");
    assert!(m.contains("retry"), "{m}");

    // During the flood the user's token is answered from the cache; a refused token is remembered too.
    assert_eq!(get(&c, &url, Some(&hpa_token)).await.unwrap().0, 200);
    let refused = reviewed.first().expect("at least one review within the burst");
    status_denial(&get(&c, &url, Some(refused)).await, 401, "Unauthorized");
    assert_eq!(served(), 1 + reviewed.len() as u64, "cached answers cost no TokenReview");

    let (_, text) = get(&c, &url, Some(&hpa_token)).await.unwrap();
    let reviews =
        |result: &str| sample(&text, &format!("heapster_token_reviews_total{{result=\"{result}\",cached=\"false\"}}"));
    assert_eq!((reviews("malformed"), reviews("rate_limited")), (200.0, throttled as f64), "{text}");
}

/// `--authorization_webhook`: the simulated API server's rules decide who reads what, metrics.k8s.io requests as
/// resources (a namespace's pods), heapster's own paths as non-resource URLs; refusals are 403 with the reason,
/// and answers are cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_authorization_with_subject_access_reviews() {
    let sim = Simulation::start(SimConfig { nodes: 2, pods_per_node: 2, ..Default::default() }).await.unwrap();
    let (alice, hpa) = (jwt("alice"), jwt("hpa"));
    sim.token_reviews().accept(&alice, "alice", &["dev"]);
    sim.token_reviews().accept(&hpa, "system:serviceaccount:kube-system:horizontal-pod-autoscaler", &[]);
    sim.access_reviews().allow_path("alice", "/api/v1/model/*");
    sim.access_reviews().allow_resource(
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "metrics.k8s.io",
        "pods",
        Some("default"),
    );
    let (_h, base, c) = start_on_sim(
        &sim,
        &[
            "--authentication_token_webhook",
            "--authorization_webhook",
            "--authorization_webhook_cache_authorized_ttl=5m",
            "--authorization_webhook_cache_unauthorized_ttl=5m",
        ],
    )
    .await;
    let reviews = || sim.access_reviews().served();
    assert_eq!(reviews(), 0, "/healthz is not reviewed");
    let (model, pods) =
        (format!("{base}/api/v1/model/nodes/"), format!("{base}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"));

    let (status, body) = get(&c, &model, Some(&alice)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = status_denial(&get(&c, &pods, Some(&alice)).await, 403, "Forbidden");
    assert!(
        m.contains(
            "User \"alice\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\""
        ) && m.contains("no rule of the simulated API server allows it"),
        "{m}"
    );
    let (status, body) = get(&c, &pods, Some(&hpa)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = status_denial(
        &get(&c, &format!("{base}/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods"), Some(&hpa)).await,
        403,
        "Forbidden",
    );
    assert!(m.contains("in the namespace \"kube-system\""), "{m}");
    let m = status_denial(&get(&c, &format!("{base}/metrics"), Some(&hpa)).await, 403, "Forbidden");
    assert!(m.contains("cannot get path \"/metrics\""), "{m}");
    assert_eq!(reviews(), 5);

    // Cached: the same requests again ask nothing.
    assert_eq!(get(&c, &model, Some(&alice)).await.unwrap().0, 200);
    assert_eq!(get(&c, &pods, Some(&alice)).await.unwrap().0, 403);
    assert_eq!(get(&c, &pods, Some(&hpa)).await.unwrap().0, 200);
    assert_eq!(reviews(), 5, "answers are cached for their TTLs");
    // Without credentials nothing is reviewed: 401 first.
    status_denial(&get(&c, &model, None).await, 401, "Unauthorized");
    assert_eq!(reviews(), 5);
}

/// custom.metrics.k8s.io under `--authorization_webhook`: reviewed as kube-apiserver's request info sees the
/// request (the metric is the subresource: `get pods/network_rx_rate` named `*` for a selector list; a namespace's
/// own metric is `get metrics` named after it), so RBAC rules on `pods/<metric>` decide, and `pods` alone does
/// not cover them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_metrics_are_authorized_with_the_metric_as_subresource() {
    let sim = Simulation::start(SimConfig { nodes: 1, pods_per_node: 2, ..Default::default() }).await.unwrap();
    let (alice, hpa) = (jwt("alice"), jwt("hpa"));
    let hpa_user = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";
    sim.token_reviews().accept(&alice, "alice", &[]);
    sim.token_reviews().accept(&hpa, hpa_user, &[]);
    let group = "custom.metrics.k8s.io";
    sim.access_reviews().allow_resource("alice", group, "pods", Some("scraper"));
    sim.access_reviews().allow_resource(hpa_user, group, "pods/network_rx_rate", Some("scraper"));
    sim.access_reviews().allow_resource(hpa_user, group, "metrics", Some("scraper"));
    let (_h, base, c) = start_on_sim(&sim, &["--authentication_token_webhook", "--authorization_webhook"]).await;
    let cm = format!("{base}/apis/custom.metrics.k8s.io/v1beta2");
    let pods = format!("{cm}/namespaces/scraper/pods/*/network_rx_rate?labelSelector=app%3De2e");
    // Allowed: answered by the API (200, or 404 before the first rates), never refused.
    for url in [&pods, &format!("{cm}/namespaces/scraper/metrics/network_rx_rate")] {
        let (status, body) = get(&c, url, Some(&hpa)).await.unwrap();
        assert!(status == 200 || status == 404 && body.contains("NotFound"), "{url}: {status} {body}");
    }
    let m = status_denial(&get(&c, &pods, Some(&alice)).await, 403, "Forbidden");
    assert!(
        m.contains(
            "User \"alice\" cannot get resource \"pods/network_rx_rate\" in API group \"custom.metrics.k8s.io\" in \
             the namespace \"scraper\""
        ),
        "{m}"
    );
    let other_metric = format!("{cm}/namespaces/scraper/pods/p/cpu_usage_rate");
    let m = status_denial(&get(&c, &other_metric, Some(&hpa)).await, 403, "Forbidden");
    assert!(m.contains("\"pods/cpu_usage_rate\""), "{m}");
    let other_namespace = format!("{cm}/namespaces/kube-system/pods/*/network_rx_rate");
    status_denial(&get(&c, &other_namespace, Some(&hpa)).await, 403, "Forbidden");
}

/// `--requestheader_*`: the user named in `X-Remote-User` / `X-Remote-Group` is trusted only on a connection
/// that presented a front-proxy certificate signed by `--requestheader_client_ca_file` with an allowed name.
/// Forged headers (no certificate, another CA's, a name not allowed) authenticate nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_proxy_headers_only_with_the_front_proxy_certificate() {
    let dir = TempDir::new("front-proxy");
    let serving = TestPki::new("serving CA");
    let front_proxy_ca = TestPki::new("front-proxy CA");
    let other_ca = TestPki::new("client CA");
    let (cert, key) = serving.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let h = Heapster::start(&[
        &format!("--tls_cert={}", dir.write("tls.crt", &cert)),
        &format!("--tls_key={}", dir.write("tls.key", &key)),
        &format!("--tls_client_ca={}", dir.write("client-ca.crt", &other_ca.ca_pem)),
        &format!("--requestheader_client_ca_file={}", dir.write("front-proxy-ca.crt", &front_proxy_ca.ca_pem)),
        "--requestheader_allowed_names=front-proxy-client",
        "--allowed_users=alice,front-proxy-client",
    ]);
    let base = format!("https://127.0.0.1:{}", h.port);
    let url = format!("{base}/api/v1/model/nodes/");
    wait_up(&client(Some(&serving.ca_pem), None), &base).await;
    let as_user = |c: &reqwest::Client, user: &str, group: &str| {
        c.get(&url).header("X-Remote-User", user).header("X-Remote-Group", group).send()
    };
    let status =
        |r: Result<reqwest::Response, reqwest::Error>| r.map(|r| r.status().as_u16()).map_err(|e| e.to_string());

    // Genuine: the aggregator's certificate and its headers.
    let aggregator = client(Some(&serving.ca_pem), Some(&front_proxy_ca.client_cert("front-proxy-client", &[])));
    assert_eq!(status(as_user(&aggregator, "alice", "dev").await), Ok(200));
    let r = as_user(&aggregator, "mallory", "dev").await.unwrap();
    let m = status_denial(&Ok((r.status().as_u16(), r.text().await.unwrap())), 403, "Forbidden");
    assert!(m.contains("\"mallory\""), "{m}");

    // Forged: the same headers without the certificate.
    let anonymous = client(Some(&serving.ca_pem), None);
    assert_eq!(status(as_user(&anonymous, "alice", "system:masters").await), Ok(401));
    // With a certificate of the other trusted CA: its CN is the user, the headers are not read.
    let other = client(Some(&serving.ca_pem), Some(&other_ca.client_cert("eve", &[])));
    assert_eq!(status(as_user(&other, "alice", "dev").await), Ok(403), "eve, not alice");
    // The front-proxy CA, but a name not in --requestheader_allowed_names: the headers are not read, and a
    // front-proxy certificate names no user itself.
    let impostor = client(Some(&serving.ca_pem), Some(&front_proxy_ca.client_cert("someone-else", &[])));
    assert_eq!(status(as_user(&impostor, "alice", "dev").await), Ok(401));
    // The front-proxy certificate without headers is no user either.
    assert_eq!(status(aggregator.get(&url).send().await), Ok(401));
    // A certificate of an untrusted CA is refused at the handshake.
    let untrusted = client(Some(&serving.ca_pem), Some(&serving.client_cert("front-proxy-client", &[])));
    assert!(status(as_user(&untrusted, "alice", "dev").await).is_err());
}

/// heapster started with `args` whose stderr is kept for the test to read, and a client trusting `serving`.
fn start_logged(args: &[&str]) -> (Heapster, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args(["--listen_ip=127.0.0.1", &format!("--heapster_port={port}")])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start heapster");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (stderr, kept) = (child.stderr.take().unwrap(), log.clone());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    (Heapster { child, port }, log)
}

/// The lines of `log` that contain every one of `parts`, once some are there (for at most 10s: the log is
/// written by another process).
async fn log_lines(log: &std::sync::Mutex<String>, parts: &[&str]) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> =
            log.lock().unwrap().lines().filter(|l| parts.iter().all(|p| l.contains(p))).map(String::from).collect();
        if !lines.is_empty() || Instant::now() > until {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces `name` in `dir` as the kubelet updates a Secret or ConfigMap volume: a new file renamed over the old.
fn swap(dir: &TempDir, name: &str, text: &str) {
    let staged = dir.write(&format!(".{name}.new"), text);
    std::fs::rename(staged, dir.0.join(name)).unwrap();
}

/// `--tls_client_ca` and `--requestheader_client_ca_file` are read again when their files change (a rotated
/// cluster CA, the kubelet refreshing the extension-apiserver-authentication ConfigMap volume): certificates of the
/// new CA are accepted and those of the old refused without a restart; a file that does not parse keeps the
/// previous CAs, with one line saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cas_are_reloaded_when_their_files_change() {
    let dir = TempDir::new("ca-reload");
    let serving = TestPki::new("serving CA");
    let (old_ca, new_ca) = (TestPki::new("old client CA"), TestPki::new("new client CA"));
    let (old_proxy_ca, new_proxy_ca) = (TestPki::new("old front-proxy CA"), TestPki::new("new front-proxy CA"));
    let (cert, key) = serving.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let (h, log) = start_logged(&[
        &format!("--tls_cert={}", dir.write("tls.crt", &cert)),
        &format!("--tls_key={}", dir.write("tls.key", &key)),
        &format!("--tls_client_ca={}", dir.write("client-ca.crt", &old_ca.ca_pem)),
        &format!("--requestheader_client_ca_file={}", dir.write("front-proxy-ca.crt", &old_proxy_ca.ca_pem)),
        "--requestheader_allowed_names=front-proxy-client",
    ]);
    let base = format!("https://127.0.0.1:{}", h.port);
    let url = format!("{base}/api/v1/model/nodes/");
    wait_up(&client(Some(&serving.ca_pem), None), &base).await;
    // A new client per request: a pooled connection would keep the handshake it made.
    let as_user = |ca: &TestPki| {
        let c = client(Some(&serving.ca_pem), Some(&ca.client_cert("alice", &[])));
        let url = url.clone();
        async move { get(&c, &url, None).await.map(|(status, _)| status) }
    };
    let through_proxy = |ca: &TestPki| {
        let c = client(Some(&serving.ca_pem), Some(&ca.client_cert("front-proxy-client", &[])));
        let url = url.clone();
        async move {
            let r = c.get(&url).header("X-Remote-User", "alice").send().await.map_err(|e| format!("{e:?}"))?;
            Ok::<_, String>(r.status().as_u16())
        }
    };
    assert_eq!(as_user(&old_ca).await, Ok(200));
    assert!(as_user(&new_ca).await.is_err(), "a certificate of a CA not yet trusted is refused");
    assert_eq!(through_proxy(&old_proxy_ca).await, Ok(200));
    assert!(through_proxy(&new_proxy_ca).await.is_err());

    swap(&dir, "client-ca.crt", &new_ca.ca_pem);
    assert_eq!(as_user(&new_ca).await, Ok(200), "the new client CA is trusted without a restart");
    assert!(as_user(&old_ca).await.is_err(), "the old client CA no longer");
    swap(&dir, "front-proxy-ca.crt", &new_proxy_ca.ca_pem);
    assert_eq!(through_proxy(&new_proxy_ca).await, Ok(200), "the new front-proxy CA is trusted");
    assert!(through_proxy(&old_proxy_ca).await.is_err(), "the old front-proxy CA no longer");
    assert_eq!(as_user(&new_ca).await, Ok(200));

    // A file that does not parse: the previous CAs stay, said once however many handshakes follow.
    swap(&dir, "client-ca.crt", "-----BEGIN CERTIFICATE-----\nnot base64\n");
    swap(&dir, "front-proxy-ca.crt", "");
    for _ in 0..3 {
        assert_eq!(as_user(&new_ca).await, Ok(200), "a bad --tls_client_ca keeps the previous CA");
        assert_eq!(through_proxy(&new_proxy_ca).await, Ok(200), "a bad front-proxy CA file keeps the previous");
        assert!(as_user(&old_ca).await.is_err());
    }
    for flag in ["--tls_client_ca=", "--requestheader_client_ca_file="] {
        let lines = log_lines(&log, &[flag, "previous"]).await;
        assert_eq!(lines.len(), 1, "one line for the bad {flag} file: {lines:?}");
    }
    let lines = log_lines(&log, &["--requestheader_client_ca_file=", "no certificate", "previous"]).await;
    assert_eq!(lines.len(), 1, "the line says what is wrong: {lines:?}");
}

/// `--token_auth_file` is read again when it changes: a token added is accepted and a token removed refused
/// without a restart; a file that does not parse keeps the previous tokens, with one line saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_reloaded_when_it_changes() {
    let dir = TempDir::new("token-reload");
    let tokens = dir.write("tokens.csv", "old-token,alice,uid-1\n");
    let (h, log) = start_logged(&[&format!("--token_auth_file={tokens}")]);
    let (base, c) = serving_http(&h).await;
    let url = format!("{base}/api/v1/model/nodes/");
    let status = |token: &'static str| {
        let (c, url) = (c.clone(), url.clone());
        async move { get(&c, &url, Some(token)).await.unwrap().0 }
    };
    assert_eq!((status("old-token").await, status("new-token").await), (200, 401));

    swap(&dir, "tokens.csv", "new-token,bob,uid-2\n");
    assert_eq!(status("new-token").await, 200, "a token added to the file is accepted without a restart");
    assert_eq!(status("old-token").await, 401, "a token removed from the file is refused");

    swap(&dir, "tokens.csv", "new-token,bob,uid-2\nhalf-a-line\n");
    for _ in 0..3 {
        assert_eq!(status("new-token").await, 200, "a bad file keeps the previous tokens");
        assert_eq!(status("old-token").await, 401);
    }
    let lines = log_lines(&log, &["--token_auth_file=", "line 2", "previous"]).await;
    assert_eq!(lines.len(), 1, "one line saying what is wrong: {lines:?}");
}

/// A client certificate's subject names the user (CN) and its groups (each O), as Kubernetes' x509 authenticator
/// reads them, and `--authorization_webhook` asks about both: a group the API server's rules allow, or
/// `system:masters`, lets a user in whom no rule names; another group does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_organizations_are_groups_for_authorization() {
    let dir = TempDir::new("cert-groups");
    let sim = Simulation::start(SimConfig { nodes: 1, pods_per_node: 1, ..Default::default() }).await.unwrap();
    sim.access_reviews().allow_group_path("ops", "/api/v1/model/*");
    let serving = TestPki::new("serving CA");
    let client_ca = TestPki::new("client CA");
    let (cert, key) = serving.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let h = Heapster::start(&[
        &format!(
            "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
            sim.api_server,
            sim.nodes[0].addr.port()
        ),
        &format!("--tls_cert={}", dir.write("tls.crt", &cert)),
        &format!("--tls_key={}", dir.write("tls.key", &key)),
        &format!("--tls_client_ca={}", dir.write("client-ca.crt", &client_ca.ca_pem)),
        "--authorization_webhook",
    ]);
    let base = format!("https://127.0.0.1:{}", h.port);
    wait_up(&client(Some(&serving.ca_pem), None), &base).await;
    let as_cert = |user: &str, groups: &[&str], path: &str| {
        let c = client(Some(&serving.ca_pem), Some(&client_ca.client_cert(user, groups)));
        let url = format!("{base}{path}");
        async move { get(&c, &url, None).await }
    };
    let model = "/api/v1/model/nodes/";

    let (status, body) = as_cert("carol", &["ops"], model).await.unwrap();
    assert_eq!(status, 200, "a member of ops, which the API server allows: {body}");
    let m = status_denial(&as_cert("carol", &["dev"], model).await, 403, "Forbidden");
    assert!(m.contains("User \"carol\" cannot get path \"/api/v1/model/nodes/\""), "{m}");
    status_denial(&as_cert("carol", &[], model).await, 403, "Forbidden");
    status_denial(&as_cert("carol", &["ops"], "/metrics").await, 403, "Forbidden");
    let (status, body) = as_cert("root", &["system:masters"], "/metrics").await.unwrap();
    assert_eq!(status, 200, "system:masters may read anything: {body}");
    assert_eq!(sim.access_reviews().served(), 5);
}
