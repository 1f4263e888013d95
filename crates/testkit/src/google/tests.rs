//! Each rule of the fakes, over real HTTP: a request that breaks it is refused the service's way, one that keeps
//! it is accepted.

use super::*;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use std::time::Duration;

const PROJECT: &str = "heapster-test";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

fn client() -> reqwest::Client {
    heapster_net::client_builder(Duration::from_secs(10)).build().unwrap()
}

/// Claims of a service-account JWT as Google's client libraries make them.
fn claims(fake: &GoogleFake, project: &str, scope: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "iss": format!("heapster-test@{project}.iam.gserviceaccount.com"),
        "scope": scope,
        "aud": fake.token_uri(),
        "iat": now,
        "exp": now + 3600,
    })
}

fn header() -> Value {
    json!({ "alg": "RS256", "typ": "JWT", "kid": super::auth::tests_key_id() })
}

async fn exchange(fake: &GoogleFake, jwt: &str) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .append_pair("assertion", jwt)
        .finish();
    let r = client()
        .post(fake.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A fake with a key written for `PROJECT`, and a token for `scope` got the way a client library gets it.
async fn fake_with_token(scope: &str) -> (GoogleFake, String) {
    let fake = GoogleFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = fake.write_service_account_key(dir.path(), PROJECT);
    let key: Value = serde_json::from_slice(&std::fs::read(key_path).unwrap()).unwrap();
    assert_eq!(key["token_uri"], fake.token_uri());
    assert_eq!(key["type"], "service_account");
    let jwt = fake.shared.key.sign(&header(), &claims(&fake, PROJECT, scope));
    let (status, body) = exchange(&fake, &jwt).await;
    assert_eq!(status, 200, "{body}");
    (fake, body["access_token"].as_str().unwrap().to_string())
}

async fn call(fake: &GoogleFake, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client().request(method.parse().unwrap(), format!("{}{path}", fake.url())).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Now, to the millisecond the requests' timestamps carry, so that stored times compare equal.
fn now() -> chrono::DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 3)
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn container_resource(container_name: &str) -> Value {
    container(PROJECT, container_name)
}

fn container(project: &str, container: &str) -> Value {
    json!({ "type": "k8s_container", "labels": {
        "project_id": project, "location": "us-central1-a", "cluster_name": "test-cluster",
        "namespace_name": "default", "pod_name": "web-0", "container_name": container } })
}

fn gauge(metric: &str, container_name: &str, end: chrono::DateTime<Utc>, value: f64) -> Value {
    json!({
        "metric": { "type": metric, "labels": { "mode": "user" } },
        "resource": container(PROJECT, container_name),
        "metricKind": "GAUGE",
        "valueType": "DOUBLE",
        "points": [{ "interval": { "endTime": ts(end) }, "value": { "doubleValue": value } }],
    })
}

fn cumulative(metric: &str, start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>, value: i64) -> Value {
    json!({
        "metric": { "type": metric },
        "resource": container(PROJECT, "app"),
        "metricKind": "CUMULATIVE",
        "valueType": "INT64",
        "points": [{ "interval": { "startTime": ts(start), "endTime": ts(end) }, "value": { "int64Value": value.to_string() } }],
    })
}

async fn write_series(fake: &GoogleFake, token: &str, series: Vec<Value>) -> (u16, Value) {
    call(fake, token, "POST", &format!("/v3/projects/{PROJECT}/timeSeries"), Some(json!({ "timeSeries": series })))
        .await
}

fn summary(body: &Value) -> &Value {
    let details = body["error"]["details"].as_array().expect("error details");
    details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.monitoring.v3.CreateTimeSeriesSummary")
        .expect("a CreateTimeSeriesSummary detail")
}

#[tokio::test]
async fn token_endpoint_checks_the_jwt_as_google_does() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    assert!(token.starts_with("ya29."));
    let good = claims(&fake, PROJECT, CLOUD_PLATFORM);
    let key = &fake.shared.key;

    // A signature that does not cover the claims sent.
    let jwt = key.sign(&header(), &good);
    let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
    let mut tampered = good.clone();
    tampered["scope"] = json!("https://www.googleapis.com/auth/logging.admin");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, tampered.to_string());
    let (status, body) = exchange(&fake, &parts.join(".")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(body["error_description"], "Invalid JWT Signature.");

    let mut cases = Vec::new();
    let mut c = good.clone();
    c["aud"] = json!("https://oauth2.googleapis.com/token");
    cases.push((c, "invalid_grant", "Failed audience check"));
    let mut c = good.clone();
    c["exp"] = json!(c["iat"].as_i64().unwrap() + 3601);
    cases.push((c, "invalid_grant", "short-lived token"));
    let mut c = good.clone();
    c["iat"] = json!(c["iat"].as_i64().unwrap() - 7200);
    c["exp"] = json!(c["iat"].as_i64().unwrap() + 3600);
    cases.push((c, "invalid_grant", "short-lived token"));
    let mut c = good.clone();
    c["iss"] = json!("someone@else.iam.gserviceaccount.com");
    cases.push((c, "invalid_grant", "account not found"));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("scope");
    cases.push((c, "invalid_scope", "scope"));
    for (claims, error, words) in cases {
        let (status, body) = exchange(&fake, &key.sign(&header(), &claims)).await;
        assert_eq!(status, 400, "{claims}: {body}");
        assert_eq!(body["error"], error, "{claims}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains(words), "{claims}: {body}");
    }
    let (status, body) = exchange(&fake, &key.sign(&json!({ "alg": "HS256" }), &good)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let r = client()
        .post(fake.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&assertion=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    assert_eq!(fake.tokens_issued(), 1);
    assert_eq!(fake.requests("token"), 9);
}

#[tokio::test]
async fn metadata_server_wants_its_header_and_gives_tokens_for_the_scopes_asked() {
    let fake = GoogleFake::start().await;
    let md = |path: &str, flavor: bool| {
        let mut req = client().get(format!("http://{}/computeMetadata/v1/{path}", fake.metadata_host()));
        if flavor {
            req = req.header("Metadata-Flavor", "Google");
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(md("project/project-id", false).await.0, 403);
    assert_eq!(md("project/project-id", true).await, (200, "heapster-test".to_string()));
    assert_eq!(md("instance/zone", true).await, (200, "projects/123456789012/zones/us-central1-a".to_string()));
    assert_eq!(md("instance/attributes/cluster-name", true).await, (200, "test-cluster".to_string()));
    assert_eq!(md("instance/attributes/cluster-location", true).await.1, "us-central1-a");
    assert!(md("instance/hostname", true).await.1.starts_with("gke-test-cluster"));
    fake.set_metadata(MetadataConfig { cluster_name: None, ..MetadataConfig::default() });
    assert_eq!(md("instance/attributes/cluster-name", true).await.0, 404);

    // A token for Logging only is refused by Monitoring, as its scopes do not cover it.
    let (status, body) =
        md("instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/logging.write", true).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let (status, body) =
        write_series(&fake, token, vec![gauge("custom.googleapis.com/x", "app", Utc::now(), 1.0)]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["message"], "Request had insufficient authentication scopes.");
    // The default scopes (cloud-platform) cover it.
    let body: Value = serde_json::from_str(&md("instance/service-accounts/default/token", true).await.1).unwrap();
    let token = body["access_token"].as_str().unwrap();
    let (status, body) =
        write_series(&fake, token, vec![gauge("custom.googleapis.com/x", "app", Utc::now(), 1.0)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(fake.rejected_requests()["insufficient_scopes"], 1);
    let direct = fake.issue_token(&["https://www.googleapis.com/auth/monitoring.write"]);
    let (status, body) =
        write_series(&fake, &direct, vec![gauge("custom.googleapis.com/x", "b", Utc::now(), 1.0)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.tokens_issued(), 3);
}

#[tokio::test]
async fn apis_need_an_unexpired_token_the_fake_issued() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let point = || vec![gauge("custom.googleapis.com/x", "app", Utc::now(), 1.0)];
    let r = client()
        .post(format!("{}/v3/projects/{PROJECT}/timeSeries", fake.url()))
        .json(&json!({ "timeSeries": point() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["code"], 401);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Request is missing required authentication"));
    let (status, body) = write_series(&fake, "ya29.not-issued-here", point()).await;
    assert_eq!((status, body["error"]["status"].as_str()), (401, Some("UNAUTHENTICATED")));

    // Short-lived tokens expire, and a new one works.
    fake.set_token_lifetime(Duration::from_secs(1));
    let jwt = fake.shared.key.sign(&header(), &claims(&fake, PROJECT, CLOUD_PLATFORM));
    let (_, body) = exchange(&fake, &jwt).await;
    assert_eq!(body["expires_in"], 1);
    let short = body["access_token"].as_str().unwrap().to_string();
    let (status, body) = write_series(&fake, &short, point()).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = write_series(&fake, &short, point()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");
    // The first token, issued for an hour, still works; the point is 5 s after the last one of its series.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, body) = write_series(&fake, &token, point()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn denied_projects_and_injected_failures_answer_as_google() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    fake.deny_project(PROJECT);
    let (status, body) =
        write_series(&fake, &token, vec![gauge("custom.googleapis.com/x", "app", Utc::now(), 1.0)]).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        body["error"]["message"],
        "Permission monitoring.timeSeries.create denied (or the resource may not exist)."
    );
    let entry = json!({ "logName": format!("projects/{PROJECT}/logs/test"), "resource": { "type": "global", "labels": { "project_id": PROJECT } }, "textPayload": "x" });
    let (status, body) = call(&fake, &token, "POST", "/v2/entries:write", Some(json!({ "entries": [entry] }))).await;
    assert_eq!((status, body["error"]["status"].as_str()), (403, Some("PERMISSION_DENIED")));
    assert!(fake.log_entries().is_empty());

    let other = "other-project";
    let write_other = || {
        let mut s = gauge("custom.googleapis.com/x", "app", Utc::now(), 1.0);
        s["resource"] = container(other, "app");
        let path = format!("/v3/projects/{other}/timeSeries");
        let (fake, token) = (&fake, &token);
        async move { call(fake, token, "POST", &path, Some(json!({ "timeSeries": [s] }))).await }
    };
    for (status, rpc) in
        [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE"), (403, "PERMISSION_DENIED")]
    {
        fake.fail_next(Service::Monitoring, status, 2);
        for _ in 0..2 {
            let (got, body) = write_other().await;
            assert_eq!((got, body["error"]["status"].as_str()), (status, Some(rpc)), "{body}");
            assert_eq!(body["error"]["code"], status);
        }
    }
    let (got, body) = write_other().await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(fake.requests("monitoring.projects.timeSeries.create"), 10);
    assert_eq!(fake.requests("logging.entries.write"), 1);
    assert_eq!(fake.time_series().len(), 1);
}

#[tokio::test]
async fn time_series_are_parsed_strictly_against_the_discovery_schema() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let now = now();
    let mut unknown = gauge("custom.googleapis.com/x", "app", now, 1.0);
    unknown["metric"]["lables"] = json!({});
    let (status, body) = write_series(&fake, &token, vec![unknown]).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    assert_eq!(
        body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"lables\" at 'time_series[0].metric': Cannot find field."
    );
    assert_eq!(body["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert_eq!(body["error"]["details"][0]["fieldViolations"][0]["field"], "time_series[0].metric");

    let mut bad_enum = gauge("custom.googleapis.com/x", "app", now, 1.0);
    bad_enum["metricKind"] = json!("COUNTER");
    let mut bad_int = cumulative("custom.googleapis.com/c", now - chrono::TimeDelta::minutes(1), now, 1);
    bad_int["points"][0]["value"] = json!({ "int64Value": "12.5" });
    let mut bad_time = gauge("custom.googleapis.com/x", "app", now, 1.0);
    bad_time["points"][0]["interval"]["endTime"] = json!("2026-12-03 10:00:00");
    for (series, field) in [
        (bad_enum, "time_series[0].metric_kind"),
        (bad_int, "time_series[0].points[0].value.int64_value"),
        (bad_time, "time_series[0].points[0].interval.end_time"),
    ] {
        let (status, body) = write_series(&fake, &token, vec![series]).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"][0]["fieldViolations"][0]["field"], field, "{body}");
    }
    assert!(fake.time_series().is_empty());

    // proto3 JSON: int64 as a number, enums by number, proto field names.
    let mut ok = cumulative("custom.googleapis.com/c", now - chrono::TimeDelta::minutes(1), now, 0);
    ok["points"][0]["value"] = json!({ "int64_value": 42 });
    ok["metricKind"] = json!(3);
    let (status, body) = write_series(&fake, &token, vec![ok]).await;
    assert_eq!(status, 200, "{body}");
    let stored = fake.time_series();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value, PointValue::Int64(42));
    assert_eq!(stored[0].metric_kind, "CUMULATIVE");
    assert_eq!(stored[0].resource_labels["container_name"], "app");
    assert_eq!(fake.rejected_requests()["invalid_json"], 4);
}

#[tokio::test]
async fn request_wide_rules_refuse_the_whole_request() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let now = now();
    let many: Vec<Value> = (0..201).map(|i| gauge("custom.googleapis.com/x", &format!("c{i}"), now, 1.0)).collect();
    let (status, body) = write_series(&fake, &token, many).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("A maximum of 200 TimeSeries"));
    let two_hundred: Vec<Value> =
        (0..200).map(|i| gauge("custom.googleapis.com/x", &format!("c{i}"), now, 1.0)).collect();
    let (status, body) = write_series(&fake, &token, two_hundred).await;
    assert_eq!(status, 200, "{body}");

    let later = now + chrono::TimeDelta::seconds(10);
    let mut two_points = gauge("custom.googleapis.com/y", "app", later, 1.0);
    let p = two_points["points"][0].clone();
    two_points["points"].as_array_mut().unwrap().push(p);
    let (status, body) = write_series(&fake, &token, vec![two_points]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Only one point can be written per TimeSeries"));

    let dup = gauge("custom.googleapis.com/y", "app", later, 1.0);
    let (status, body) = write_series(&fake, &token, vec![dup.clone(), dup.clone()]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Duplicate TimeSeries encountered"));
    assert_eq!(body["error"]["details"][0]["fieldViolations"][0]["field"], "time_series[1]");

    for (end, words) in [
        (now - chrono::TimeDelta::hours(25) - chrono::TimeDelta::minutes(1), "more than 25h in the past"),
        (now + chrono::TimeDelta::minutes(6), "more than 5m in the future"),
    ] {
        let (status, body) = write_series(&fake, &token, vec![gauge("custom.googleapis.com/y", "app", end, 1.0)]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(words), "{body}");
    }
    let mut two_values = gauge("custom.googleapis.com/y", "app", later, 1.0);
    two_values["points"][0]["value"]["int64Value"] = json!("1");
    let (status, _) = write_series(&fake, &token, vec![two_values]).await;
    assert_eq!(status, 400);
    // Within 25 h and 5 min: accepted.
    let (status, body) = write_series(
        &fake,
        &token,
        vec![gauge("custom.googleapis.com/y", "app", now - chrono::TimeDelta::hours(24), 1.0)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.time_series().len(), 201);
    let rejected = fake.rejected_requests();
    for reason in [
        "too_many_series",
        "points_per_series",
        "duplicate_series",
        "end_time_too_old",
        "end_time_in_future",
        "point_value",
    ] {
        assert_eq!(rejected.get(reason), Some(&1), "{reason}: {rejected:?}");
    }
}

#[tokio::test]
async fn series_failing_alone_are_a_partial_failure_with_a_summary() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let now = now();
    let t = |secs: i64| now - chrono::TimeDelta::minutes(10) + chrono::TimeDelta::seconds(secs);
    let good = gauge("custom.googleapis.com/g", "a", t(0), 1.5);
    let mut gauge_with_start = gauge("custom.googleapis.com/g", "b", t(0), 1.0);
    gauge_with_start["points"][0]["interval"]["startTime"] = json!(ts(t(-1)));
    let mut missing_label = gauge("custom.googleapis.com/g", "c", t(0), 1.0);
    missing_label["resource"]["labels"].as_object_mut().unwrap().remove("cluster_name");
    let mut extra_label = gauge("custom.googleapis.com/g", "d", t(0), 1.0);
    extra_label["resource"]["labels"]["zone"] = json!("x");
    let mut unknown_type = gauge("custom.googleapis.com/g", "e", t(0), 1.0);
    unknown_type["resource"]["type"] = json!("k8s_thing");
    let reserved = gauge("kubernetes.io/container/cpu/core_usage_time", "f", t(0), 1.0);
    let mut wrong_project = gauge("custom.googleapis.com/g", "g", t(0), 1.0);
    wrong_project["resource"]["labels"]["project_id"] = json!("elsewhere");
    let cumulative_no_start = {
        let mut c = cumulative("custom.googleapis.com/c", t(0), t(0), 1);
        c["points"][0]["interval"].as_object_mut().unwrap().remove("startTime");
        c
    };
    let series = vec![
        good,
        gauge_with_start,
        missing_label,
        extra_label,
        unknown_type,
        reserved,
        wrong_project,
        cumulative_no_start,
    ];
    let (status, body) = write_series(&fake, &token, series).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("One or more TimeSeries could not be written: "), "{message}");
    assert!(message.contains("Missing labels: (cluster_name).: timeSeries[2]"), "{message}");
    let s = summary(&body);
    assert_eq!((s["totalPointCount"].as_u64(), s["successPointCount"].as_u64()), (Some(8), Some(1)));
    let failed: u64 = s["errors"].as_array().unwrap().iter().map(|e| e["pointCount"].as_u64().unwrap()).sum();
    assert_eq!(failed, 7);
    assert!(s["errors"].as_array().unwrap().iter().all(|e| e["status"]["code"] == 3));
    let stored = fake.time_series();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].value.clone(), stored[0].start, stored[0].end), (PointValue::Double(1.5), t(0), t(0)));
    let rejected = fake.rejected_series();
    for (reason, n) in [
        ("gauge_interval", 1),
        ("resource_labels", 2),
        ("resource_type", 1),
        ("reserved_metric_type", 1),
        ("resource_project", 1),
        ("non_gauge_interval", 1),
    ] {
        assert_eq!(rejected.get(reason), Some(&n), "{reason}: {rejected:?}");
    }

    // Allowed reserved prefixes: the same Google-owned type is taken.
    fake.allow_reserved_prefixes(true);
    let reserved = gauge("kubernetes.io/container/cpu/core_usage_time", "f", t(0), 1.0);
    let (status, body) = write_series(&fake, &token, vec![reserved]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn points_of_a_series_are_ordered_spaced_and_cumulative_starts_fixed() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let base = now() - chrono::TimeDelta::minutes(30);
    let t = |secs: i64| base + chrono::TimeDelta::seconds(secs);
    let g = |secs, v| gauge("custom.googleapis.com/g", "app", t(secs), v);
    let write = |s: Value| write_series(&fake, &token, vec![s]);
    assert_eq!(write(g(10, 1.0)).await.0, 200);
    let (status, body) = write(g(10, 2.0)).await;
    assert_eq!(status, 400);
    assert!(
        summary(&body)["errors"][0]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Points must be written in order")
    );
    assert_eq!(write(g(5, 2.0)).await.0, 400);
    let (status, body) = write(g(14, 2.0)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("more frequently than the maximum sampling period"));
    assert_eq!(write(g(15, 2.0)).await.0, 200);
    fake.set_min_point_spacing(Duration::from_secs(10));
    assert_eq!(write(g(24, 2.0)).await.0, 400, "9 s after the last point");
    assert_eq!(write(g(25, 2.0)).await.0, 200);
    fake.set_min_point_spacing(Duration::from_secs(5));

    let c = |start, end, v| cumulative("custom.googleapis.com/c", t(start), t(end), v);
    assert_eq!(write(c(0, 60, 10)).await.0, 200);
    assert_eq!(write(c(0, 120, 20)).await.0, 200);
    let (status, body) = write(c(30, 180, 5)).await;
    assert_eq!(status, 400, "start moved inside the series: {body}");
    assert_eq!(write(c(121, 180, 5)).await.0, 200, "a reset starts after the last end");
    assert_eq!(write(c(121, 240, 9)).await.0, 200);
    let (status, _) = write(c(240, 240, 9)).await;
    assert_eq!(status, 400, "start = end is not an interval");

    // Kind and value type must match the descriptor, here auto-created as CUMULATIVE INT64.
    let mut as_gauge = c(121, 300, 10);
    as_gauge["metricKind"] = json!("GAUGE");
    as_gauge["points"][0]["interval"] = json!({ "endTime": ts(t(300)) });
    let (status, body) = write(as_gauge).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Metric kind for metric custom.googleapis.com/c must be CUMULATIVE, but is GAUGE")
    );
    let mut as_double = c(121, 300, 10);
    as_double["valueType"] = json!("DOUBLE");
    as_double["points"][0]["value"] = json!({ "doubleValue": 10.0 });
    let (status, body) = write(as_double).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Value type for metric custom.googleapis.com/c must be INT64, but is DOUBLE")
    );

    let points: Vec<(i64, PointValue)> = fake
        .time_series()
        .iter()
        .filter(|p| p.metric_type == "custom.googleapis.com/c")
        .map(|p| ((p.end - base).num_seconds(), p.value.clone()))
        .collect();
    assert_eq!(
        points,
        vec![
            (60, PointValue::Int64(10)),
            (120, PointValue::Int64(20)),
            (180, PointValue::Int64(5)),
            (240, PointValue::Int64(9))
        ]
    );
    let r = fake.rejected_series();
    assert_eq!((r["out_of_order"], r["too_frequent"], r["cumulative_start"]), (2, 2, 1));
    assert_eq!((r["metric_kind"], r["value_type"]), (1, 1));
}

#[tokio::test]
async fn metric_descriptors_are_validated_and_govern_writes() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let path = format!("/v3/projects/{PROJECT}/metricDescriptors");
    let descriptor = json!({
        "type": "custom.googleapis.com/heapster/cpu/usage",
        "metricKind": "CUMULATIVE",
        "valueType": "INT64",
        "unit": "ns",
        "description": "CPU usage",
        "labels": [{ "key": "mode", "valueType": "STRING" }],
    });
    let (status, body) = call(&fake, &token, "POST", &path, Some(descriptor.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], format!("projects/{PROJECT}/metricDescriptors/custom.googleapis.com/heapster/cpu/usage"));
    let (status, got) =
        call(&fake, &token, "GET", &format!("{path}/custom.googleapis.com/heapster/cpu/usage"), None).await;
    assert_eq!((status, &got), (200, &body));
    let (status, list) = call(
        &fake,
        &token,
        "GET",
        &format!("{path}?filter=metric.type%20%3D%20starts_with(%22custom.googleapis.com%2Fheapster%2F%22)"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["metricDescriptors"].as_array().unwrap().len(), 1);
    let (status, list) = call(
        &fake,
        &token,
        "GET",
        &format!("{path}?filter=metric.type%20%3D%20%22custom.googleapis.com%2Fnone%22"),
        None,
    )
    .await;
    assert_eq!((status, list), (200, json!({})));
    let (status, body) = call(&fake, &token, "GET", &format!("{path}/custom.googleapis.com/none"), None).await;
    assert_eq!((status, body["error"]["status"].as_str()), (404, Some("NOT_FOUND")));

    let bad = |f: &dyn Fn(&mut Value)| {
        let mut d = descriptor.clone();
        d["type"] = json!("custom.googleapis.com/other");
        f(&mut d);
        d
    };
    for d in [
        bad(&|d| d["labels"][0]["key"] = json!("9mode")),
        bad(&|d| d["labels"] = json!([{ "key": "a" }, { "key": "a" }])),
        bad(&|d| d["unit"] = json!("nanoseconds")),
        bad(&|d| {
            d.as_object_mut().unwrap().remove("metricKind");
        }),
        bad(&|d| d["valueType"] = json!("BOOL")),
        bad(&|d| d["type"] = json!("kubernetes.io/container/cpu")),
        bad(&|d| d["labels"][0]["valueType"] = json!("DOUBLE")),
        bad(&|d| d["metricKind"] = json!("METRIC_KIND_UNSPECIFIED")),
    ] {
        let (status, body) = call(&fake, &token, "POST", &path, Some(d.clone())).await;
        assert_eq!(status, 400, "{d}: {body}");
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    }
    for unit in ["By", "kBy", "s", "ms", "1", "%", "{cores}", "By/s", "10^2.%", "MiBy", "s{CPU}", "k{page_views}/d"] {
        let d = bad(&|d| d["unit"] = json!(unit));
        let (status, body) = call(&fake, &token, "POST", &path, Some(d)).await;
        assert_eq!(status, 200, "{unit}: {body}");
    }

    // A label the explicit descriptor does not have is refused; a known one is taken.
    let base = now() - chrono::TimeDelta::minutes(5);
    let mut point =
        cumulative("custom.googleapis.com/heapster/cpu/usage", base, base + chrono::TimeDelta::seconds(60), 5);
    point["metric"]["labels"] = json!({ "node": "n1" });
    let (status, body) = write_series(&fake, &token, vec![point.clone()]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Unrecognized metric label key \"node\""));
    point["metric"]["labels"] = json!({ "mode": "u".repeat(1025) });
    let (status, body) = write_series(&fake, &token, vec![point.clone()]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("too long"), "{body}");
    point["metric"]["labels"] = json!({ "mode": "u".repeat(1024) });
    let (status, body) = write_series(&fake, &token, vec![point]).await;
    assert_eq!(status, 200, "{body}");
    // Auto-created descriptors take their labels from the series.
    let (status, _) = write_series(&fake, &token, vec![gauge("custom.googleapis.com/auto", "app", base, 2.0)]).await;
    assert_eq!(status, 200);
    let (_, auto) = call(&fake, &token, "GET", &format!("{path}/custom.googleapis.com/auto"), None).await;
    assert_eq!((auto["metricKind"].as_str(), auto["valueType"].as_str()), (Some("GAUGE"), Some("DOUBLE")));
    assert_eq!(auto["labels"], json!([{ "key": "mode" }]));
    // cpu/usage, "other" (replaced by each unit test), and the auto-created one.
    assert_eq!(fake.metric_descriptors(PROJECT).len(), 3);
}

fn event_entry(insert_id: &str, timestamp: chrono::DateTime<Utc>) -> Value {
    json!({
        "logName": format!("projects/{PROJECT}/logs/kubernetes.io%2Fevents"),
        "resource": { "type": "k8s_pod", "labels": {
            "project_id": PROJECT, "location": "us-central1-a", "cluster_name": "test-cluster",
            "namespace_name": "default", "pod_name": "web-0" } },
        "timestamp": ts(timestamp),
        "severity": "WARNING",
        "insertId": insert_id,
        "jsonPayload": { "reason": "BackOff", "count": 3 },
        "labels": { "k": "v" },
    })
}

async fn write_entries(fake: &GoogleFake, token: &str, request: Value) -> (u16, Value) {
    call(fake, token, "POST", "/v2/entries:write", Some(request)).await
}

#[tokio::test]
async fn log_entries_are_validated_stored_once_and_limited_in_size() {
    let (fake, token) = fake_with_token("https://www.googleapis.com/auth/logging.write").await;
    let now = now();
    let (status, body) =
        write_entries(&fake, &token, json!({ "entries": [event_entry("a", now), event_entry("b", now)] })).await;
    assert_eq!((status, &body), (200, &json!({})));
    // The resend is de-duplicated by (project, insertId, timestamp); a new timestamp is a new entry.
    let (status, _) = write_entries(
        &fake,
        &token,
        json!({ "entries": [event_entry("a", now), event_entry("a", now + chrono::TimeDelta::seconds(1))] }),
    )
    .await;
    assert_eq!(status, 200);
    let stored = fake.log_entries();
    assert_eq!(stored.len(), 3);
    assert_eq!((fake.log_entries_received(), fake.log_duplicates()), (4, 1));
    assert_eq!(stored[0].log_id, "kubernetes.io/events");
    assert_eq!((stored[0].severity.as_str(), stored[0].resource_type.as_str()), ("WARNING", "k8s_pod"));
    assert_eq!(stored[0].json_payload, Some(json!({ "reason": "BackOff", "count": 3 })));
    assert_eq!(stored[0].timestamp, chrono::DateTime::parse_from_rfc3339(&ts(now)).unwrap().to_utc());

    // Defaults from the request; severity by number; operation.
    let mut bare = event_entry("c", now);
    let obj = bare.as_object_mut().unwrap();
    let (log_name, resource) = (obj.remove("logName").unwrap(), obj.remove("resource").unwrap());
    obj.insert("severity".into(), json!(200));
    obj.insert("operation".into(), json!({ "id": "uid-1", "producer": "heapster", "first": true }));
    let (status, body) = write_entries(&fake, &token, json!({ "logName": log_name, "resource": resource, "labels": { "k": "default", "cluster": "c" }, "entries": [bare] })).await;
    assert_eq!(status, 200, "{body}");
    let last = fake.log_entries().pop().unwrap();
    assert_eq!(last.severity, "INFO");
    assert_eq!(last.labels["k"], "v");
    assert_eq!(last.labels["cluster"], "c");
    assert_eq!(last.operation.unwrap()["producer"], "heapster");

    // Whole-request refusals: unknown field, two payloads, bad enum, too large a body.
    let mut unknown = event_entry("d", now);
    unknown["insert_idd"] = json!("x");
    let mut two_payloads = event_entry("d", now);
    two_payloads["textPayload"] = json!("x");
    let mut bad_severity = event_entry("d", now);
    bad_severity["severity"] = json!("WARN");
    for e in [unknown, two_payloads, bad_severity] {
        let (status, body) = write_entries(&fake, &token, json!({ "entries": [e] })).await;
        assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{body}");
    }
    let huge = "x".repeat(100 << 10);
    let entries: Vec<Value> = (0..110)
        .map(|i| {
            let mut e = event_entry(&format!("big{i}"), now);
            e["jsonPayload"]["message"] = json!(huge);
            e
        })
        .collect();
    let (status, body) = write_entries(&fake, &token, json!({ "entries": entries })).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "Request payload size exceeds the limit: 10485760 bytes.");

    // Entry checks: without partialSuccess nothing is written, with it the good entries are.
    let before = fake.log_entries().len();
    let mut too_big = event_entry("e", now);
    too_big["jsonPayload"]["message"] = json!("x".repeat(257 << 10));
    let mut slash = event_entry("f", now);
    slash["logName"] = json!(format!("projects/{PROJECT}/logs/kubernetes.io/events"));
    let mut no_cluster = event_entry("g", now);
    no_cluster["resource"]["labels"].as_object_mut().unwrap().remove("cluster_name");
    let mut future = event_entry("h", now + chrono::TimeDelta::hours(25));
    future["severity"] = json!("INFO");
    let batch = vec![event_entry("ok", now), too_big, slash, no_cluster, future];
    let (status, body) = write_entries(&fake, &token, json!({ "entries": batch.clone() })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Log entry with size 257."), "{body}");
    let errors = &body["error"]["details"][0];
    assert_eq!(errors["@type"], "type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors");
    let failed: Vec<&String> = errors["logEntryErrors"].as_object().unwrap().keys().collect();
    assert_eq!(failed, ["1", "2", "3", "4"]);
    assert_eq!(fake.log_entries().len(), before);
    let (status, _) = write_entries(&fake, &token, json!({ "entries": batch, "partialSuccess": true })).await;
    assert_eq!(status, 400);
    assert_eq!(fake.log_entries().len(), before + 1);
    assert_eq!(fake.log_entries().pop().unwrap().insert_id, "ok");

    // dryRun checks and stores nothing.
    let (status, _) =
        write_entries(&fake, &token, json!({ "entries": [event_entry("dry", now)], "dryRun": true })).await;
    assert_eq!(status, 200);
    assert_eq!(fake.log_entries().len(), before + 1);
    let rejected = fake.rejected_requests();
    for reason in ["entry_too_large", "log_name", "resource_labels", "timestamp"] {
        assert_eq!(rejected.get(reason), Some(&2), "{reason}: {rejected:?}");
    }
}

#[tokio::test]
async fn gzip_bodies_are_taken() {
    use std::io::Write as _;
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let body = json!({ "entries": [event_entry("gz", Utc::now())] }).to_string();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.as_bytes()).unwrap();
    let r = client()
        .post(format!("{}/v2/entries:write", fake.url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(enc.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.log_entries()[0].insert_id, "gz");
}

#[test]
fn runs_outside_a_runtime_and_stops_when_dropped() {
    let fake = GoogleFake::start_blocking();
    let host = fake.metadata_host();
    let get = |host: &str| std::net::TcpStream::connect(host).is_ok();
    assert!(get(&host));
    let (status, _) = crate::http("GET", &format!("{}/computeMetadata/v1/project/project-id", fake.url()), None);
    assert_eq!(status, 403, "no Metadata-Flavor header");
    drop(fake);
    assert!(!get(&host), "the port is closed once the fake is dropped");
}

#[tokio::test]
async fn padded_jwts_and_metadata_proxies() {
    let fake = GoogleFake::start().await;
    let dir = tempfile::tempdir().unwrap();
    fake.write_service_account_key(dir.path(), PROJECT);
    // gcp_auth pads its base64url; Google takes it.
    let jwt = fake.shared.key.sign_with(
        &base64::engine::general_purpose::URL_SAFE,
        &header(),
        &claims(&fake, PROJECT, CLOUD_PLATFORM),
    );
    assert!(jwt.contains('='));
    let (status, body) = exchange(&fake, &jwt).await;
    assert_eq!(status, 200, "{body}");
    // The metadata server refuses requests that came through a proxy.
    let r = client()
        .get(format!("{}/computeMetadata/v1/project/project-id", fake.url()))
        .header("Metadata-Flavor", "Google")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn distributions_are_checked_as_documented() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let end = now() - chrono::TimeDelta::minutes(1);
    let series = |container: &str, d: Value| {
        json!({
            "metric": { "type": "custom.googleapis.com/latency" },
            "resource": container_resource(container),
            "points": [{ "interval": { "endTime": ts(end) }, "value": { "distributionValue": d } }],
        })
    };
    let good = json!({
        "count": "3", "mean": 2.0, "sumOfSquaredDeviation": 2.0,
        "bucketOptions": { "explicitBuckets": { "bounds": [1.0, 2.0, 4.0] } },
        "bucketCounts": ["0", "1", "1", "1"],
    });
    let (status, body) = write_series(&fake, &token, vec![series("a", good.clone())]).await;
    assert_eq!(status, 200, "{body}");
    assert!(matches!(fake.time_series()[0].value, PointValue::Distribution(_)));
    assert_eq!(fake.time_series()[0].value_type, "DISTRIBUTION");
    let mut bad_sum = good.clone();
    bad_sum["bucketCounts"] = json!(["0", "1", "1", "2"]);
    let mut no_options = good.clone();
    no_options.as_object_mut().unwrap().remove("bucketOptions");
    let mut unordered = good.clone();
    unordered["bucketOptions"]["explicitBuckets"]["bounds"] = json!([2.0, 1.0]);
    let mut too_many_counts = good.clone();
    too_many_counts["bucketCounts"] = json!(["0", "1", "1", "1", "0"]);
    for d in [bad_sum, no_options, unordered, too_many_counts] {
        let (status, body) = write_series(&fake, &token, vec![series("b", d.clone())]).await;
        assert_eq!(status, 400, "{d}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("distributionValue"), "{body}");
    }
    assert_eq!(fake.rejected_requests()["distribution"], 4);
}

#[tokio::test]
async fn log_payloads_and_times_are_checked() {
    let (fake, token) = fake_with_token(CLOUD_PLATFORM).await;
    let now = now();
    let mut untyped = event_entry("p1", now);
    untyped.as_object_mut().unwrap().remove("jsonPayload");
    untyped["protoPayload"] = json!({ "methodName": "x" });
    let (status, body) = write_entries(&fake, &token, json!({ "entries": [untyped] })).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("Any JSON doesn't have '@type'"), "{body}");
    let mut user_type = event_entry("p2", now);
    user_type.as_object_mut().unwrap().remove("jsonPayload");
    user_type["protoPayload"] = json!({ "@type": "type.googleapis.com/my.Event", "x": 1 });
    let mut audit = event_entry("p3", now);
    audit.as_object_mut().unwrap().remove("jsonPayload");
    audit["protoPayload"] = json!({ "@type": "type.googleapis.com/google.cloud.audit.AuditLog", "methodName": "x" });
    let old = event_entry("p4", now - chrono::TimeDelta::days(31));
    let text = {
        let mut e = event_entry("p5", now);
        e.as_object_mut().unwrap().remove("jsonPayload");
        e["textPayload"] = json!("hello");
        e
    };
    let no_time = {
        let mut e = event_entry("p6", now);
        e.as_object_mut().unwrap().remove("timestamp");
        e
    };
    let (status, body) = write_entries(
        &fake,
        &token,
        json!({ "entries": [user_type, audit, old, text, no_time], "partialSuccess": true }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let failed: Vec<&String> = body["error"]["details"][0]["logEntryErrors"].as_object().unwrap().keys().collect();
    assert_eq!(failed, ["0", "2"]);
    let stored = fake.log_entries();
    let ids: Vec<&str> = stored.iter().map(|e| e.insert_id.as_str()).collect();
    assert_eq!(ids, ["p3", "p5", "p6"]);
    assert_eq!(stored[1].text_payload.as_deref(), Some("hello"));
    assert!(stored[2].timestamp >= now, "a missing timestamp is the time of receipt");
    assert_eq!(stored[0].severity, "WARNING");
}
