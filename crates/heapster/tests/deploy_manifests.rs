//! The manifests of `deploy/kubernetes/` against the code they deploy: every document parses into its
//! Kubernetes type with no field lost (so a misspelt field fails here, not silently in a cluster); RBAC grants
//! what heapster calls; names, ports and labels of the Deployment, Service and APIService line up; and the
//! Deployment's container command, run as it would run in a pod (service account and volumes mounted at the
//! manifest's paths, API server from the environment), starts heapster against the simulated cluster and
//! serves what the probes and the aggregation layer ask.

mod common;

use heapster_sim::tls::TestPki;
use heapster_sim::{SimConfig, Simulation};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every object of the manifests, by file.
struct Manifests {
    files: BTreeMap<String, Vec<Value>>,
}

impl Manifests {
    fn load() -> Manifests {
        Self::load_from(&deploy_dir())
    }

    fn load_from(dir: &Path) -> Manifests {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let docs: Vec<Value> =
                    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                files.insert(name, docs.into_iter().filter(|d| !d.is_null()).collect());
            }
        }
        Manifests { files }
    }

    fn objects(&self) -> impl Iterator<Item = &Value> {
        self.files.iter().filter(|(f, _)| *f != "kustomization.yaml").flat_map(|(_, d)| d)
    }

    /// The objects of `kind`, as `T`.
    fn of_kind<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        self.objects().filter(|o| o["kind"] == kind).map(|o| serde_json::from_value(o.clone()).unwrap()).collect()
    }

    fn one<T: serde::de::DeserializeOwned>(&self, kind: &str) -> T {
        let mut all = self.of_kind::<T>(kind);
        assert_eq!(all.len(), 1, "one {kind} in deploy/kubernetes");
        all.remove(0)
    }

    fn deployment(&self) -> Deployment {
        self.one("Deployment")
    }
}

/// `value` as `T` and back, unchanged: a field `T` does not know (misspelt, misplaced) would be dropped.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match difference(value, &back, "") {
        Some(path) => Err(format!("{path}: not a field of its type (misspelt or misplaced?), or changed by it")),
        None => Ok(()),
    }
}

/// The path of the first place where `a` and `b` differ.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| {
            let p = format!("{path}.{k}");
            match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => difference(u, v, &p),
                _ => Some(p),
            }
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| difference(u, v, &format!("{path}[{i}]")))
        }
        _ => (a != b).then(|| path.to_string()),
    }
}

#[test]
fn every_manifest_is_a_valid_kubernetes_object() {
    let kinds = Manifests::load().checked_kinds();
    assert_eq!(
        kinds,
        [
            "APIService",
            "APIService",
            "APIService",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
    );
}

impl Manifests {
    /// Checks that every object round-trips through its k8s-openapi type and that the kustomization applies
    /// every file (`kubectl apply -k`); the kinds found, sorted.
    fn checked_kinds(&self) -> Vec<String> {
        let kinds = self.typed_kinds();
        let k = &self.files["kustomization.yaml"][0];
        let mut listed: Vec<&str> = k["resources"].as_array().unwrap().iter().filter_map(|r| r.as_str()).collect();
        listed.sort();
        let mut files: Vec<&str> =
            self.files.keys().map(String::as_str).filter(|f| *f != "kustomization.yaml").collect();
        files.sort();
        assert_eq!(listed, files, "the kustomization applies every file");
        kinds
    }

    /// Checks that every object round-trips through its k8s-openapi type; the kinds found, sorted.
    fn typed_kinds(&self) -> Vec<String> {
        let mut kinds = Vec::new();
        for o in self.objects() {
            let kind = o["kind"].as_str().unwrap_or_default();
            let checked = match kind {
                "ServiceAccount" => round_trips::<ServiceAccount>(o),
                "ClusterRole" => round_trips::<ClusterRole>(o),
                "ClusterRoleBinding" => round_trips::<ClusterRoleBinding>(o),
                "Role" => round_trips::<Role>(o),
                "RoleBinding" => round_trips::<RoleBinding>(o),
                "Deployment" => round_trips::<Deployment>(o),
                "StatefulSet" => round_trips::<StatefulSet>(o),
                "Service" => round_trips::<Service>(o),
                "APIService" => round_trips::<APIService>(o),
                other => Err(format!("a kind this test does not know: {other:?}")),
            };
            checked.unwrap_or_else(|e| panic!("{kind} {}: {e}", o["metadata"]["name"]));
            kinds.push(kind.to_string());
        }
        kinds.sort();
        kinds
    }
}

/// Whether `role` grants `verb` on `resource` of `group`.
fn grants(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|r| {
        let has = |list: &Option<Vec<String>>, x: &str| list.iter().flatten().any(|v| v == x || v == "*");
        has(&r.api_groups, group) && has(&r.resources, resource) && r.verbs.iter().any(|v| v == verb || v == "*")
    })
}

