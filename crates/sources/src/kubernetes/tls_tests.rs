//! The Kubernetes source over TLS, against the simulated cluster serving real certificates (made on the spot by
//! [`TestPki`]): kubeconfig (`auth=`), in-cluster service account, `insecure=true`, https kubelets with bearer
//! tokens, and each way of getting it wrong.

use super::*;
use crate::kubelet::{ClientConfig, KubeletClient, KubeletTls};
use heapster_model::SpecUri;
use heapster_sim::tls::TestPki;
use heapster_sim::{SimConfig, Simulation, node_ip};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("heapster-tls-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 127.0.0.1 and the first `nodes` simulated node addresses: what the simulation's certificates must name.
fn sim_ips(nodes: usize) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = (0..nodes).map(node_ip).collect();
    ips.push(Ipv4Addr::LOCALHOST.into());
    ips
}

/// A simulation with an https API server (certificate of `pki`) that requires [`TOKEN`]; kubelets per `kubelets`.
async fn sim(pki: &TestPki, nodes: usize, kubelets: Option<&TestPki>) -> Simulation {
    let config = SimConfig {
        nodes,
        pods_per_node: 3,
        api_tls: Some(pki.sim_tls(&sim_ips(nodes))),
        api_token: Some(TOKEN.into()),
        kubelet_tls: kubelets.map(|k| k.sim_tls(&sim_ips(nodes))),
        kubelet_token: kubelets.map(|_| TOKEN.into()),
        ..Default::default()
    };
    Simulation::start(config).await.unwrap()
}

fn kubeconfig(dir: &TempDir, server: &str, ca: &Path, token: &str) -> PathBuf {
    dir.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
             clusters:\n- name: sim\n  cluster:\n    server: {server}\n    certificate-authority: {}\n\
             users:\n- name: heapster\n  user:\n    token: {token}\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: heapster\n",
            ca.display()
        ),
    )
}

fn options(spec: &str) -> KubernetesOptions {
    let uri: SpecUri = spec.parse().unwrap();
    KubernetesOptions::parse(&uri).unwrap()
}

/// Starts the provider and waits for the first list of nodes.
async fn start(o: KubernetesOptions) -> Result<KubernetesProvider, String> {
    let p = KubernetesProvider::start(&Cluster::connect(o).await?, SourceMetrics::default()).await?;
    tokio::time::timeout(Duration::from_secs(20), p.ready()).await.map_err(|_| "no node list within 20s")?;
    Ok(p)
}

