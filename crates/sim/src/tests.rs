use super::*;
use heapster_model::MetricValue;
use heapster_sources::MetricsSource;
use heapster_sources::kubelet::{ClientConfig, KubeletClient, KubeletSource};

#[tokio::test]
async fn each_node_answers_on_its_own_address_with_growing_counters() {
    let epoch = Utc::now() - chrono::Duration::seconds(600);
    let config = SimConfig { nodes: 3, pods_per_node: 20, ..Default::default() };
    let sim = Simulation::start_with(config, Template::builtin(), epoch).await.unwrap();
    let ips: std::collections::HashSet<_> = sim.nodes.iter().map(|n| n.addr.ip()).collect();
    assert_eq!(ips.len(), 3, "one address per node");

    let client = KubeletClient::new(ClientConfig::default()).unwrap();
    let node = &sim.nodes[1];
    let source = KubeletSource {
        node: node.spec.name.clone(),
        host_id: None,
        url: format!("http://{}/stats/summary", node.addr),
        client,
        metrics: Default::default(),
        api_pods: None,
    };
    let a = source.scrape(0).await.unwrap();
    let pods = a.sets.keys().filter(|k| k.contains("/pod:") && !k.contains("/container:")).count();
    assert_eq!(pods, 20);
    assert!(a.sets.contains_key("node:sim-node-1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = source.scrape(0).await.unwrap();
    // The first template pod's first container grows at its recorded usageNanoCores (80666400 ns/s).
    let key = a.sets.keys().find(|k| k.ends_with("/container:compute-pi-digits")).unwrap().clone();
    let cpu = |batch: &heapster_model::DataBatch| match batch.sets[&key].get("cpu/usage") {
        Some(MetricValue::Int(v)) => v,
        other => panic!("{other:?}"),
    };
    let dt_s = (b.sets[&key].scrape_time - a.sets[&key].scrape_time) as f64 / 1000.0;
    let rate = (cpu(&b) - cpu(&a)) as f64 / dt_s;
    assert!(dt_s >= 1.0, "{dt_s}");
    assert!((rate / 80_666_400.0 - 1.0).abs() < 0.05, "{rate} ns/s");
}

#[test]
fn churn_replaces_pods_over_time() {
    let t = Template::builtin();
    let epoch = Utc::now();
    let spec = NodeSpec { name: "n".into(), index: 0, pods: 30, epoch, churn: Some(Duration::from_secs(60)) };
    let now = spec.pods(&t, epoch + chrono::Duration::seconds(10));
    let later = spec.pods(&t, epoch + chrono::Duration::seconds(70));
    assert_eq!(now.len(), 30);
    let names: std::collections::HashSet<_> = now.iter().map(|p| &p.name).collect();
    assert_eq!(names.len(), 30, "unique names");
    assert!(now.iter().zip(&later).all(|(a, b)| a.name != b.name || a.start == b.start));
    assert!(now.iter().zip(&later).any(|(a, b)| a.name != b.name), "some pods were replaced");
    let doc: serde_json::Value =
        serde_json::from_str(&kubelet::render(&t, &spec, epoch + chrono::Duration::seconds(70))).unwrap();
    assert_eq!(doc["pods"].as_array().unwrap().len(), 30);
    assert_eq!(doc["pods"][0]["podRef"]["name"], later[0].name.as_str());
}

/// `with_network_rates`: pod slot `i` receives exactly its rate, through heapster's own kubelet source, and the
/// API server lists the pods Ready with their `app` label.
#[tokio::test]
async fn network_rate_templates_give_each_pod_its_rate() {
    let pods = [("web", 1000.0), ("web", 2500.0), ("db", 0.0)];
    let epoch = Utc::now() - chrono::Duration::seconds(60);
    let config = SimConfig { nodes: 1, pods_per_node: 3, ..Default::default() };
    let sim = Simulation::start_with(config, Template::with_network_rates("web", &pods), epoch).await.unwrap();
    let node = &sim.nodes[0];
    let source = KubeletSource {
        node: node.spec.name.clone(),
        host_id: None,
        url: format!("http://{}/stats/summary", node.addr),
        client: KubeletClient::new(ClientConfig::default()).unwrap(),
        metrics: Default::default(),
        api_pods: None,
    };
    let a = source.scrape(0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = source.scrape(0).await.unwrap();
    for (slot, (app, want)) in pods.iter().enumerate() {
        let key = format!("namespace:web/pod:{app}-0-{slot}-g0");
        let rx = |batch: &heapster_model::DataBatch| match batch.sets[&key].get("network/rx") {
            Some(MetricValue::Int(v)) => v,
            other => panic!("{key}: {other:?}"),
        };
        let dt_s = (b.sets[&key].scrape_time - a.sets[&key].scrape_time) as f64 / 1000.0;
        let rate = (rx(&b) - rx(&a)) as f64 / dt_s;
        assert!((rate - want).abs() <= 1.0 / dt_s + 1e-9, "{key}: {rate} B/s, want {want}");
        assert!((rx(&b) as f64 / want.max(1.0) - 60.0).abs() < 5.0 || *want == 0.0, "counted from the pod's start");
    }
    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap();
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::all(client);
    let items = pods.list(&Default::default()).await.unwrap().items;
    assert!(items.iter().all(|p| p.metadata.namespace.as_deref() == Some("web")));
    assert_eq!(items.len(), 3);
    for p in items {
        let name = p.metadata.name.unwrap();
        assert_eq!(p.metadata.labels.unwrap()["app"], name.split('-').next().unwrap());
        let conditions = p.status.unwrap().conditions.unwrap();
        assert!(conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"), "{conditions:?}");
    }
}

/// Compiled templates render exactly what walking the recorded JSON renders, at several moments and with churn.
#[test]
fn compiled_rendering_is_byte_for_byte_the_walking_one() {
    let t = Template::builtin();
    let epoch = Utc::now();
    let spec = NodeSpec { name: "n-7".into(), index: 7, pods: 40, epoch, churn: Some(Duration::from_secs(60)) };
    for s in [0, 1, 15, 61, 3600] {
        let now = epoch + chrono::Duration::milliseconds(s * 1000 + 337);
        let compiled = kubelet::render(&t, &spec, now);
        assert_eq!(compiled, kubelet::render_walking(&t, &spec, now), "at {s} s");
        assert!(compiled.contains("usageCoreNanoSeconds"), "counters are written");
    }
}

/// `json` without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c.is_ascii_whitespace() {
            continue;
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

fn laid_out_as_kubelets_do(compact: &str) -> String {
    let mut out = String::new();
    kubelet::Indenter::at(0).text(compact, &mut out);
    out
}

/// The layout is a real kubelet's, byte for byte: the recorded 1.28 response (go-restful's one-space
/// `MarshalIndent`) comes back unchanged from its compact form, empty arrays and objects and escaped strings
/// included; and the simulator's documents are in that layout.
#[test]
fn documents_are_laid_out_as_a_real_kubelet_lays_them_out() {
    let recorded = include_str!("../fixtures/kubelet_stats_summary_k8s1.28_multicontainer.json");
    assert!(recorded.contains("\n  \"nodeName\": "), "the fixture is the kubelet's indented form");
    assert_eq!(laid_out_as_kubelets_do(&compact(recorded)), recorded);
    let tricky = r#"{"a":[],"b":{},"c":"x,{\"y\":[1]}\\","d":[{"e":[[]]}]}"#;
    let expected = "{\n \"a\": [],\n \"b\": {},\n \"c\": \"x,{\\\"y\\\":[1]}\\\\\",\n \"d\": [\n  {\n   \"e\": [\n    []\n   ]\n  }\n ]\n}";
    assert_eq!(laid_out_as_kubelets_do(tricky), expected);

    let t = Template::builtin();
    let epoch = Utc::now();
    for pods in [0, 1, 30] {
        let spec = NodeSpec { name: "n-3".into(), index: 3, pods, epoch, churn: None };
        let doc = kubelet::render(&t, &spec, epoch + chrono::Duration::seconds(20));
        assert_eq!(laid_out_as_kubelets_do(&compact(&doc)), doc, "{pods} pods");
    }
}

/// The API server is checked with a real Kubernetes client (kube-rs): typed lists decode, and a watcher sees pods
/// replaced by churn.
#[tokio::test]
async fn a_kube_client_lists_and_watches_the_simulated_cluster() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
    use kube::api::{Api, ListParams};
    use kube::runtime::watcher;

    let config = SimConfig { nodes: 4, pods_per_node: 5, churn: Some(Duration::from_secs(2)), ..Default::default() };
    let sim = Simulation::start(config).await.unwrap();
    let kube_config = kube::Config::new(format!("http://{}", sim.api_server).parse().unwrap());
    let client = kube::Client::try_from(kube_config).unwrap();

    let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    assert_eq!(nodes.items.len(), 4);
    let n1 = &nodes.items[1];
    let addr = n1.status.as_ref().unwrap().addresses.as_ref().unwrap()[0].address.clone();
    assert_eq!(addr, sim.nodes[1].addr.ip().to_string(), "the node's InternalIP is its kubelet's address");
    let pods = Api::<Pod>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    assert_eq!(pods.items.len(), 20);
    assert!(pods.items.iter().all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()));
    let namespaces = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    assert!(!namespaces.items.is_empty());

    let mut events = watcher(Api::<Pod>::all(client), watcher::Config::default()).boxed();
    let (mut applied, mut deleted) = (0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < until && (applied == 0 || deleted == 0) {
        match tokio::time::timeout(Duration::from_secs(3), events.next()).await {
            Ok(Some(Ok(watcher::Event::Apply(_)))) => applied += 1,
            Ok(Some(Ok(watcher::Event::Delete(_)))) => deleted += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("watch error: {e}"),
            Ok(None) | Err(_) => {}
        }
    }
    assert!(applied > 0 && deleted > 0, "churn seen by the watcher: {applied} added, {deleted} deleted");
}

/// Lists come in pages when asked, as a real API server's do (kube-rs's watcher asks for 500 at a time): the
/// pages together are the whole list, each at most `limit`, all at the first page's resource version.
#[tokio::test]
async fn lists_are_paged_with_continue_tokens() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};

    let sim = Simulation::start(SimConfig { nodes: 3, pods_per_node: 5, ..Default::default() }).await.unwrap();
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{}", sim.api_server).parse().unwrap())).unwrap();
    let api = Api::<Pod>::all(client);
    let whole: Vec<String> =
        api.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|p| p.metadata.uid).collect();
    assert_eq!(whole.len(), 15);
    let (mut paged, mut token, mut versions, mut pages) = (Vec::new(), None::<String>, Vec::new(), 0);
    loop {
        let mut params = ListParams::default().limit(4);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = api.list(&params).await.unwrap();
        assert!(page.items.len() <= 4, "a page of {} items", page.items.len());
        pages += 1;
        versions.push(page.metadata.resource_version.clone());
        paged.extend(page.items.into_iter().filter_map(|p| p.metadata.uid));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!((pages, &paged), (4, &whole), "4 + 4 + 4 + 3 pods, in the unpaged list's order");
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "every page at the first one's version: {versions:?}");
}

