//! Random paths and query strings never produce a 5xx or a panic.

use super::*;
use proptest::prelude::*;

/// Route skeletons with holes for random segments, so the fuzzer reaches every handler, not only the fallback.
const TEMPLATES: &[&str] = &[
    "/api/v1/model/metrics/{}",
    "/api/v1/model/nodes/{}/metrics/{}",
    "/api/v1/model/nodes/{}/pods/",
    "/api/v1/model/nodes/{}/freecontainers/{}/metrics/{}",
    "/api/v1/model/namespaces/{}/metrics/{}",
    "/api/v1/model/namespaces/{}/pods/{}/metrics/{}",
    "/api/v1/model/namespaces/{}/pods/{}/containers/{}/metrics/{}",
    "/api/v1/model/namespaces/{}/pod-list/{}/metrics/{}",
    "/api/v1/model/namespaces/{}/pods/{}/containers/",
    "/api/v1/model/{}",
    "/{}",
];

/// A path segment: known names, percent-escapes (valid or not), separators and anything else.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("n1".to_owned()),
        Just("ns1".to_owned()),
        Just("p1".to_owned()),
        Just("p1,p2,,".to_owned()),
        Just("c1".to_owned()),
        Just("memory/usage".to_owned()),
        Just("filesystem/usage".to_owned()),
        Just("system.slice%2Fdocker".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%".to_owned()),
        Just("..".to_owned()),
        "[a-zA-Z0-9_.:,~%/-]{0,12}",
        "[\\PC]{0,6}".prop_map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>()),
    ]
}

/// A query value: valid and invalid times and labels, raw junk.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2024-01-01T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("0000-01-01T00:00:00Z".to_owned()),
        Just("2024-01-01T00:00:00+14:00".to_owned()),
        Just("2024-01-01T00:00:00 01:00".to_owned()),
        Just("resource_id:/dev/sda1".to_owned()),
        Just("a:b,c".to_owned()),
        Just("%FF".to_owned()),
        "[a-zA-Z0-9:,+ %=&/-]{0,20}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec((prop_oneof![Just("start"), Just("end"), Just("labels"), Just("x")], query_value()), 0..4)
        .prop_map(|kv| {
            let q: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={}", v.replace(['#', ' '], "+"))).collect();
            q.join("&")
        })
}

fn fill(template: &str, segments: &[String]) -> String {
    let mut out = String::new();
    let mut parts = template.split("{}");
    out.push_str(parts.next().unwrap_or(""));
    for (i, rest) in parts.enumerate() {
        out.push_str(segments.get(i).map(String::as_str).unwrap_or("x"));
        out.push_str(rest);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_input_gives_a_server_error(
        template in proptest::sample::select(TEMPLATES),
        segments in proptest::collection::vec(segment(), 4),
        q in query(),
        trailing_slash in any::<bool>(),
    ) {
        let mut uri = fill(template, &segments);
        if trailing_slash {
            uri.push('/');
        }
        if !q.is_empty() {
            uri = format!("{uri}?{q}");
        }
        // Not every generated string is a valid URI; those never reach the server.
        prop_assume!(uri.parse::<axum::http::Uri>().is_ok());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let st = STATE.with(Clone::clone);
        let r = rt.block_on(get(&st, &uri));
        prop_assert!(!r.status.is_server_error(), "{uri}: {} {}", r.status, r.body);
    }
}

thread_local! {
    static STATE: ApiState = state();
}