#[test]
fn rbac_grants_what_heapster_calls() {
    let m = Manifests::load();
    let d = m.deployment();
    let ns = d.metadata.namespace.clone().unwrap();
    let account = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().service_account_name.clone().unwrap();
    let sa: ServiceAccount = m.one("ServiceAccount");
    assert_eq!((sa.metadata.name.as_deref(), sa.metadata.namespace.as_deref()), (Some(&*account), Some(&*ns)));

    let bindings: Vec<ClusterRoleBinding> = m.of_kind("ClusterRoleBinding");
    let bound = bindings
        .iter()
        .find(|b| {
            b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "ServiceAccount" && s.name == account && s.namespace.as_deref() == Some(&*ns))
        })
        .expect("a ClusterRoleBinding for heapster's service account");
    assert_eq!(bound.role_ref.kind, "ClusterRole");
    let roles: Vec<ClusterRole> = m.of_kind("ClusterRole");
    let role = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(&*bound.role_ref.name))
        .expect("the bound ClusterRole is in the manifests");
    // What the code calls: the reflectors of crates/sources/src/kubernetes (list + watch), the kubelets' Summary
    // API (nodes/stats get, as the kubelet authorizes it), the node pass-through (get), and the reviews the
    // Deployment's flags turn on.
    let mut needed = vec![
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("", "nodes/stats", "get"),
    ];
    let args = container(&d).args.clone().unwrap();
    if switched_on(&args, "authentication_token_webhook") {
        needed.push(("authentication.k8s.io", "tokenreviews", "create"));
    }
    if switched_on(&args, "authorization_webhook") {
        needed.push(("authorization.k8s.io", "subjectaccessreviews", "create"));
    }
    for (group, resource, verb) in needed {
        assert!(grants(role, group, resource, verb), "{verb} {group}/{resource} is not granted");
    }
    // And nothing that writes to the cluster.
    for verb in ["create", "update", "patch", "delete"] {
        for resource in ["nodes", "pods", "namespaces", "secrets", "configmaps"] {
            assert!(!grants(role, "", resource, verb), "{verb} {resource} should not be granted");
        }
    }
    let reader =
        roles.iter().find(|r| r.metadata.name.as_deref() == Some("heapster-aggregated-metrics-reader")).unwrap();
    assert!(grants(reader, "metrics.k8s.io", "pods", "list") && grants(reader, "metrics.k8s.io", "nodes", "get"));

    // The HPA controller may read custom.metrics.k8s.io: every resource it asks for (`pods/<metric>`, named or
    // `*`, nodes and namespaces' `metrics`), and nothing else.
    let custom = roles.iter().find(|r| r.metadata.name.as_deref() == Some("heapster-custom-metrics-reader")).unwrap();
    for resource in ["pods", "nodes", "metrics", "namespaces"] {
        for verb in ["get", "list"] {
            assert!(grants(custom, "custom.metrics.k8s.io", resource, verb), "{verb} custom.metrics.k8s.io/{resource}");
        }
    }
    assert!(!grants(custom, "", "pods", "get") && !grants(custom, "metrics.k8s.io", "pods", "get"));
    let hpa = bindings
        .iter()
        .find(|b| b.role_ref.name == "heapster-custom-metrics-reader")
        .expect("a binding of heapster-custom-metrics-reader");
    let subjects: Vec<(&str, &str, Option<&str>)> =
        hpa.subjects.iter().flatten().map(|s| (&*s.kind, &*s.name, s.namespace.as_deref())).collect();
    assert_eq!(subjects, [("ServiceAccount", "horizontal-pod-autoscaler", Some("kube-system"))]);
}

fn container(d: &Deployment) -> &Container {
    let containers = &d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers;
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// The value of `--name=` in `args` (the last one, as the parser takes it).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().rev().find_map(|a| a.strip_prefix(&format!("--{name}=")))
}

/// Whether the boolean flag `--name` is on in `args` (`--name` or `--name=true`, the last one wins).
fn switched_on(args: &[String], name: &str) -> bool {
    let bare = format!("--{name}");
    let value =
        args.iter().rev().find_map(|a| if *a == bare { Some("true") } else { a.strip_prefix(&format!("{bare}=")) });
    value == Some("true")
}

/// The flags of `args` whose value is a file path, with the path.
fn path_flags(args: &[String]) -> Vec<(&str, &str)> {
    args.iter()
        .filter_map(|a| a.strip_prefix("--")?.split_once('='))
        .filter(|(_, value)| value.starts_with('/'))
        .collect()
}

