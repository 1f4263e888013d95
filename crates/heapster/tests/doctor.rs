//! `heapster doctor`: the real binary against the simulated cluster set up right, then broken in each way users
//! hit most (a kubelet certificate without the scraped address, a token without `nodes/stats`, the APIService
//! failing its discovery check, clock skew), and against real InfluxDB servers (down, refusing credentials).
//! Every case checks the exact line and the exit code.

use heapster_sim::setup::Rule;
use heapster_sim::tls::TestPki;
use heapster_sim::{SimConfig, Simulation, node_ip};
use heapster_testkit::influxd::Influxd;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const TOKEN: &str = "doctor-token";

/// What `heapster doctor ARGS` printed, and its exit code.
struct Run {
    code: i32,
    out: String,
}

impl Run {
    /// The one line whose check (after `ok   `, `FAIL ` or `skip `, before `: `) is `check`, or starts with it
    /// when it ends in `*`.
    fn line(&self, check: &str) -> &str {
        let name = |l: &str| l.get(5..).map(|c| c.split_once(": ").map_or(c, |(n, _)| n).to_owned());
        let matches = |n: String| match check.strip_suffix('*') {
            Some(prefix) => n.starts_with(prefix),
            None => n == check,
        };
        let found: Vec<&str> = self.out.lines().filter(|l| name(l).is_some_and(matches)).collect();
        assert_eq!(found.len(), 1, "one line for {check:?} in:\n{}", self.out);
        found[0]
    }
}

async fn doctor(args: Vec<String>) -> Run {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_heapster")).arg("doctor").args(args).output().expect("run heapster doctor")
    })
    .await
    .unwrap();
    let run = Run { code: out.status.code().unwrap_or(-1), out: String::from_utf8_lossy(&out.stdout).into_owned() };
    eprintln!("heapster doctor exited {}:\n{}{}", run.code, run.out, String::from_utf8_lossy(&out.stderr));
    run
}

/// The rules of the ClusterRole `heapster` in deploy/kubernetes/rbac.yaml: what a cluster set up from the
/// manifests grants heapster's account.
fn manifest_rules() -> Vec<Rule> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/rbac.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "heapster").unwrap();
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Rule {
            api_groups: strings(&r["apiGroups"]),
            resources: strings(&r["resources"]),
            verbs: strings(&r["verbs"]),
        })
        .collect()
}

/// A simulated cluster set up as deploy/kubernetes sets a real one up: API server and kubelets on https with
/// certificates of the cluster CA, a bearer token, the manifest's RBAC, the metrics APIService Available.
struct Cluster {
    sim: Simulation,
    dir: PathBuf,
}