#[tokio::test]
async fn kubeconfig_with_ca_and_token_reaches_the_https_api_server() {
    let pki = TestPki::new("cluster CA");
    let sim = sim(&pki, 3, None).await;
    let dir = TempDir::new("kubeconfig");
    let ca = dir.write("ca.crt", &pki.ca_pem);
    let auth = kubeconfig(&dir, &sim.api_url(), &ca, TOKEN);
    let port = sim.nodes[0].addr.port();
    let spec = format!(
        "kubernetes.summary_api:?auth={}&kubeletPort={port}&kubeletPreferredAddressTypes=InternalIP",
        auth.display()
    );
    let p = start(options(&spec)).await.unwrap();
    let sources = p.sources();
    assert_eq!(sources.len(), 3, "every node discovered");
    // Pods are watched too (metadata for the enrichers).
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.metadata.pod_count() < 9 {
        assert!(tokio::time::Instant::now() < until, "pods listed: {}", p.metadata.pod_count());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The kubelets are plain http here: scraping works as before.
    let batch = sources[0].scrape(0).await.unwrap();
    assert!(batch.sets.keys().any(|k| k.starts_with("node:")));

    // The URL given in the source replaces the kubeconfig's server.
    let elsewhere = kubeconfig(&dir, "https://127.0.0.1:1", &ca, TOKEN);
    let spec = format!("kubernetes:{}?auth={}", sim.api_url(), elsewhere.display());
    assert_eq!(start(options(&spec)).await.unwrap().sources().len(), 3);
}

#[tokio::test]
async fn an_untrusted_api_server_fails_at_start_unless_insecure() {
    let pki = TestPki::new("cluster CA");
    let other = TestPki::new("some other CA");
    let sim = sim(&pki, 2, None).await;
    let dir = TempDir::new("wrong-ca");
    let wrong_ca = dir.write("other.crt", &other.ca_pem);
    let auth = kubeconfig(&dir, &sim.api_url(), &wrong_ca, TOKEN);
    let err = start(options(&format!("kubernetes:?auth={}", auth.display()))).await.err().unwrap();
    assert!(err.contains("certificate not trusted") && err.contains("insecure=true"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");

    let o = options(&format!("kubernetes:?auth={}&insecure=true", auth.display()));
    assert_eq!(start(o).await.unwrap().sources().len(), 2, "insecure=true accepts the certificate");

    // The right CA but a refused token: also a start-up error, naming the credentials.
    let ca = dir.write("ca.crt", &pki.ca_pem);
    let bad_token = kubeconfig(&dir, &sim.api_url(), &ca, "wrong");
    let err = start(options(&format!("kubernetes:?auth={}", bad_token.display()))).await.err().unwrap();
    assert!(err.contains("401") && err.contains("credentials"), "{err}");
}

#[tokio::test]
async fn unusable_files_are_one_clear_line() {
    let dir = TempDir::new("files");
    let missing = dir.0.join("nope");
    let o = options(&format!("kubernetes:?auth={}", missing.display()));
    let err = o.connection().await.unwrap_err();
    assert!(err.starts_with(&format!("auth={}", missing.display())), "{err}");
    let not_yaml = dir.write("bad", "{{{");
    let err = options(&format!("kubernetes:?auth={}", not_yaml.display())).connection().await.unwrap_err();
    assert!(err.contains("cannot use this kubeconfig"), "{err}");

    // In-cluster without a service account.
    let mut o = options("kubernetes:");
    o.service_account_dir = dir.0.join("no-sa");
    let env = |k: &str| match k {
        "KUBERNETES_SERVICE_HOST" => Some("127.0.0.1".to_owned()),
        "KUBERNETES_SERVICE_PORT" => Some("6443".to_owned()),
        _ => None,
    };
    let err = o.connection_with_env(&env).await.unwrap_err();
    assert!(err.contains("inClusterConfig=true") && err.contains("inClusterConfig=false"), "{err}");
    let err = o.connection_with_env(&|_| None).await.unwrap_err();
    assert!(err.contains("KUBERNETES_SERVICE_HOST"), "{err}");

    let mut o = options("kubernetes:https://127.0.0.1:6443?inClusterConfig=false&useServiceAccount=true");
    o.service_account_dir = dir.0.join("no-sa");
    let err = o.connection().await.unwrap_err();
    assert!(err.starts_with("useServiceAccount=true: cannot read token file"), "{err}");
    let sa = TempDir::new("sa-newline");
    sa.write("token", "abc\n");
    o.service_account_dir = sa.0.clone();
    assert!(o.connection().await.unwrap_err().contains("newline"));

    let o = options("kubernetes:https://127.0.0.1:6443?inClusterConfig=false&kubeletHttps=true&kubeletCAFile=/nope");
    let err = o.connection().await.unwrap_err();
    assert!(err.contains("kubeletCAFile /nope"), "{err}");
    let not_pem = dir.write("ca-not-pem", "hello");
    let o = options(&format!(
        "kubernetes:https://127.0.0.1:6443?inClusterConfig=false&kubeletHttps=true&kubeletCAFile={}",
        not_pem.display()
    ));
    assert!(o.connection().await.unwrap_err().contains("holds no certificate"));
}

/// A service account directory as a pod has it.
fn service_account(pki: &TestPki, token: &str) -> TempDir {
    let dir = TempDir::new("sa");
    dir.write("ca.crt", &pki.ca_pem);
    dir.write("token", token);
    dir.write("namespace", "kube-system");
    dir
}

/// kube's own `Config::incluster` reads fixed paths under /var/run/secrets; ours takes the directory from the
/// options, so the in-cluster path is tested without touching the host or racing other tests.
#[tokio::test]
async fn in_cluster_config_uses_the_service_account() {
    let pki = TestPki::new("cluster CA");
    let sim = sim(&pki, 2, Some(&pki)).await;
    let sa = service_account(&pki, TOKEN);
    let mut o = options("kubernetes.summary_api:?kubeletHttps=true&kubeletPreferredAddressTypes=InternalIP");
    o.kubelet_port = sim.nodes[0].addr.port();
    o.service_account_dir = sa.0.clone();
    let port = sim.api_server.port().to_string();
    let env = move |k: &str| match k {
        "KUBERNETES_SERVICE_HOST" => Some("127.0.0.1".to_owned()),
        "KUBERNETES_SERVICE_PORT" => Some(port.clone()),
        _ => None,
    };
    let conn = o.connection_with_env(&env).await.unwrap();
    assert_eq!(conn.kube.cluster_url.to_string(), format!("https://{}/", sim.api_server));
    assert_eq!(conn.kube.default_namespace, "kube-system");
    assert!(matches!(conn.kubelet.tls, KubeletTls::Roots(_)), "kubelets verified against the cluster CA");
    assert!(conn.kubelet.keep_alive, "https kubelets keep their connections: a handshake per scrape costs more");
    let p = KubernetesProvider::start(&Cluster::new(o, conn).unwrap(), SourceMetrics::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), p.ready()).await.unwrap();
    let sources = p.sources();
    assert_eq!(sources.len(), 2);
    // The https kubelets take the service account token and trust the cluster CA.
    for s in &sources {
        s.scrape(0).await.unwrap();
    }
}

fn client(tls: KubeletTls, token: Option<&str>) -> KubeletClient {
    KubeletClient::new(ClientConfig { tls, token: token.map(String::from), ..ClientConfig::default() }).unwrap()
}

fn ca_der(pki: &TestPki) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()).map(|c| c.unwrap().to_vec()).collect()
}