/// TLS mode: the API server and kubelets serve certificates of the test CA, and answer 401 without the token.
#[tokio::test]
async fn tls_mode_serves_certificates_and_requires_the_token() {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, ListParams};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pki = tls::TestPki::new("sim test CA");
    let mut ips: Vec<IpAddr> = (0..2).map(node_ip).collect();
    ips.push(Ipv4Addr::LOCALHOST.into());
    let cert = pki.sim_tls(&ips);
    let config = SimConfig {
        nodes: 2,
        pods_per_node: 2,
        api_tls: Some(cert.clone()),
        api_token: Some("tok".into()),
        kubelet_tls: Some(cert),
        kubelet_token: Some("tok".into()),
        ..Default::default()
    };
    let sim = Simulation::start(config).await.unwrap();
    assert!(sim.api_url().starts_with("https://127.0.0.1:"));
    let ca: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()).map(|c| c.unwrap().to_vec()).collect();
    let kube_config = |token: Option<&str>| {
        let mut c = kube::Config::new(sim.api_url().parse().unwrap());
        c.root_cert = Some(ca.clone());
        c.auth_info.token = token.map(|t| t.to_owned().into());
        kube::Client::try_from(c).unwrap()
    };
    let nodes = Api::<Node>::all(kube_config(Some("tok"))).list(&ListParams::default()).await.unwrap();
    assert_eq!(nodes.items.len(), 2);
    match Api::<Node>::all(kube_config(None)).list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("{other:?}"),
    }

    let url = format!("https://{}/stats/summary", sim.nodes[0].addr);
    let client = |token: Option<&str>| {
        KubeletClient::new(ClientConfig {
            token: token.map(String::from),
            tls: heapster_sources::kubelet::KubeletTls::Roots(ca.clone()),
            ..ClientConfig::default()
        })
        .unwrap()
    };
    assert_eq!(client(Some("tok")).summary(&url).await.unwrap().pods.len(), 2);
    let e = client(None).summary(&url).await.unwrap_err();
    assert_eq!(e.cause(), "http_status", "{e}");
}