/// The Deployment is set up as an aggregated API server: it trusts the user headers of the aggregation layer
/// (the front-proxy CA of the extension-apiserver-authentication ConfigMap, with the allowed names), leaves what
/// each user may read to the cluster's RBAC, and takes client certificates of the cluster's client CA, not of the
/// front-proxy CA (whose certificates name a proxy, not a user). Every argument parses with the real binary.
#[test]
fn the_deployment_serves_the_aggregation_layer() {
    let m = Manifests::load();
    let d = m.deployment();
    let c = container(&d);
    let args = c.args.clone().unwrap();
    let key_of = |name: &str| {
        let path = flag(&args, name).unwrap_or_else(|| panic!("--{name} is not set"));
        let mount = c.volume_mounts.iter().flatten().find(|m| path.starts_with(&format!("{}/", m.mount_path)));
        let mount = mount.unwrap_or_else(|| panic!("--{name}={path} is on no volume mount"));
        let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
        let cm = volume.config_map.as_ref().unwrap_or_else(|| panic!("--{name}: not from a ConfigMap"));
        assert_eq!(cm.name, "extension-apiserver-authentication", "--{name}");
        let file = &path[mount.mount_path.len() + 1..];
        cm.items.iter().flatten().find(|i| i.path == file).expect("the item mounted at the path").key.clone()
    };
    assert_eq!(key_of("requestheader_client_ca_file"), "requestheader-client-ca-file");
    assert_eq!(key_of("tls_client_ca"), "client-ca-file", "front-proxy certificates are no users");
    assert_eq!(flag(&args, "requestheader_allowed_names"), Some("front-proxy-client"), "kubeadm's name");
    assert_eq!(flag(&args, "requestheader_username_headers"), Some("X-Remote-User"));
    assert_eq!(flag(&args, "requestheader_group_headers"), Some("X-Remote-Group"));
    assert!(switched_on(&args, "authorization_webhook"), "RBAC decides who reads");
    assert!(flag(&args, "allowed_users").is_none(), "a list of users would override RBAC's bindings");

    // The binary takes the container's arguments: `--version` only answers once every other flag parsed.
    let out = Command::new(env!("CARGO_BIN_EXE_heapster")).args(&args).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn names_ports_and_labels_line_up() {
    let m = Manifests::load();
    let d = m.deployment();
    let spec = d.spec.as_ref().unwrap();
    let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    for (k, v) in spec.selector.match_labels.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "the Deployment's selector matches its pods");
    }
    let c = container(&d);
    let args = c.args.clone().unwrap();
    let port: i32 = flag(&args, "heapster_port").unwrap_or("8082").parse().unwrap();
    let https = c.ports.iter().flatten().find(|p| p.name.as_deref() == Some("https")).expect("a port named https");
    assert_eq!(https.container_port, port, "the container port is the one heapster listens on");
    assert!(flag(&args, "tls_cert").is_some(), "heapster serves https on its https port");

    let svc: Service = m.one("Service");
    let sspec = svc.spec.as_ref().unwrap();
    assert_eq!(svc.metadata.namespace, d.metadata.namespace);
    for (k, v) in sspec.selector.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "the Service selects heapster's pods");
    }
    let sport = sspec.ports.iter().flatten().find(|p| p.name.as_deref() == Some("https")).unwrap();
    assert_eq!(sport.target_port, Some(IntOrString::String("https".into())));

    // metrics.k8s.io for `kubectl top` and the HPA's resource metrics, custom.metrics.k8s.io in both versions
    // heapster serves for its Pods and Object metrics (v1beta2 preferred).
    let apis: Vec<APIService> = m.of_kind("APIService");
    let served: Vec<(&str, &str, i32)> = apis
        .iter()
        .map(|a| {
            let s = a.spec.as_ref().unwrap();
            (s.group.as_deref().unwrap(), s.version.as_deref().unwrap(), s.version_priority)
        })
        .collect();
    assert_eq!(
        served,
        [
            ("metrics.k8s.io", "v1beta1", 100),
            ("custom.metrics.k8s.io", "v1beta2", 200),
            ("custom.metrics.k8s.io", "v1beta1", 100)
        ]
    );
    for api in &apis {
        let aspec = api.spec.as_ref().unwrap();
        let name = format!("{}.{}", aspec.version.as_deref().unwrap(), aspec.group.as_deref().unwrap());
        assert_eq!(api.metadata.name.as_deref(), Some(&*name), "an APIService is named version.group");
        let target = aspec.service.as_ref().unwrap();
        assert_eq!(target.name.as_deref(), svc.metadata.name.as_deref());
        assert_eq!(target.namespace.as_deref(), svc.metadata.namespace.as_deref());
        assert_eq!(target.port.unwrap_or(443), sport.port, "the APIService calls the Service's https port");
    }

    // Probes reach /healthz (open without credentials) on the https port, over https.
    for probe in [&c.liveness_probe, &c.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.port, IntOrString::String("https".into()));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
    // Every file a flag names is on a volume that is mounted.
    let pod = spec.template.spec.as_ref().unwrap();
    let volumes: Vec<&str> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
    for (name, path) in path_flags(&args) {
        let mount = c.volume_mounts.iter().flatten().find(|m| path.starts_with(&format!("{}/", m.mount_path)));
        let mount = mount.unwrap_or_else(|| panic!("--{name}={path} is on no volume mount"));
        assert!(volumes.contains(&mount.name.as_str()), "volume {} is not defined", mount.name);
    }
}