impl Cluster {
    /// `kubelet_names`: the SANs of every kubelet's certificate; `None`: every node's IP.
    async fn start(test: &str, kubelet_names: Option<&[&str]>) -> Cluster {
        let pki = TestPki::new("cluster CA");
        let ips: Vec<std::net::IpAddr> =
            (0..3).map(node_ip).chain(std::iter::once(std::net::Ipv4Addr::LOCALHOST.into())).collect();
        let kubelet_tls = match kubelet_names {
            Some(names) => pki.sim_tls_named(names),
            None => pki.sim_tls(&ips),
        };
        let sim = Simulation::start(SimConfig {
            nodes: 3,
            pods_per_node: 2,
            api_tls: Some(pki.sim_tls(&ips)),
            api_token: Some(TOKEN.into()),
            kubelet_tls: Some(kubelet_tls),
            kubelet_token: Some(TOKEN.into()),
            ..Default::default()
        })
        .await
        .unwrap();
        sim.permit(TOKEN, manifest_rules());
        sim.set_api_service(
            "v1beta1.metrics.k8s.io",
            ("kube-system", "heapster"),
            "True",
            "Passed",
            "all checks passed",
        );
        let dir = std::env::temp_dir().join(format!("heapster-doctor-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), &pki.ca_pem).unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\n\
             clusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: heapster\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: heapster\n",
            sim.api_url(),
            dir.join("ca.crt").display()
        );
        std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
        Cluster { sim, dir }
    }

    /// The server's flags for this cluster, as a deployment would give them, plus `more`.
    fn args(&self, more: &[&str]) -> Vec<String> {
        let source = format!(
            "--source=kubernetes.summary_api:?auth={}&kubeletHttps=true&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
            self.dir.join("kubeconfig").display(),
            self.sim.nodes[0].addr.port()
        );
        std::iter::once(source).chain(more.iter().map(|s| s.to_string())).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Set up as the manifests say, with a real InfluxDB: every check passes, one line each, exit 0. The RBAC rules
/// granted are read from deploy/kubernetes/rbac.yaml, so this also checks that the manifest grants all the doctor
/// asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_passes_every_check() {
    let cluster = Cluster::start("healthy", None).await;
    let influxd = tokio::task::block_in_place(Influxd::start);
    let sink = format!("--sink=influxdb:{}?db=k8s", influxd.url());
    let run = doctor(cluster.args(&[&sink, "--authentication_token_webhook"])).await;
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.out.lines().all(|l| l.starts_with("ok   ")), "{}", run.out);
    let port = cluster.sim.nodes[0].addr.port();
    assert!(run.line("API server https://127.0.0.1:*").contains("credentials accepted"));
    assert!(run.line("clock skew").contains("within 5s"));
    for check in [
        "RBAC get,list,watch nodes",
        "RBAC get,list,watch pods",
        "RBAC get,list,watch namespaces",
        "RBAC get nodes/stats",
        "RBAC create tokenreviews.authentication.k8s.io",
    ] {
        run.line(check);
    }
    assert!(run.line("APIService v1beta1.metrics.k8s.io").ends_with("Available, served by kube-system/heapster"));
    for i in 0..3 {
        run.line(&format!("kubelet port sim-node-{i} ({}:{port})", node_ip(i)));
        let tls = run.line(&format!("kubelet TLS sim-node-{i} ({}:{port})", node_ip(i)));
        assert!(tls.ends_with("is signed by the CA heapster trusts"), "{tls}");
    }
    let sink = run.line("sink influxdb:*");
    assert!(
        sink.contains(
            ": no credentials needed (Heapster's default root/root sent), database k8s made at the first write"
        ),
        "{sink}"
    );
    assert_eq!(run.out.lines().count(), 1 + 1 + 4 + 1 + 1 + 6 + 1, "{}", run.out);
}

/// The kubelets' certificate names 127.1.0.1, 127.1.0.3 and the host name sim-node-1, not sim-node-1's IP, which
/// heapster scrapes: that node fails with the SANs seen and the fix (scrape the Hostname the certificate names);
/// a stopped kubelet is a line of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_certificate_without_the_scraped_address_and_a_dead_kubelet() {
    let names = ["127.1.0.1", "127.1.0.3", "sim-node-1"];
    let cluster = Cluster::start("san", Some(&names)).await;
    cluster.sim.stop_kubelet(2);
    let run = doctor(cluster.args(&[])).await;
    assert_eq!(run.code, 1, "{}", run.out);
    let port = cluster.sim.nodes[0].addr.port();
    let tls = run.line(&format!("kubelet TLS sim-node-1 (127.1.0.2:{port})"));
    assert!(tls.starts_with("FAIL "), "{tls}");
    assert!(
        tls.contains("the kubelet's certificate names IP:127.1.0.1, IP:127.1.0.3, DNS:sim-node-1, not 127.1.0.2 that heapster scrapes"),
        "{tls}"
    );
    assert!(
        tls.contains("— fix: scrape the Hostname the certificate names: kubeletPreferredAddressTypes=Hostname"),
        "{tls}"
    );
    assert!(tls.contains("kubeletInsecureTLS=true"), "{tls}");
    assert!(run.line(&format!("kubelet TLS sim-node-0 (127.1.0.1:{port})")).starts_with("ok   "));
    let dead = run.line(&format!("kubelet port sim-node-2 (127.1.0.3:{port})"));
    assert!(
        dead.starts_with(&format!("FAIL kubelet port sim-node-2 (127.1.0.3:{port}): https port {port} not reachable")),
        "{dead}"
    );
    assert!(dead.contains("— fix: let heapster's pod reach the nodes on TCP"), "{dead}");
    assert_eq!(run.out.lines().filter(|l| l.starts_with("FAIL")).count(), 2, "{}", run.out);
}

/// A ClusterRole without the `nodes/stats` rule: that check fails naming the rule to add and where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_nodes_stats() {
    let cluster = Cluster::start("rbac", None).await;
    let rules = manifest_rules().into_iter().filter(|r| !r.resources.iter().any(|x| x == "nodes/stats")).collect();
    cluster.sim.permit(TOKEN, rules);
    let run = doctor(cluster.args(&[])).await;
    assert_eq!(run.code, 1, "{}", run.out);
    assert_eq!(
        run.line("RBAC get nodes/stats"),
        "FAIL RBAC get nodes/stats: not allowed to get nodes/stats (needed for the kubelets' Summary API \
         (/stats/summary on the https port)) — fix: add the rule {apiGroups: [\"\"], resources: [\"nodes/stats\"], \
         verbs: [\"get\"]} to the ClusterRole heapster (deploy/kubernetes/rbac.yaml)"
    );
    assert!(run.line("RBAC get,list,watch nodes").starts_with("ok   "));
    assert_eq!(run.out.lines().filter(|l| l.starts_with("FAIL")).count(), 1, "{}", run.out);
}

