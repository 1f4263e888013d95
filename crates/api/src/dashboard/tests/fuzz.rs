//! No query string on the dashboard's endpoints gives a server error; every refusal is a 400 with a reason.

use super::state;
use crate::ApiState;
use crate::tests::get;
use axum::http::StatusCode;
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/api/v1/dashboard/overview",
    "/api/v1/dashboard/nodes",
    "/api/v1/dashboard/namespaces",
    "/api/v1/dashboard/pods",
    "/api/v1/dashboard/containers",
    "/api/v1/dashboard/series",
    "/api/v1/dashboard/set",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("page".to_owned()),
        Just("per_page".to_owned()),
        Just("q".to_owned()),
        Just("sort".to_owned()),
        Just("order".to_owned()),
        Just("namespace".to_owned()),
        Just("node".to_owned()),
        Just("pod".to_owned()),
        Just("key".to_owned()),
        "[a-z_%]{0,6}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_owned()),
        Just("0".to_owned()),
        Just("200".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-3".to_owned()),
        Just("cpu".to_owned()),
        Just("memory".to_owned()),
        Just("desc".to_owned()),
        Just("cluster".to_owned()),
        Just("node:n1".to_owned()),
        Just("namespace:ns-a/pod:web-1".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%".to_owned()),
        Just("ns-a".to_owned()),
        "[a-zA-Z0-9:,+ %=&/.-]{0,24}",
        "[\\PC]{0,6}".prop_map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>()),
        (1usize..400).prop_map(|n| "w".repeat(n)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec((name(), value(), any::<bool>()), 0..5).prop_map(|kv| {
        let q: Vec<String> = kv
            .into_iter()
            .map(|(k, v, bare)| if bare && v.is_empty() { k } else { format!("{k}={}", v.replace(['#', ' '], "+")) })
            .collect();
        q.join("&")
    })
}

thread_local! {
    static STATE: ApiState = state();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_query_string_gives_a_server_error(path in proptest::sample::select(PATHS), q in query()) {
        let uri = if q.is_empty() { path.to_owned() } else { format!("{path}?{q}") };
        prop_assume!(uri.parse::<axum::http::Uri>().is_ok());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let st = STATE.with(Clone::clone);
        let r = rt.block_on(get(&st, &uri));
        prop_assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND].contains(&r.status),
            "{uri}: {} {}", r.status, r.body
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| TestCaseError::fail(format!("{uri}: {e}")))?;
        if r.status != StatusCode::OK {
            let reason = v["error"].as_str().unwrap_or("");
            prop_assert!(reason.len() > 5 && !reason.contains('\n'), "{uri}: no one-line reason in {}", r.body);
        } else if let Some(items) = v.get("items") {
            let per_page = v["perPage"].as_u64().unwrap_or(0) as usize;
            prop_assert!(items.as_array().is_some_and(|a| a.len() <= per_page), "{uri}: more rows than perPage");
        }
    }
}