/// Over https too (reqwest's pool), a kubelet beyond the budget of kept connections reconnects for each scrape,
/// handshake and all, while a kept one is asked on one connection.
#[tokio::test]
async fn https_kubelets_beyond_the_budget_reconnect_each_scrape() {
    let cluster = TestPki::new("cluster CA");
    let kubelet_ca = TestPki::new("kubelet CA");
    let sim = sim(&cluster, 2, Some(&kubelet_ca)).await;
    let kept = client(KubeletTls::Roots(ca_der(&kubelet_ca)), Some(TOKEN));
    for (i, c) in [(0, kept.clone()), (1, kept.reconnecting())] {
        let url = format!("https://{}/stats/summary", sim.nodes[i].addr);
        for _ in 0..3 {
            c.summary(&url).await.unwrap();
        }
    }
    assert_eq!([sim.connections_used(0), sim.connections_used(1)], [1, 3]);
}

#[tokio::test]
async fn https_kubelets_need_the_token_and_a_trusted_certificate() {
    let cluster = TestPki::new("cluster CA");
    let kubelet_ca = TestPki::new("kubelet CA");
    let sim = sim(&cluster, 2, Some(&kubelet_ca)).await;
    let url = format!("https://{}/stats/summary", sim.nodes[1].addr);

    let ok = client(KubeletTls::Roots(ca_der(&kubelet_ca)), Some(TOKEN));
    assert_eq!(ok.summary(&url).await.unwrap().node.node_name, "sim-node-1");

    let e = client(KubeletTls::Roots(ca_der(&kubelet_ca)), Some("wrong")).summary(&url).await.unwrap_err();
    assert_eq!(e.cause(), "http_status", "{e}");
    assert!(e.to_string().contains("401"), "{e}");
    let e = client(KubeletTls::Roots(ca_der(&kubelet_ca)), None).summary(&url).await.unwrap_err();
    assert!(matches!(e, crate::kubelet::ScrapeError::Status { status: 401, .. }), "{e}");

    // Signed by a CA the client does not trust.
    let e = client(KubeletTls::Roots(ca_der(&cluster)), Some(TOKEN)).summary(&url).await.unwrap_err();
    assert_eq!(e.cause(), "tls", "{e}");
    assert!(
        e.to_string().starts_with("certificate not trusted (set kubeletCAFile= or kubeletInsecureTLS=true)"),
        "{e}"
    );
    let e = client(KubeletTls::SystemRoots, Some(TOKEN)).summary(&url).await.unwrap_err();
    assert_eq!(e.cause(), "tls", "{e}");

    let insecure = client(KubeletTls::Insecure, Some(TOKEN));
    assert_eq!(insecure.summary(&url).await.unwrap().node.node_name, "sim-node-1");

    // A plain-http kubelet asked for https.
    let plain = Simulation::start(SimConfig { nodes: 1, pods_per_node: 1, ..Default::default() }).await.unwrap();
    let e = insecure.summary(&format!("https://{}/stats/summary", plain.nodes[0].addr)).await.unwrap_err();
    assert_eq!(e.cause(), "tls", "{e}");
    assert!(e.to_string().contains("not a TLS server"), "{e}");
}

