//! Credentials and identity against the local fakes of Google's token endpoint and metadata server
//! (`heapster_testkit::google`), which check every request against the published API.

use super::*;
use crate::SinkMetrics;
use heapster_model::SpecUri;
use heapster_testkit::google::{GoogleFake, MetadataConfig};

const SPECS: &[OptionSpec] = &[PROJECT, CLUSTER_NAME, CLUSTER_LOCATION, ZONE, TIMEOUT];

fn make(options: &str, env: &Env, needs_cluster: bool) -> Result<GoogleApi, ConfigError> {
    let uri: SpecUri = format!("test:?{options}").parse().unwrap();
    let o = Options::new("--sink", &uri, SPECS)?;
    let counters = SinkMetrics::detached().for_kind("test").sink("t");
    let spec = ApiSpec {
        service: "Cloud Monitoring",
        scope: auth::MONITORING_WRITE,
        role: "roles/monitoring.metricWriter",
        needs_cluster,
    };
    GoogleApi::new(&o, env, spec, counters, "Cloud Monitoring at test".into())
}

/// A directory of its own for one test's key files.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heapster-google-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port nothing listens on, as a metadata host outside Google Cloud.
pub(crate) fn nowhere() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn a_key_files_token_is_fetched_at_its_token_uri_cached_and_refreshed_before_it_expires() {
    let fake = GoogleFake::start().await;
    let key = fake.write_service_account_key(&temp_dir("key"), "key-project");
    // No metadata server: the key alone must do.
    let env = Env { credentials_file: Some(key), project_id: None, metadata_host: Some(nowhere()) };
    let api = make("", &env, false).unwrap();
    let t1 = api.token().await.unwrap();
    assert_eq!(api.token().await.unwrap(), t1, "cached");
    assert_eq!((fake.tokens_issued(), fake.requests("token")), (1, 1));
    // Tokens of 2 s are fetched again at half their life.
    fake.set_token_lifetime(Duration::from_secs(2));
    api.tokens.forget().await;
    let t2 = api.token().await.unwrap();
    assert_ne!(t2, t1);
    assert_eq!(api.token().await.unwrap(), t2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t3 = api.token().await.unwrap();
    assert_ne!(t3, t2, "refreshed before it expired");
    assert_eq!(fake.tokens_issued(), 3);
    assert_eq!(api.identity().await.unwrap().project, "key-project");
}

#[tokio::test]
async fn the_metadata_servers_token_and_identity_at_gce_metadata_host() {
    let fake = GoogleFake::start().await;
    let env = Env { credentials_file: None, project_id: None, metadata_host: Some(fake.metadata_host()) };
    let api = make("", &env, true).unwrap();
    api.token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 1);
    let m = MetadataConfig::default();
    let id = api.identity().await.unwrap();
    assert_eq!(
        (id.project.as_str(), id.location.as_str(), id.cluster_name.as_str()),
        (m.project_id.as_str(), m.cluster_location.as_deref().unwrap(), m.cluster_name.as_deref().unwrap())
    );
    // A plain VM (no cluster attributes): the zone is the location, and the cluster name must be given.
    fake.set_metadata(MetadataConfig {
        cluster_location: None,
        cluster_name: None,
        zone: "europe-west4-b".into(),
        ..MetadataConfig::default()
    });
    let id = api_id(&make("cluster_name=vm", &env, true).unwrap()).await;
    assert_eq!((id.location.as_str(), id.cluster_name.as_str()), ("europe-west4-b", "vm"));
    let e = make("", &env, true).unwrap().identity().await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("no cluster name: set cluster_name=")), "{e:?}");
}

async fn api_id(api: &GoogleApi) -> Identity {
    api.identity().await.unwrap().clone()
}