/// The file a volume of the Deployment provides at `path` in a cluster: the Secret's certificate and key, an item
/// of the extension-apiserver-authentication ConfigMap (`authentication`: its data).
fn volume_file(
    d: &Deployment,
    path: &str,
    serving: &(String, String),
    authentication: &BTreeMap<&str, &str>,
) -> String {
    let c = container(d);
    let mount = c.volume_mounts.iter().flatten().find(|m| path.starts_with(&format!("{}/", m.mount_path))).unwrap();
    let file = &path[mount.mount_path.len() + 1..];
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
    if let Some(secret) = &volume.secret {
        assert_eq!(secret.secret_name.as_deref(), Some("heapster-tls"));
        return match file {
            "tls.crt" => serving.0.clone(),
            "tls.key" => serving.1.clone(),
            other => panic!("a kubernetes.io/tls Secret has no {other}"),
        };
    }
    let cm = volume.config_map.as_ref().expect("a Secret or ConfigMap volume");
    assert_eq!(cm.name, "extension-apiserver-authentication");
    let item = cm.items.iter().flatten().find(|i| i.path == file).expect("the ConfigMap item mounted at the path");
    let data = authentication.get(item.key.as_str());
    data.unwrap_or_else(|| panic!("the ConfigMap has no {}", item.key)).to_string()
}

/// Runs the Deployment's container command as a pod would: in a mount namespace of its own with a tmpfs on /run
/// (so nothing of this host changes), the service account at /var/run/secrets/kubernetes.io/serviceaccount, the
/// volumes at the manifest's paths, `KUBERNETES_SERVICE_HOST`/`PORT` pointing at the simulated API server. Only
/// the port is changed (a free one), as tests run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_starts_heapster_in_the_simulated_cluster() {
    let m = Manifests::load();
    let d = m.deployment();
    let c = container(&d);
    let command = c.command.clone().unwrap();
    assert!(command.len() == 1 && command[0].ends_with("/heapster"), "{command:?}");
    let args = c.args.clone().unwrap();

    let cluster = TestPki::new("cluster CA");
    let sim = Simulation::start(SimConfig {
        nodes: 3,
        pods_per_node: 2,
        api_tls: Some(cluster.sim_tls(&[std::net::Ipv4Addr::LOCALHOST.into()])),
        api_token: Some("heapster-service-account-token".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    // Tokens of the form the API server issues (JWTs): others are refused without a TokenReview.
    sim.token_reviews().accept(
        "e30.eyJzdWIiOiJwcm9tZXRoZXVzIn0.c2ln",
        "system:serviceaccount:monitoring:prometheus-k8s",
        &[],
    );
    sim.token_reviews().accept("e30.eyJzdWIiOiJzb21lb25lIn0.c2ln", "system:serviceaccount:default:someone", &[]);
    // The cluster's RBAC, as kube-prometheus and a view binding would set it.
    sim.access_reviews().allow_path("system:serviceaccount:monitoring:prometheus-k8s", "/metrics");
    sim.access_reviews().allow_resource("alice", "metrics.k8s.io", "nodes", None);
    let serving_pki = TestPki::new("heapster serving CA");
    let serving = serving_pki.server_cert(&[std::net::Ipv4Addr::LOCALHOST.into()]);
    let front_proxy = TestPki::new("front-proxy CA");
    let client_ca = TestPki::new("cluster client CA");
    let authentication = BTreeMap::from([
        ("client-ca-file", client_ca.ca_pem.as_str()),
        ("requestheader-client-ca-file", front_proxy.ca_pem.as_str()),
    ]);

    // The files a pod would see, staged in a directory and copied into the namespace's /run.
    let stage = std::env::temp_dir().join(format!("heapster-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let mut copies = String::new();
    let mut put = |path: &str, text: &str| {
        assert!(path.starts_with("/var/run/"), "{path}: the test mounts only /run");
        let staged = stage.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        std::fs::write(&staged, text).unwrap();
        let dir = Path::new(path).parent().unwrap().display().to_string();
        copies.push_str(&format!("mkdir -p '{dir}' && cp '{}' '{path}' && ", staged.display()));
    };
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    put(&format!("{sa}/token"), "heapster-service-account-token");
    put(&format!("{sa}/ca.crt"), &cluster.ca_pem);
    put(&format!("{sa}/namespace"), d.metadata.namespace.as_deref().unwrap());
    for (_, path) in path_flags(&args) {
        put(path, &volume_file(&d, path, &serving, &authentication));
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = format!("mount -t tmpfs tmpfs /run && {copies}exec \"$0\" \"$@\"");
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script, env!("CARGO_BIN_EXE_heapster")])
        .args(&args)
        .arg(format!("--heapster_port={port}"))
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", sim.api_server.port().to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) runs the pod's command; the tests run as root");
    let mut h = common::Heapster { child, port };
    let base = format!("https://127.0.0.1:{port}");
    let anonymous = https_client(&serving_pki.ca_pem, None);

    // The probes' request: /healthz over https without credentials, 200 once batches flow.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = h.child.try_wait() {
            panic!("heapster exited with {status}: see its log above");
        }
        match anonymous.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == 200 => break,
            Ok(r) => assert_ne!(r.status(), 401, "/healthz must stay open"),
            Err(_) => {}
        }
        assert!(Instant::now() < until, "heapster from the Deployment's args did not become healthy");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = std::fs::remove_dir_all(&stage);

    // Prometheus' token reads /metrics (RBAC allows it the path); it saw the nodes through the service account.
    let prometheus = "e30.eyJzdWIiOiJwcm9tZXRoZXVzIn0.c2ln";
    let get_metrics = |token: &str| anonymous.get(format!("{base}/metrics")).bearer_auth(token.to_string()).send();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get_metrics(prometheus).await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        if text.lines().any(|l| l == "heapster_kubernetes_nodes 3") {
            break;
        }
        assert!(Instant::now() < until, "the simulated nodes were not discovered: {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(get_metrics("e30.eyJzdWIiOiJzb21lb25lIn0.c2ln").await.unwrap().status(), 403, "no RBAC rule");
    assert_eq!(get_metrics("made-up").await.unwrap().status(), 401);
    assert_eq!(anonymous.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);

    // The aggregation layer: its certificate and the user it names, whom RBAC lets read nodes and not /metrics.
    let aggregator = https_client(&serving_pki.ca_pem, Some(front_proxy.client_cert("front-proxy-client", &[])));
    let nodes = format!("{base}/apis/metrics.k8s.io/v1beta1/nodes");
    let as_alice = |c: &reqwest::Client, url: &str| c.get(url).header("X-Remote-User", "alice").send();
    let r = as_alice(&aggregator, &nodes).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "NodeMetricsList");
    assert_eq!(as_alice(&aggregator, &format!("{base}/metrics")).await.unwrap().status(), 403);
    assert_eq!(as_alice(&anonymous, &nodes).await.unwrap().status(), 401, "forged headers name nobody");
    // A client certificate of the cluster's client CA: CN the user, O the groups (system:masters reads all).
    let admin = https_client(&serving_pki.ca_pem, Some(client_ca.client_cert("kubernetes-admin", &["system:masters"])));
    assert_eq!(admin.get(format!("{base}/metrics")).send().await.unwrap().status(), 200);
    let _ = h.child.kill();
}

