//! The API server's checks: reachable with the configured credentials, its clock against this host's, what
//! heapster's account may do (one SelfSubjectAccessReview per verb), and the metrics APIService's conditions.

use super::Report;
use crate::flags::Flags;
use heapster_sources::kubernetes::Cluster;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use std::time::{Duration, SystemTime};

/// Deadline of every request to the API server.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A clock skew beyond this fails: tokens' and certificates' validity windows and the metrics' timestamps are off.
const MAX_SKEW: Duration = Duration::from_secs(5);

/// Runs the cluster's checks; `false` when the API server cannot be used, so the kubelets cannot be listed.
pub(super) async fn check(cluster: &Cluster, flags: &Flags, report: &mut Report) -> bool {
    if !reachable(cluster, report).await {
        return false;
    }
    rbac(cluster, flags, report).await;
    api_service(cluster, report).await;
    true
}

/// GET `path` on the API server: status, `Date` header, body, and when the request went out and came back.
struct Answer {
    status: u16,
    date: Option<SystemTime>,
    body: Vec<u8>,
    sent: SystemTime,
    received: SystemTime,
}

async fn get(cluster: &Cluster, path: &str) -> Result<Answer, kube::Error> {
    let request = axum::http::Request::get(path)
        .header(axum::http::header::ACCEPT, "application/json")
        .body(kube::client::Body::empty())
        .expect("a fixed path");
    let sent = SystemTime::now();
    let response = match tokio::time::timeout(TIMEOUT, cluster.client.send(request)).await {
        Ok(r) => r?,
        Err(_) => {
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {TIMEOUT:?}"));
            return Err(kube::Error::Service(Box::new(e)));
        }
    };
    let received = SystemTime::now();
    let status = response.status().as_u16();
    let date = response
        .headers()
        .get(axum::http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 16 << 20).await.unwrap_or_default();
    Ok(Answer { status, date, body: body.to_vec(), sent, received })
}

/// `/version`: reachable, TLS trusted, credentials taken; then the clock skew from the same answer's `Date`.
async fn reachable(cluster: &Cluster, report: &mut Report) -> bool {
    let server = &cluster.server;
    let check = format!("API server {server}");
    let answer = match get(cluster, "/version").await {
        Ok(a) => a,
        Err(e) => {
            let (problem, fix) = match heapster_net::tls_failure(&e) {
                Some(tls) => (
                    heapster_net::describe_tls(&tls, "the CA of the auth= kubeconfig", "insecure=true"),
                    "trust the CA that signed the API server's certificate (the kubeconfig's certificate-authority, \
                     or the service account's ca.crt), or add insecure=true to --source=kubernetes:..."
                        .to_owned(),
                ),
                None => (
                    format!("not reachable: {}", heapster_net::error_chain(&e)),
                    format!(
                        "correct the URL in --source=kubernetes:URL (now {server}), or let this host reach it \
                         (firewall, proxy)"
                    ),
                ),
            };
            report.fail(&check, &problem, &fix);
            return false;
        }
    };
    if answer.status == 401 || answer.status == 403 {
        let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        report.fail(
            &check,
            &format!("credentials refused ({} {message})", answer.status),
            "give a valid token or certificate: the auth= kubeconfig's user, or the service account \
             (useServiceAccount=true, inClusterConfig=true) in --source=kubernetes:...",
        );
        return false;
    }
    if !(200..300).contains(&answer.status) {
        report.fail(
            &check,
            &format!("/version answered {}", answer.status),
            "check that --source=kubernetes:URL names the Kubernetes API server",
        );
        return false;
    }
    let version = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v["gitVersion"].as_str().map(str::to_owned))
        .unwrap_or_default();
    report.ok(&check, &format!("Kubernetes {version}, credentials accepted"));
    skew(&answer, report);
    true
}