#[tokio::test]
async fn the_project_comes_from_the_option_then_the_environment_then_the_key_then_the_metadata_server() {
    let fake = GoogleFake::start().await;
    let key = fake.write_service_account_key(&temp_dir("order"), "from-key-file");
    let host = Some(fake.metadata_host());
    let full =
        Env { credentials_file: Some(key.clone()), project_id: Some("from-env".into()), metadata_host: host.clone() };
    assert_eq!(api_id(&make("project=from-option", &full, false).unwrap()).await.project, "from-option");
    assert_eq!(api_id(&make("", &full, false).unwrap()).await.project, "from-env");
    let key_only = Env { project_id: None, ..full.clone() };
    assert_eq!(api_id(&make("", &key_only, false).unwrap()).await.project, "from-key-file");
    let metadata_only = Env { credentials_file: None, project_id: None, metadata_host: host };
    assert_eq!(api_id(&make("", &metadata_only, false).unwrap()).await.project, "heapster-test");
    assert_eq!(fake.requests("token"), 0, "finding the project needs no token");
}

#[tokio::test]
async fn no_credentials_and_no_project_are_one_line_each_saying_what_to_do() {
    let env = Env { credentials_file: None, project_id: None, metadata_host: Some(nowhere()) };
    let api = make("", &env, false).unwrap();
    let e = api.token().await.unwrap_err().to_string();
    assert!(e.starts_with("no credentials: GOOGLE_APPLICATION_CREDENTIALS is not set and the metadata server"), "{e}");
    assert!(e.contains("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file") && !e.contains('\n'), "{e}");
    let e = api.identity().await.unwrap_err().to_string();
    assert!(e.contains("no project: set project= or GOOGLE_PROJECT_ID") && !e.contains('\n'), "{e}");
    // What is known at start-up fails at start-up.
    let missing = Env { credentials_file: Some("/nonexistent/key.json".into()), ..env.clone() };
    let e = make("", &missing, false).err().unwrap().to_string();
    assert!(e.contains("GOOGLE_APPLICATION_CREDENTIALS=/nonexistent/key.json: cannot read it"), "{e}");
    let e = make("project=My Project", &env, false).err().unwrap().to_string();
    assert!(e.contains("is not a project ID"), "{e}");
}

#[tokio::test]
async fn a_key_the_token_endpoint_does_not_know_is_refused_with_the_fix() {
    let fake = GoogleFake::start().await;
    // A key of an account the fake never issued: unknown there, as a deleted key's is at Google.
    let issued = fake.write_service_account_key(&temp_dir("unknown"), "p-unknown");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&issued).unwrap()).unwrap();
    json["client_email"] = "deleted@p-unknown.iam.gserviceaccount.com".into();
    let path = issued.with_file_name("deleted-key.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let env = Env { credentials_file: Some(path), project_id: None, metadata_host: Some(nowhere()) };
    let e = make("", &env, false).unwrap().token().await.unwrap_err();
    assert!(matches!(&e, SinkError::Reject(m) if m.contains("create a new key") && !m.contains('\n')), "{e:?}");
}

#[tokio::test]
async fn a_token_the_api_refuses_is_dropped_and_fetched_again_once() {
    // The token endpoint of one fake, the API of another: the API knows none of the tokens (Google's 401 for a
    // revoked or expired token).
    let (issuer, api_server) = (GoogleFake::start().await, GoogleFake::start().await);
    let key = issuer.write_service_account_key(&temp_dir("401"), "p-refused");
    let env = Env { credentials_file: Some(key), project_id: None, metadata_host: Some(nowhere()) };
    let api = make("", &env, false).unwrap();
    let url = format!("{}/v3/projects/p-refused/timeSeries", api_server.url());
    let (verdict, answer) = api.post_json(&url, b"{}").await.unwrap();
    assert_eq!(answer.status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(verdict, Verdict::Retry { cause: "unauthenticated".into() });
    assert_eq!(issuer.tokens_issued(), 2, "the refused token was replaced once, not again and again");
    assert!(
        api.describe(&answer, "p-refused").contains("401 UNAUTHENTICATED"),
        "{}",
        api.describe(&answer, "p-refused")
    );
}