fn https_client(ca: &str, identity: Option<(String, String)>) -> reqwest::Client {
    heapster_sources::ensure_crypto_provider();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Whether `rules` grant `verb` on `resource` of `group`, for the object called `name` when given.
fn rules_grant(rules: &[PolicyRule], group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    rules.iter().any(|r| {
        let has = |list: &Option<Vec<String>>, x: &str| list.iter().flatten().any(|v| v == x || v == "*");
        let named = match (&r.resource_names, name) {
            (None, _) => true,
            (Some(names), Some(n)) => names.iter().any(|v| v == n),
            (Some(_), None) => false,
        };
        has(&r.api_groups, group) && has(&r.resources, resource) && r.verbs.iter().any(|v| v == verb) && named
    })
}

/// `deploy/kubernetes/eventer/`: valid objects, all applied by its kustomization, RBAC for what the eventer
/// calls (events list and watch, its Lease), and a container command the binary accepts.
#[test]
fn the_eventer_manifests_grant_what_it_calls_and_its_flags_parse() {
    let m = Manifests::load_from(&deploy_dir().join("eventer"));
    let kinds = m.checked_kinds();
    assert_eq!(kinds, ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "ServiceAccount"]);
    let d = m.deployment();
    let ns = d.metadata.namespace.clone().unwrap();
    let c = container(&d);
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(c.command.as_deref(), Some(&["/heapster".to_owned(), "eventer".to_owned()][..]));
    let lease = flag(&args, "leader_elect_lease").expect("--leader_elect_lease");
    let (lease_ns, lease_name) = lease.split_once('/').unwrap();
    assert_eq!(lease_ns, ns);

    let account = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().service_account_name.clone().unwrap();
    let bound_to_account = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount" && s.name == account && s.namespace.as_deref() == Some(&*ns))
    };
    let cluster_rules: Vec<PolicyRule> = m
        .of_kind::<ClusterRoleBinding>("ClusterRoleBinding")
        .iter()
        .filter(|b| bound_to_account(&b.subjects))
        .flat_map(|b| {
            m.of_kind::<ClusterRole>("ClusterRole")
                .into_iter()
                .filter(move |r| r.metadata.name.as_deref() == Some(&*b.role_ref.name))
        })
        .flat_map(|r| r.rules.unwrap_or_default())
        .collect();
    let lease_rules: Vec<PolicyRule> = m
        .of_kind::<RoleBinding>("RoleBinding")
        .iter()
        .filter(|b| bound_to_account(&b.subjects) && b.metadata.namespace.as_deref() == Some(lease_ns))
        .flat_map(|b| {
            m.of_kind::<Role>("Role").into_iter().filter(move |r| r.metadata.name.as_deref() == Some(&*b.role_ref.name))
        })
        .flat_map(|r| r.rules.unwrap_or_default())
        .collect();
    for verb in ["list", "watch"] {
        assert!(rules_grant(&cluster_rules, "", "events", verb, None), "{verb} events is not granted");
    }
    assert!(!rules_grant(&cluster_rules, "", "events", "create", None), "the eventer writes no events");
    assert!(rules_grant(&lease_rules, "coordination.k8s.io", "leases", "create", None), "create leases");
    for verb in ["get", "update"] {
        assert!(rules_grant(&lease_rules, "coordination.k8s.io", "leases", verb, Some(lease_name)), "{verb} the Lease");
        assert!(!rules_grant(&lease_rules, "coordination.k8s.io", "leases", verb, Some("kube-controller-manager")));
    }

    // The binary takes the container's arguments: `--version` only answers once every other flag parsed.
    let out = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args(c.command.as_ref().unwrap()[1..].iter().chain(&args))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Issue 16, finding 6: `system:` names belong to Kubernetes. `system:heapster` is one of its built-in