/// This host's clock against the API server's `Date` (whole seconds: its midpoint is taken), at the middle of the
/// request's round trip.
fn skew(answer: &Answer, report: &mut Report) {
    let check = "clock skew";
    let Some(date) = answer.date else {
        report.skip(check, "the API server sent no Date header");
        return;
    };
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let here = (secs(answer.sent) + secs(answer.received)) / 2.0;
    let skew = secs(date) + 0.5 - here;
    let words = if skew >= 0.0 { "ahead of" } else { "behind" };
    let text = format!("the API server's clock is {:.1}s {words} this host's", skew.abs());
    if skew.abs() > MAX_SKEW.as_secs_f64() {
        report.fail(
            check,
            &format!("{text} (more than {}s: tokens, certificates and metric timestamps go wrong)", MAX_SKEW.as_secs()),
            "synchronize the clocks of this host, the nodes and the control plane with NTP (chrony or \
             systemd-timesyncd)",
        );
    } else {
        report.ok(check, &format!("{text}, within {}s", MAX_SKEW.as_secs()));
    }
}

/// A permission heapster needs: verbs on a resource, where, and why.
struct Need {
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verbs: &'static [&'static str],
    /// `None`: cluster-wide (a ClusterRole's rule); a namespace: a Role there.
    namespace: Option<String>,
    why: &'static str,
}

impl Need {
    fn name(&self) -> String {
        let mut r = self.resource.to_owned();
        if !self.subresource.is_empty() {
            r = format!("{r}/{}", self.subresource);
        }
        if !self.group.is_empty() {
            r = format!("{r}.{}", self.group);
        }
        match &self.namespace {
            Some(ns) => format!("{r} in {ns}"),
            None => r,
        }
    }

    /// The RBAC rule that grants `verbs`, as a line of YAML flow style.
    fn rule(&self, verbs: &[&str]) -> String {
        let resource = if self.subresource.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let verbs = verbs.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
        format!("{{apiGroups: [\"{}\"], resources: [\"{resource}\"], verbs: [{verbs}]}}", self.group)
    }
}

/// What heapster run with `flags` asks of the API server (deploy/kubernetes/rbac.yaml grants it).
fn needs(flags: &Flags, cluster: &Cluster) -> Vec<Need> {
    let watch: &[&str] = &["get", "list", "watch"];
    let core = |resource, verbs, why| Need { group: "", resource, subresource: "", verbs, namespace: None, why };
    let mut out = vec![
        core("nodes", watch, "node discovery, the node metadata and `kubectl top node`'s pass-through"),
        core("pods", watch, "the pods' labels, requests and limits"),
        core("namespaces", watch, "the namespaces' metadata"),
    ];
    if cluster.options.kubelet_https {
        out.push(Need {
            group: "",
            resource: "nodes",
            subresource: "stats",
            verbs: &["get"],
            namespace: None,
            why: "the kubelets' Summary API (/stats/summary on the https port)",
        });
    }
    if let Some(shard) = flags.shard() {
        out.push(Need {
            group: "coordination.k8s.io",
            resource: "leases",
            subresource: "",
            verbs: &["get", "list", "create", "update", "delete"],
            namespace: Some(shard.namespace),
            why: "the shards' Leases (--shard_lease_namespace)",
        });
    }
    if flags.authentication_token_webhook {
        out.push(Need {
            group: "authentication.k8s.io",
            resource: "tokenreviews",
            subresource: "",
            verbs: &["create"],
            namespace: None,
            why: "--authentication_token_webhook",
        });
    }
    if flags.authorization_webhook {
        out.push(Need {
            group: "authorization.k8s.io",
            resource: "subjectaccessreviews",
            subresource: "",
            verbs: &["create"],
            namespace: None,
            why: "--authorization_webhook",
        });
    }
    out
}