/// `delete_node` as a kube-rs watcher sees it (a DELETED node, its pods gone from the list) and as a kubelet client
/// does (connection refused); `stop_kubelet` alone leaves the node listed; `unlisted_pods` hides pods from the API
/// server only.
#[tokio::test]
async fn nodes_vanish_and_pods_can_be_hidden_from_the_api_server() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, ListParams};
    use kube::runtime::watcher;

    let config = SimConfig { nodes: 3, pods_per_node: 4, unlisted_pods: 1, ..Default::default() };
    let sim = Simulation::start(config).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap();
    let pods = Api::<Pod>::all(client.clone());
    assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 9, "3 of each node's 4 pods listed");
    let kubelet = KubeletClient::new(ClientConfig { timeout: Duration::from_secs(5), ..Default::default() }).unwrap();
    let url = |i: usize| format!("http://{}/stats/summary", sim.nodes[i].addr);
    assert_eq!(kubelet.summary(&url(0)).await.unwrap().pods.len(), 4, "the kubelet reports all 4");

    let mut events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).boxed();
    // The initial list, up to InitDone.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap() {
            Some(Ok(watcher::Event::InitDone)) => break,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    sim.stop_kubelet(2);
    let e = kubelet.summary(&url(2)).await.unwrap_err();
    assert_eq!(e.cause(), "connect", "{e}");
    assert_eq!(Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap().items.len(), 3);

    sim.delete_node(1);
    let e = kubelet.summary(&url(1)).await.unwrap_err();
    assert_eq!(e.cause(), "connect", "{e}");
    let deleted = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap() {
            Some(Ok(watcher::Event::Delete(n))) => break n,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(deleted.metadata.name.as_deref(), Some("sim-node-1"));
    let names: Vec<_> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, ["sim-node-0", "sim-node-2"]);
    let pods = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(pods.len(), 6, "the deleted node's pods went with it");
    assert!(pods.iter().all(|p| p.spec.as_ref().unwrap().node_name.as_deref() != Some("sim-node-1")));
    assert_eq!(kubelet.summary(&url(0)).await.unwrap().pods.len(), 4, "the other kubelets still answer");
}