/// ClusterRoles, so applying a role of that name replaced the built-in one's rules; every cluster-wide RBAC object
/// of the manifests has a name of its own.
#[test]
fn no_cluster_wide_rbac_object_takes_a_system_name() {
    for dir in [deploy_dir(), deploy_dir().join("eventer")] {
        let m = Manifests::load_from(&dir);
        for kind in ["ClusterRole", "ClusterRoleBinding"] {
            let names: Vec<String> =
                m.objects().filter(|o| o["kind"] == kind).map(|o| o["metadata"]["name"].to_string()).collect();
            assert!(!names.is_empty(), "{}: no {kind}", dir.display());
            for name in names {
                assert!(
                    !name.trim_matches('"').starts_with("system:"),
                    "{}: {kind} {name} takes a system: name",
                    dir.display()
                );
            }
        }
    }
}

/// Issue 16, finding 7: both Deployments meet the Pod Security Standards' "restricted" profile: a pod-level
/// securityContext that refuses root and applies the runtime's default seccomp filter, and containers without
/// privilege escalation, capabilities or a writable root filesystem.
#[test]
fn the_deployments_run_restricted() {
    for dir in [deploy_dir(), deploy_dir().join("eventer")] {
        let d = Manifests::load_from(&dir).deployment();
        let spec = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let pod = spec.security_context.as_ref().unwrap_or_else(|| panic!("{}: no pod securityContext", dir.display()));
        assert_eq!(pod.run_as_non_root, Some(true), "{}", dir.display());
        assert!(pod.run_as_user.is_some_and(|u| u != 0), "{}: runAsUser", dir.display());
        let seccomp = pod.seccomp_profile.as_ref().map(|p| p.type_.as_str());
        assert_eq!(seccomp, Some("RuntimeDefault"), "{}: seccompProfile", dir.display());
        for c in &spec.containers {
            let sc = c
                .security_context
                .as_ref()
                .unwrap_or_else(|| panic!("{}: {} has no securityContext", dir.display(), c.name));
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            let dropped = sc.capabilities.as_ref().and_then(|k| k.drop.clone()).unwrap_or_default();
            assert_eq!(dropped, ["ALL"], "{}", c.name);
            assert!(sc.privileged != Some(true) && sc.run_as_user != Some(0), "{}", c.name);
        }
    }
}

/// The objects `kubectl kustomize DIR` renders (kubectl's built-in kustomize; no cluster needed), by kind.
fn kustomize(dir: &Path) -> Manifests {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (its built-in kustomize renders the overlay)");
    assert!(out.status.success(), "kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"));
    Manifests { files: BTreeMap::from([("rendered".to_owned(), docs.into_iter().filter(|d| !d.is_null()).collect())]) }
}

fn sharded_dir() -> PathBuf {
    deploy_dir().join("../kubernetes-sharded")
}

/// The container's arguments as the kubelet passes them: `$(VAR)` replaced by the container's environment, whose
/// downward-API values are those of the StatefulSet's pod `pod_name`.
fn expanded_args(sts: &StatefulSet, pod_name: &str) -> Vec<String> {
    let c = &sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
    let mut env = BTreeMap::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, e.value_from.as_ref().and_then(|v| v.field_ref.as_ref())) {
            (Some(v), _) => v.clone(),
            (None, Some(f)) => match f.field_path.as_str() {
                "metadata.name" => pod_name.to_owned(),
                "metadata.namespace" => sts.metadata.namespace.clone().unwrap(),
                "status.podIP" => "10.0.0.10".to_owned(),
                other => panic!("{}: a field this test does not know: {other}", e.name),
            },
            _ => panic!("{}: neither a value nor a field", e.name),
        };
        env.insert(format!("$({})", e.name), value);
    }
    let args = c.args.clone().unwrap();
    args.into_iter()
        .map(|mut a| {
            for (var, value) in &env {
                a = a.replace(var, value);
            }
            assert!(!a.contains("$("), "{a}: a variable the container does not define");
            a
        })
        .collect()
}