/// One SelfSubjectAccessReview per verb of every [`Need`]; one line per need.
async fn rbac(cluster: &Cluster, flags: &Flags, report: &mut Report) {
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(cluster.client.clone());
    for need in needs(flags, cluster) {
        let check = format!("RBAC {} {}", need.verbs.join(","), need.name());
        let mut missing = Vec::new();
        let mut error = None;
        for verb in need.verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(need.group.into()),
                        resource: Some(need.resource.into()),
                        subresource: Some(need.subresource.into()).filter(|s: &String| !s.is_empty()),
                        verb: Some((*verb).into()),
                        namespace: need.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = tokio::time::timeout(TIMEOUT, api.create(&kube::api::PostParams::default(), &review)).await;
            match answer {
                Ok(Ok(r)) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
                Ok(Ok(_)) => missing.push(*verb),
                Ok(Err(e)) => error = Some(e.to_string()),
                Err(_) => error = Some(format!("no answer within {TIMEOUT:?}")),
            }
            if error.is_some() {
                break;
            }
        }
        if let Some(e) = error {
            report.skip(&check, &format!("the SelfSubjectAccessReview failed: {e}"));
        } else if missing.is_empty() {
            report.ok(&check, "");
        } else {
            let whose = match &need.namespace {
                Some(ns) => format!("a Role in namespace {ns} bound to heapster's service account"),
                None => "the ClusterRole heapster (deploy/kubernetes/rbac.yaml)".to_owned(),
            };
            report.fail(
                &check,
                &format!("not allowed to {} {} (needed for {})", missing.join(", "), need.name(), need.why),
                &format!("add the rule {} to {whose}", need.rule(&missing)),
            );
        }
    }
}

/// The name kube-aggregator serves `kubectl top` and the HPA through.
const METRICS_API_SERVICE: &str = "v1beta1.metrics.k8s.io";

/// The APIService's `Available` condition, and the fix for the reasons kube-aggregator gives.
async fn api_service(cluster: &Cluster, report: &mut Report) {
    let check = format!("APIService {METRICS_API_SERVICE}");
    let answer = match get(cluster, &format!("/apis/apiregistration.k8s.io/v1/apiservices/{METRICS_API_SERVICE}")).await
    {
        Ok(a) => a,
        Err(e) => {
            report.skip(&check, &format!("cannot read it: {e}"));
            return;
        }
    };
    match answer.status {
        200 => {}
        404 => {
            report.skip(
                &check,
                "not registered, so `kubectl top` and the HPA do not read heapster (kubectl apply -f \
                 deploy/kubernetes/apiservice.yaml if they should)",
            );
            return;
        }
        401 | 403 => {
            report.skip(&check, "this account may not read APIServices: run heapster doctor with a cluster admin's kubeconfig (auth=) to check it");
            return;
        }
        s => {
            report.skip(&check, &format!("the API server answered {s}"));
            return;
        }
    }
    let object: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let service = &object["spec"]["service"];
    let backend = match (service["namespace"].as_str(), service["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => "the local API server".into(),
    };
    let available = object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
        .cloned()
        .unwrap_or_default();
    if available["status"] == "True" {
        report.ok(&check, &format!("Available, served by {backend}"));
        return;
    }
    let reason = available["reason"].as_str().unwrap_or("no Available condition yet");
    let message = available["message"].as_str().unwrap_or_default();
    let fix = match reason {
        "FailedDiscoveryCheck" => format!(
            "the API server cannot reach the Service {backend}: check that heapster's pod is Ready and serves https on \
             the Service's targetPort (--tls_cert/--tls_key, deploy/kubernetes/service.yaml), and that the control \
             plane may reach pods on that port (firewall, security group or NetworkPolicy; where the control plane \
             is outside the pod network, run heapster with hostNetwork: true)"
        ),
        "ServiceNotFound" => {
            format!("create the Service {backend} (kubectl apply -f deploy/kubernetes/service.yaml)")
        }
        "MissingEndpoints" | "EndpointsNotFound" => format!(
            "the Service {backend} has no ready pod: kubectl -n kube-system get pods -l k8s-app=heapster, and check \
             that the Service's selector matches heapster's pod labels"
        ),
        _ => format!("see kubectl get apiservice {METRICS_API_SERVICE} -o yaml, and the Service {backend}"),
    };
    report.fail(&check, &format!("not Available: {reason}: {message}"), &fix);
}