/// A page of a long pod list is built alone: kube-rs lists 500 at a time, and 15,000 nodes make 900 pages, each of
/// which built all 450,000 pods before this.
#[tokio::test]
async fn a_page_of_pods_builds_only_its_own_pods() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};

    let config = SimConfig { nodes: 20, pods_per_node: 30, unlisted_pods: 1, ..Default::default() };
    let sim = Simulation::start(config).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap();
    let pods = Api::<Pod>::all(client);
    let all: Vec<_> =
        pods.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|p| p.metadata.uid).collect();
    assert_eq!(all.len(), 20 * 29);
    let built = || sim.view.pods_built.load(Ordering::Relaxed);
    let before = built();
    let first = pods.list(&ListParams::default().limit(50)).await.unwrap();
    assert_eq!(first.items.len(), 50);
    assert_eq!(first.metadata.remaining_item_count, Some(20 * 29 - 50));
    assert!(built() - before <= 50, "{} pods built for a page of 50", built() - before);
    // The second page starts inside the second node and goes on in the whole list's order.
    let token = first.metadata.continue_.clone().unwrap();
    let second = pods.list(&ListParams::default().limit(50).continue_token(&token)).await.unwrap();
    let uids = |l: kube::core::ObjectList<Pod>| l.items.into_iter().filter_map(|p| p.metadata.uid).collect::<Vec<_>>();
    assert_eq!(uids(first), all[..50]);
    assert_eq!(uids(second), all[50..100]);
}