/// Whether a `nonResourceURLs` rule of `rules` lets `get` reach `path` (`*` only at the end, as RBAC has it).
fn path_granted(rules: &[PolicyRule], path: &str) -> bool {
    rules.iter().any(|r| {
        r.verbs.iter().any(|v| v == "get" || v == "*")
            && r.non_resource_urls.iter().flatten().any(|u| match u.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == u,
            })
    })
}

/// `deploy/kubernetes-sharded/`, rendered by `kubectl kustomize`: deploy/kubernetes with a StatefulSet of 3
/// replicas in place of the Deployment (its pod otherwise the same), the headless Service their advertised
/// addresses name, and RBAC for the Leases in the Lease namespace and for the replicas' reads of each other. The
/// shard flags, filled from the downward API, are what heapster accepts and agree with the objects.
#[test]
fn the_sharded_overlay_renders_a_statefulset_of_replicas_with_leases_and_peers() {
    let m = kustomize(&sharded_dir());
    let kinds = m.typed_kinds();
    assert_eq!(
        kinds,
        [
            "APIService",
            "APIService",
            "APIService",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "StatefulSet"
        ],
        "no Deployment beside the StatefulSet"
    );
    let sts: StatefulSet = m.one("StatefulSet");
    let spec = sts.spec.as_ref().unwrap();
    let ns = sts.metadata.namespace.clone().unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    for (k, v) in spec.selector.match_labels.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "the StatefulSet's selector matches its pods");
    }

    // The pod is the base Deployment's, with the shard flags added to its arguments, their environment and a
    // preference for separate nodes: nothing of the base (security context, probes, volumes) was lost.
    let base = kustomize(&deploy_dir()).deployment();
    let base_template = serde_json::to_value(&base.spec.as_ref().unwrap().template).unwrap();
    let mut template = serde_json::to_value(&spec.template).unwrap();
    let base_args = base_template["spec"]["containers"][0]["args"].clone();
    let args = template["spec"]["containers"][0]["args"].clone();
    assert_eq!(args.as_array().unwrap()[..base_args.as_array().unwrap().len()], base_args.as_array().unwrap()[..]);
    template["spec"]["containers"][0]["args"] = base_args;
    template["spec"]["containers"][0].as_object_mut().unwrap().remove("env");
    template["spec"].as_object_mut().unwrap().remove("affinity");
    assert_eq!(difference(&template, &base_template, ""), None, "the StatefulSet's pod strays from the Deployment's");

    // The shard flags of replica 0, as the kubelet expands them.
    let pod = format!("{}-0", sts.metadata.name.as_deref().unwrap());
    let args = expanded_args(&sts, &pod);
    let lease_ns = flag(&args, "shard_lease_namespace").expect("--shard_lease_namespace");
    assert_eq!(lease_ns, ns, "the Leases live beside the replicas");
    assert_eq!(flag(&args, "shard_identity"), Some(pod.as_str()), "each replica is named by its pod");
    assert!(flag(&args, "peers").is_none(), "with shards the peers come from the Leases");
    assert!(!switched_on(&args, "shard_export_rollups"), "partial roll-ups are not written by default");

    // The advertised address: the pod's name under the headless Service that governs the StatefulSet, on the
    // port heapster listens on, over https as it serves.
    let services: Vec<Service> = m.of_kind("Service");
    let peers = services.iter().find(|s| s.metadata.name == spec.service_name).expect("the StatefulSet's Service");
    let pspec = peers.spec.as_ref().unwrap();
    assert_eq!(pspec.cluster_ip.as_deref(), Some("None"), "headless: one DNS name per pod");
    assert_eq!(pspec.publish_not_ready_addresses, Some(true), "a starting replica is reachable by the others");
    for (k, v) in pspec.selector.iter().flatten() {
        assert_eq!(pod_labels.get(k), Some(v), "{} selects heapster's pods", spec.service_name.as_deref().unwrap());
    }
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    let port: i32 = flag(&args, "heapster_port").unwrap_or("8082").parse().unwrap();
    let https = c.ports.iter().flatten().find(|p| p.name.as_deref() == Some("https")).unwrap();
    assert_eq!(https.container_port, port);
    let peer_port = pspec.ports.iter().flatten().find(|p| p.name.as_deref() == Some("https")).unwrap();
    assert_eq!(peer_port.target_port, Some(IntOrString::String("https".into())));
    assert!(flag(&args, "tls_cert").is_some());
    let service_name = spec.service_name.as_deref().unwrap();
    assert_eq!(
        flag(&args, "shard_advertise_address"),
        Some(format!("https://{pod}.{service_name}.{ns}.svc:{port}").as_str()),
        "the others reach this replica at its per-pod DNS name, which its certificate can carry"
    );
    // The CA the peers' certificates are checked against is on a mounted volume (every file a flag names is).
    let ca = flag(&args, "peers_ca_file").expect("--peers_ca_file: the peers serve https");
    let pod_spec = spec.template.spec.as_ref().unwrap();
    for (name, path) in path_flags(&args) {
        let mount = c.volume_mounts.iter().flatten().find(|m| path.starts_with(&format!("{}/", m.mount_path)));
        let mount = mount.unwrap_or_else(|| panic!("--{name}={path} is on no volume mount"));
        assert!(pod_spec.volumes.iter().flatten().any(|v| v.name == mount.name), "volume {}", mount.name);
    }
    assert!(path_flags(&args).iter().any(|(n, p)| *n == "peers_ca_file" && *p == ca));

    // RBAC: the service account's roles grant the Leases in their namespace and the fan-out's reads, and still
    // what deploy/kubernetes grants, with no write outside the Leases.
    let account = pod_spec.service_account_name.clone().unwrap();
    let bound = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount" && s.name == account && s.namespace.as_deref() == Some(&*ns))
    };
    let cluster_roles: Vec<ClusterRole> = m.of_kind("ClusterRole");
    let cluster_rules: Vec<PolicyRule> = m
        .of_kind::<ClusterRoleBinding>("ClusterRoleBinding")
        .iter()
        .filter(|b| bound(&b.subjects))
        .flat_map(|b| cluster_roles.iter().filter(move |r| r.metadata.name.as_deref() == Some(&*b.role_ref.name)))
        .flat_map(|r| r.rules.clone().unwrap_or_default())
        .collect();
    let roles: Vec<Role> = m.of_kind("Role");
    let lease_rules: Vec<PolicyRule> = m
        .of_kind::<RoleBinding>("RoleBinding")
        .iter()
        .filter(|b| bound(&b.subjects) && b.metadata.namespace.as_deref() == Some(lease_ns))
        .flat_map(|b| {
            roles.iter().filter(move |r| {
                r.metadata.name.as_deref() == Some(&*b.role_ref.name)
                    && r.metadata.namespace.as_deref() == Some(lease_ns)
            })
        })
        .flat_map(|r| r.rules.clone().unwrap_or_default())
        .collect();
    // What crates/sources/src/kubernetes/shard.rs calls: get, create and update its own Lease, list the members,
    // delete its own on SIGTERM.
    for verb in ["get", "list", "create", "update", "delete"] {
        assert!(rules_grant(&lease_rules, "coordination.k8s.io", "leases", verb, None), "{verb} leases in {lease_ns}");
    }
    // What one replica asks another (crates/api/src/fanout), as the other's --authorization_webhook reviews it:
    // metrics.k8s.io as resources, every other path as a non-resource URL.
    assert!(switched_on(&args, "authorization_webhook"));
    for (resource, verb) in [("nodes", "list"), ("nodes", "get"), ("pods", "list"), ("pods", "get")] {
        assert!(
            rules_grant(&cluster_rules, "metrics.k8s.io", resource, verb, None),
            "{verb} metrics.k8s.io {resource}"
        );
    }
    for path in [
        "/api/v1/model/nodes/",
        "/api/v1/model/metrics/cpu/usage_rate",
        "/api/v1/model/namespaces/default/pods/web/metrics/memory/usage",
        "/api/v1/dashboard/overview",
        "/api/v1/dashboard/series",
        "/api/v1/nodes",
        "/api/v1/nodes/node-1",
        "/api/v1/pods",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods/web",
    ] {
        assert!(path_granted(&cluster_rules, path), "a peer may not get {path}");
    }
    assert!(!path_granted(&cluster_rules, "/metrics"), "the fan-out does not read /metrics");
    for (group, resource, verb) in [("", "nodes", "list"), ("", "pods", "watch"), ("", "nodes/stats", "get")] {
        assert!(rules_grant(&cluster_rules, group, resource, verb, None), "{verb} {resource}: the base's rules");
    }
    for verb in ["create", "update", "patch", "delete"] {
        for resource in ["nodes", "pods", "namespaces", "secrets", "configmaps"] {
            assert!(!rules_grant(&cluster_rules, "", resource, verb, None), "{verb} {resource} should not be granted");
        }
        assert!(!rules_grant(&cluster_rules, "coordination.k8s.io", "leases", verb, None), "leases cluster-wide");
    }
    for r in &cluster_roles {
        assert!(!r.metadata.name.as_deref().unwrap().starts_with("system:"), "{:?}", r.metadata.name);
    }

    // Every argument parses with the real binary (`--version` answers once every other flag parsed).
    let out = Command::new(env!("CARGO_BIN_EXE_heapster")).args(&args).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // And the shard flags pass heapster's own checks (a Lease name the API server takes, a kubernetes source),
    // which end a start with status 2 before anything else; here, out of a pod, the start then fails otherwise.
    let out = Command::new(env!("CARGO_BIN_EXE_heapster"))
        .args(&args)
        .arg("--heapster_port=0")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "out of a pod heapster cannot reach the API server: {stderr}");
    assert_ne!(out.status.code(), Some(2), "the flags were refused: {stderr}");
    assert!(stderr.contains("KUBERNETES_SERVICE_HOST"), "past the flags' checks, at the in-cluster source: {stderr}");
}