/// The APIService as kube-aggregator marks it when it cannot reach heapster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_service_failing_its_discovery_check() {
    let cluster = Cluster::start("apiservice", None).await;
    let message = "failing or missing response from https://10.96.0.12:443/apis/metrics.k8s.io/v1beta1: Get \
                   \"https://10.96.0.12:443/apis/metrics.k8s.io/v1beta1\": context deadline exceeded";
    cluster.sim.set_api_service(
        "v1beta1.metrics.k8s.io",
        ("kube-system", "heapster"),
        "False",
        "FailedDiscoveryCheck",
        message,
    );
    let run = doctor(cluster.args(&[])).await;
    assert_eq!(run.code, 1, "{}", run.out);
    let line = run.line("APIService v1beta1.metrics.k8s.io");
    assert!(
        line.starts_with(&format!("FAIL APIService v1beta1.metrics.k8s.io: not Available: FailedDiscoveryCheck: {message} — fix: the API server cannot reach the Service kube-system/heapster")),
        "{line}"
    );
    assert!(line.contains("hostNetwork: true"), "{line}");
}

/// The API server's clock 30 s ahead of this host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew() {
    let cluster = Cluster::start("skew", None).await;
    cluster.sim.set_clock_skew(chrono::Duration::seconds(30));
    let run = doctor(cluster.args(&[])).await;
    assert_eq!(run.code, 1, "{}", run.out);
    let line = run.line("clock skew");
    let ahead: f64 = line
        .strip_prefix("FAIL clock skew: the API server's clock is ")
        .and_then(|l| l.split_once("s ahead of this host's"))
        .map(|(s, _)| s.parse().unwrap())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((29.0..=31.0).contains(&ahead), "{line}");
    assert!(line.contains("— fix: synchronize the clocks"), "{line}");
    cluster.sim.set_clock_skew(chrono::Duration::seconds(-2));
    let run = doctor(cluster.args(&[])).await;
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.line("clock skew").contains("behind this host's, within 5s"), "{}", run.out);
}

/// InfluxDB on a port nothing listens on: the sink's line says so and names the flag; no cluster needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_sink() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = doctor(vec![format!("--sink=influxdb:http://127.0.0.1:{port}?db=k8s")]).await;
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.line("cluster").starts_with("skip cluster: no kubernetes --source"));
    let line = run.line("sink influxdb:*");
    assert!(
        line.starts_with(&format!(
            "FAIL sink influxdb:http://127.0.0.1:{port}/?db=k8s: InfluxDB at http://127.0.0.1:{port}/ not reachable"
        )),
        "{line}"
    );
    assert!(line.contains("Connection refused"), "{line}");
    assert!(line.ends_with(&format!("— fix: start InfluxDB at http://127.0.0.1:{port}/, or correct the URL in --sink=influxdb:URL (host, port, http/https)")), "{line}");
}

/// A real InfluxDB with `auth-enabled = true`: no credentials, a wrong password, then the right ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_refusing_credentials() {
    let influxd = tokio::task::block_in_place(|| Influxd::start_with_auth("admin", "s3cret"));
    let url = influxd.url();
    let run = doctor(vec![format!("--sink=influxdb:{url}?db=k8s")]).await;
    assert_eq!(run.code, 1, "{}", run.out);
    let line = run.line("sink influxdb:*");
    assert!(line.contains("refused the credentials (401 Unauthorized: authorization failed)"), "{line}");
    assert!(line.contains("— fix: the server requires authentication: add user=NAME&pw=PASSWORD"), "{line}");
    let run = doctor(vec![format!("--sink=influxdb:{url}?db=k8s&user=admin&pw=wrong")]).await;
    assert_eq!(run.code, 1, "{}", run.out);
    let line = run.line("sink influxdb:*");
    assert!(line.contains("refused the credentials (401 Unauthorized: authorization failed)"), "{line}");
    assert!(line.contains("— fix: correct user= and pw= in --sink=influxdb:... (the user \"admin\""), "{line}");
    let run = doctor(vec![format!("--sink=influxdb:{url}?db=k8s&user=admin&pw=s3cret")]).await;
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(
        run.line("sink influxdb:*").contains(": user admin accepted, database k8s made at the first write"),
        "{}",
        run.out
    );
}