/// The options as a user gives them: a kubeconfig's token goes to the kubelets too; the cluster CA does not vouch
/// for kubelets with their own CA, `kubeletCAFile=` or `kubeletInsecureTLS=true` do; the error line and counter.
#[tokio::test]
async fn kubelet_options_from_the_source_uri() {
    let cluster = TestPki::new("cluster CA");
    let kubelet_ca = TestPki::new("kubelet CA");
    let sim = sim(&cluster, 2, Some(&kubelet_ca)).await;
    let dir = TempDir::new("kubelet-options");
    let ca = dir.write("ca.crt", &cluster.ca_pem);
    let kca = dir.write("kubelet-ca.crt", &kubelet_ca.ca_pem);
    let auth = kubeconfig(&dir, &sim.api_url(), &ca, TOKEN);
    let base = format!(
        "kubernetes:?auth={}&kubeletHttps=true&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        auth.display(),
        sim.nodes[0].addr.port()
    );

    let p = start(options(&base)).await.unwrap();
    let source = p.sources().into_iter().find(|s| s.name() == "kubelet:sim-node-0").unwrap();
    let errors = || p.metrics.kubelet_scrape_errors.get_or_create(&KubeletCauseLabels { cause: "tls".into() }).get();
    let before = errors();
    let e = source.scrape(0).await.err().unwrap().to_string();
    assert!(e.contains("certificate not trusted (set kubeletCAFile= or kubeletInsecureTLS=true)"), "{e}");
    assert!(e.starts_with(&format!("kubelet sim-node-0 (https://{}", sim.nodes[0].addr)), "{e}");
    assert!(errors() > before, "counted as cause tls");

    for extra in [format!("&kubeletCAFile={}", kca.display()), "&kubeletInsecureTLS=true".to_owned()] {
        let p = start(options(&format!("{base}{extra}"))).await.unwrap();
        for s in p.sources() {
            s.scrape(0).await.unwrap_or_else(|e| panic!("{extra}: {e}"));
        }
    }
}

use crate::self_metrics::KubeletCauseLabels;

#[tokio::test]
async fn kubelets_keep_their_connections_within_what_the_server_leaves_of_the_open_file_limit() {
    let o = options("kubernetes.summary_api:http://127.0.0.1:1?inClusterConfig=false");
    let conn = o.connection().await.unwrap();
    assert!(conn.kubelet.keep_alive);
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap();
    assert_eq!(conn.kubelet.max_kept, crate::kubelet::kept_connection_budget(soft));
    // The server's share is half the limit up to 4,096 descriptors; the kubelets get the rest less the reserve.
    assert_eq!(crate::kubelet::kept_connection_budget(4096), 2048 - crate::kubelet::KEPT_RESERVE);
    assert_eq!(crate::kubelet::kept_connection_budget(20_000), 20_000 - 4096 - crate::kubelet::KEPT_RESERVE);
    assert_eq!(crate::kubelet::kept_connection_budget(1024), 0, "a limit of 1,024 leaves nothing to keep");
}