/// Without churn a watch builds its objects again only when a test changed something: at 15,000 nodes a pod watch
/// looking every second would build 450,000 pods a second.
#[tokio::test]
async fn an_idle_pod_watch_builds_no_pods_until_something_changes() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, WatchEvent, WatchParams};

    let sim = Simulation::start(SimConfig { nodes: 10, pods_per_node: 30, ..Default::default() }).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap();
    let pods = Api::<Pod>::all(client);
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let built = || sim.view.pods_built.load(Ordering::Relaxed);
    let before = built();
    let mut events = pods.watch(&WatchParams::default().timeout(120), &rv).await.unwrap().boxed();
    // What the watch knew at `rv`: 300 pods, which its first look finds unchanged.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while built() < before + 300 {
        assert!(tokio::time::Instant::now() < until, "the watch never looked: {} pods built", built() - before);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first look and three more, a second apart, with nothing changed; and a second watch from the same
    // version, as a client's watch starts again after its timeout, shares what the first built.
    let _again = pods.watch(&WatchParams::default().timeout(120), &rv).await.unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(built(), before + 300, "idle watches built {} pods again", built() - before - 300);

    sim.label_pods("tier", "web");
    let modified = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap() {
            Some(Ok(WatchEvent::Modified(p))) => break p,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(modified.metadata.labels.unwrap().get("tier").map(String::as_str), Some("web"));
}

/// A node deleted between a client's list and its watch is reported by the watch (its pods DELETED), though
/// watches share what they built while nothing changes: what the client knew is what there was at its list.
#[tokio::test]
async fn a_watch_reports_a_change_made_between_the_list_and_the_watch() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, WatchEvent, WatchParams};

    let sim = Simulation::start(SimConfig { nodes: 3, pods_per_node: 2, ..Default::default() }).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().unwrap())).unwrap();
    let pods = Api::<Pod>::all(client);
    // A first watch builds the shared texts, with every pod.
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let _first = pods.watch(&WatchParams::default().timeout(60), &rv).await.unwrap();
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    sim.delete_node(1);
    let mut events = pods.watch(&WatchParams::default().timeout(60), &rv).await.unwrap().boxed();
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(WatchEvent::Deleted(p)))) => deleted.push(p.spec.unwrap().node_name.unwrap()),
            Ok(Some(Ok(_))) => {}
            other => panic!("{other:?} after {deleted:?}"),
        }
    }
    assert_eq!(deleted, ["sim-node-1", "sim-node-1"]);
}

/// A simulation spread over two processes (here two in one): each serves its share of the kubelets on the same
/// port, and the API server of either lists every node at the address its kubelet answers on.
#[tokio::test]
async fn kubelets_can_be_served_apart_from_the_api_server() {
    let epoch = Utc::now() - chrono::Duration::seconds(600);
    let config =
        |kubelets, kubelet_port| SimConfig { nodes: 4, pods_per_node: 5, kubelets, kubelet_port, ..Default::default() };
    let here = Simulation::start_with(config(Some(0..2), 0), Template::builtin(), epoch).await.unwrap();
    let port = here.nodes[0].addr.port();
    let refused = Simulation::start_with(config(Some(2..4), 0), Template::builtin(), epoch).await.err();
    assert!(refused.is_some_and(|e| e.to_string().contains("fixed kubelet_port")), "the port must be given");
    let apart = Simulation::start_with(config(Some(2..4), port), Template::builtin(), epoch).await.unwrap();

    let client = kube::Client::try_from(kube::Config::new(here.api_url().parse().unwrap())).unwrap();
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(client).list(&Default::default()).await.unwrap();
    assert_eq!(nodes.items.len(), 4, "the API server lists the nodes served elsewhere too");
    let kubelet = KubeletClient::new(ClientConfig::default()).unwrap();
    for (i, node) in here.nodes.iter().enumerate() {
        assert_eq!(node.addr, SocketAddr::new(node_ip(i), port));
        let summary = kubelet.summary(&format!("http://{}/stats/summary", node.addr)).await.unwrap();
        assert_eq!(summary.node.node_name, format!("sim-node-{i}"), "answered by the process serving it");
        assert_eq!(summary.pods.len(), 5);
    }
    assert_eq!(apart.connections_used(3), 1, "node 3 is served by the second simulation");
    assert_eq!(here.connections_used(1), 1);
    assert_eq!(apart.scrapes_between(0, i64::MAX), [1, 1], "nodes 2 and 3, counted from the first served");
    // Deleted from the API server here; its kubelet, served apart, still answers until that process stops it.
    here.delete_node(3);
    assert!(kubelet.summary(&format!("http://{}/stats/summary", here.nodes[3].addr)).await.is_ok());
    for (bad, kubelets) in [("beyond the nodes", 3..5), ("empty", 2..2)] {
        let e = Simulation::start_with(config(Some(kubelets), port), Template::builtin(), epoch).await.err();
        assert!(e.is_some_and(|e| e.to_string().contains("are not among 4 nodes")), "{bad}");
    }
}
