//! The dashboard in a real browser: heapster in standalone mode serves `/`, headless Chromium (Debian's) loads it,
//! and the test checks that every chart was drawn with the points the API holds (the page writes what it drew into
//! data attributes, read back from Chromium's DOM dump) and that a screenshot shows the charts' colours. The
//! screenshot is kept as `target/artifacts/dashboard.png`.
//!
//! The same against a simulated Kubernetes cluster (pods, namespaces, paging and search), with a second screenshot,
//! `target/artifacts/dashboard-cluster.png`.
//!
//! Needs `chromium` on the PATH (scripts/test installs it); fails saying so when it is missing.

mod common;

use common::{Heapster, points};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

const HOST: &str = "dash-test";

/// Headless Chromium with a fresh profile per run, so no state leaks between runs or from a user's profile.
struct Chromium {
    binary: PathBuf,
}

impl Chromium {
    /// Finds `chromium` on the PATH, or fails the test with what to install.
    fn find() -> Chromium {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary = std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file());
        let binary = binary.unwrap_or_else(|| {
            panic!(
                "chromium is not on the PATH: the dashboard's browser test needs Debian's chromium \
                 (scripts/test installs it; by hand: apt-get install chromium)"
            )
        });
        Chromium { binary }
    }

    /// Runs Chromium on `url` with `extra` flags, for at most two minutes; returns its standard output.
    fn run(&self, url: &str, extra: &[&str]) -> String {
        let profile = std::env::temp_dir().join(format!(
            "heapster-dashboard-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
        ));
        let out_path = profile.with_extension("out");
        let err_path = profile.with_extension("err");
        let mut child = Command::new(&self.binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,1000",
                &format!("--user-data-dir={}", profile.display()),
            ])
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let until = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&profile);
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        let tail: String =
            err.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        match status {
            Some(s) if s.success() => out,
            Some(s) => panic!("chromium {extra:?} {url} exited with {s}:\n{tail}"),
            None => panic!("chromium {extra:?} {url} still running after 2 minutes:\n{tail}"),
        }
    }

    /// The DOM after the page ran for `budget_ms` of virtual time: timers fire as fast as the page lets them, so
    /// several refreshes happen in about a second of real time.
    fn dump_dom(&self, url: &str, budget_ms: u32) -> String {
        self.run(url, &[&format!("--virtual-time-budget={budget_ms}"), "--dump-dom"])
    }

    fn screenshot(&self, url: &str, path: &Path, budget_ms: u32) {
        let _ = std::fs::remove_file(path);
        self.run(url, &[&format!("--virtual-time-budget={budget_ms}"), &format!("--screenshot={}", path.display())]);
        assert!(path.is_file(), "chromium wrote no screenshot at {}", path.display());
    }
}

/// Attributes of every `<tag ...>` whose class list contains `class`, in document order.
fn elements(dom: &str, tag: &str, class: &str) -> Vec<HashMap<String, String>> {
    let open = format!("<{tag} ");
    let mut out = Vec::new();
    for part in dom.split(&open).skip(1) {
        let attrs = attributes(part.split('>').next().unwrap_or(""));
        if attrs.get("class").is_some_and(|c| c.split(' ').any(|c| c == class)) {
            out.push(attrs);
        }
    }
    out
}

/// `name="value"` pairs of one start tag (Chromium always quotes with `"` and escapes `"` and `&` inside).
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = tag.trim();
    while !rest.is_empty() {
        let end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let name = rest[..end].to_owned();
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("=\"") {
            let close = r.find('"').unwrap_or(r.len());
            let value =
                r[..close].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            out.insert(name, value);
            rest = r.get(close + 1..).unwrap_or("");
        } else {
            out.insert(name, String::new());
        }
        rest = rest.trim_start();
    }
    out
}

/// The `<body>` tag's attributes.
fn body(dom: &str) -> HashMap<String, String> {
    attributes(dom.split("<body").nth(1).and_then(|b| b.split('>').next()).unwrap_or(""))
}

/// The `<body>` of a page that refreshed at least once without an error, caught or not.
fn ready(dom: &str) -> HashMap<String, String> {
    let b = body(dom);
    assert_eq!(b.get("data-ready").map(String::as_str), Some("1"), "the page never finished a refresh: {b:?}");
    assert!(!b.contains_key("data-error"), "the page reported an error: {b:?}");
    assert!(!b.contains_key("data-js-error"), "a script failed: {b:?}");
    b
}

/// `data-key`s of the table rows, in order.
fn row_keys(dom: &str) -> Vec<String> {
    dom.split("<tr data-key=\"").skip(1).map(|r| r.split('"').next().unwrap().replace("&amp;", "&")).collect()
}

fn num<T: std::str::FromStr>(attrs: &HashMap<String, String>, name: &str) -> T {
    let raw = attrs.get(name).unwrap_or_else(|| panic!("no {name} in {attrs:?}"));
    raw.parse().unwrap_or_else(|_| panic!("{name}={raw:?} is not a number in {attrs:?}"))
}

/// Checks one chart element against the API's points of its first series: as many points up to the chart's
/// newest, the same newest value, and (where `inked`) its line's colour on the canvas.
fn check_chart(chart: &HashMap<String, String>, api: &BTreeMap<i64, f64>, inked: bool) {
    let name = &chart["data-chart"];
    let drawn: usize = num(chart, "data-points");
    assert!(drawn >= 3, "chart {name} drew {drawn} points: {chart:?}");
    let last_ts: i64 = num(chart, "data-last-ts");
    let last_value: f64 = num(chart, "data-last-value");
    let upto = api.range(..=last_ts).count();
    assert_eq!(drawn, upto, "chart {name}: drew {drawn} points, the API holds {upto} up to {last_ts}: {chart:?}");
    // The same f64 both ways, up to serde_json's default float parsing, which may miss by an ulp.
    let api_value = *api.get(&last_ts).unwrap_or_else(|| panic!("chart {name}: the API has no point at {last_ts}"));
    assert!(
        (api_value - last_value).abs() <= 1e-12 * api_value.abs().max(1.0),
        "chart {name}: newest point {last_value} differs from the API's {api_value}"
    );
    if inked {
        let ink: usize = num(chart, "data-ink");
        assert!(ink > 50, "chart {name}: {ink} pixels of its line's colour: an empty frame? {chart:?}");
    }
}

/// Where the screenshot is kept: `target/artifacts/` beside the binary's `target/debug/`.
fn artifacts() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_heapster"));
    let dir = bin.parent().and_then(Path::parent).unwrap().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pixels of a PNG close to `rgb`, and the number of distinct colours.
fn png_stats(path: &Path, rgb: &[[u8; 3]]) -> (u32, u32, Vec<usize>, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "unexpected PNG depth");
    let mut near = vec![0usize; rgb.len()];
    let mut colours = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(channels) {
        let (r, g, b) = (px[0], px[1], px[2]);
        colours.insert((r, g, b));
        for (i, c) in rgb.iter().enumerate() {
            if r.abs_diff(c[0]) as u32 + g.abs_diff(c[1]) as u32 + b.abs_diff(c[2]) as u32 <= 40 {
                near[i] += 1;
            }
        }
    }
    (info.width, info.height, near, colours.len())
}

#[test]
fn the_dashboard_draws_the_stores_data_in_chromium() {
    let chromium = Chromium::find();
    // Typed values: the charts are compared with the model API's points to the last bit.
    let h =
        Heapster::start(&["--metric_resolution=2s", "--api_typed_values", &format!("--source=local?hostname={HOST}")]);
    // CPU rates need two scrapes: wait for a few points of them.
    h.wait_for("/api/v1/model/metrics/cpu/usage_rate", Duration::from_secs(90), |v| {
        v["metrics"].as_array().is_some_and(|m| m.len() >= 4)
    });
    let url = |fragment: &str| format!("http://127.0.0.1:{}/{fragment}", h.port);

    // The overview: counts, four cluster charts, top consumers; refreshed live.
    let dom = chromium.dump_dom(&url(""), 6000);
    let b = ready(&dom);
    let refreshes: u32 = num(&b, "data-refreshes");
    assert!(refreshes >= 2, "{refreshes} refreshes in 6 s of a 2 s resolution: no live refresh");
    let cards = &elements(&dom, "div", "cards")[0];
    assert_eq!(num::<usize>(cards, "data-nodes"), h.json("/api/v1/model/nodes/").as_array().unwrap().len());
    assert_eq!((num::<usize>(cards, "data-pods"), num::<usize>(cards, "data-namespaces")), (0, 0), "standalone");
    assert!(num::<usize>(cards, "data-containers") >= 1, "no container (cgroup) counted: {cards:?}");

    let charts: BTreeMap<String, HashMap<String, String>> =
        elements(&dom, "section", "chart").into_iter().map(|c| (c["data-chart"].clone(), c)).collect();
    assert_eq!(charts.keys().collect::<Vec<_>>(), ["cpu", "filesystem", "memory", "network"]);
    assert!(charts.values().all(|c| c["data-key"] == "cluster"));
    check_chart(&charts["cpu"], &points(&h.json("/api/v1/model/metrics/cpu/usage_rate")), true);
    check_chart(&charts["memory"], &points(&h.json("/api/v1/model/metrics/memory/working_set")), true);
    // Network may be all zeros on a quiet host: a line along the axis, hidden under the other series.
    check_chart(&charts["network"], &points(&h.json("/api/v1/model/metrics/network/rx_rate")), false);
    // The cluster set has no filesystem: the page draws the nodes' sum, which the dashboard API computes.
    let fs = h.json("/api/v1/dashboard/series?key=cluster");
    let fs_points: BTreeMap<i64, f64> = fs["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fs["series"]["filesystem/usage"].as_array().unwrap())
        .filter_map(|(t, v)| Some((t.as_i64()?, v.as_f64()?)))
        .collect();
    check_chart(&charts["filesystem"], &fs_points, true);
    let tops = elements(&dom, "section", "list");
    assert_eq!(tops.len(), 2, "two top-consumer tables");
    for t in &tops {
        assert_eq!(t["data-kind"], "containers", "standalone ranks system containers");
        assert!(num::<usize>(t, "data-rows") >= 1, "empty top table: {t:?}");
    }

    // A node's page: its own charts, against the model API's node metrics, and its containers.
    let dom = chromium.dump_dom(&url(&format!("#/set?key=node%3A{HOST}")), 4000);
    let charts = elements(&dom, "section", "chart");
    assert_eq!(charts.len(), 4);
    let cpu = charts.iter().find(|c| c["data-chart"] == "cpu").unwrap();
    assert_eq!(cpu["data-key"], format!("node:{HOST}"));
    check_chart(cpu, &common::model_points(&h, HOST, "cpu/usage_rate"), true);
    let lists = elements(&dom, "section", "list");
    let containers = lists.iter().find(|l| l["data-kind"] == "containers").expect("a containers table");
    assert!(num::<usize>(containers, "data-rows") >= 1, "{containers:?}");

    // A list page: one page of rows, as many as the API says match.
    let dom = chromium.dump_dom(&url("#/containers?sort=memory"), 3000);
    let list = &elements(&dom, "section", "list")[0];
    let total: usize = num(list, "data-total");
    assert_eq!(num::<usize>(list, "data-rows"), total.min(50));
    assert_eq!(dom.matches("<tr data-key=\"node:").count(), total.min(50));

    // The screenshot: the overview with its charts' line colours on it, kept as the test's artifact.
    let shot = artifacts().join("dashboard.png");
    chromium.screenshot(&url(""), &shot, 6000);
    // CPU's blue, memory's green, filesystem's red (charts.js).
    let (w, hgt, near, colours) = png_stats(&shot, &[[0x25, 0x63, 0xeb], [0x16, 0xa3, 0x4a], [0xdc, 0x26, 0x26]]);
    assert_eq!((w, hgt), (1280, 1000), "screenshot size");
    assert!(colours > 200, "{colours} colours: a blank page?");
    for (name, n) in ["cpu", "memory", "filesystem"].iter().zip(&near) {
        assert!(*n > 100, "{n} pixels of the {name} chart's colour in {}", shot.display());
    }
    eprintln!("screenshot: {} ({colours} colours, line pixels {near:?})", shot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_pages_and_searches_a_simulated_clusters_pods_in_chromium() {
    use heapster_sim::{SimConfig, Simulation};
    let chromium = Chromium::find();
    let sim = Simulation::start(SimConfig { nodes: 8, pods_per_node: 20, ..Default::default() }).await.unwrap();
    let source = format!(
        "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
        sim.api_server,
        sim.nodes[0].addr.port()
    );
    // The simulation serves from this runtime's workers; the browser and the blocking HTTP helpers run beside it.
    tokio::task::spawn_blocking(move || {
        let h = Heapster::start(&["--metric_resolution=2s", "--api_typed_values", &source]);
        let pods = 8 * 20;
        h.wait_for("/api/v1/dashboard/overview", Duration::from_secs(90), |v| v["pods"] == pods);
        h.wait_for("/api/v1/model/metrics/cpu/usage_rate", Duration::from_secs(60), |v| {
            v["metrics"].as_array().is_some_and(|m| m.len() >= 3)
        });
        let url = |fragment: &str| format!("http://127.0.0.1:{}/{fragment}", h.port);

        // The overview ranks pods, ten a table.
        let dom = chromium.dump_dom(&url(""), 4000);
        ready(&dom);
        let cards = &elements(&dom, "div", "cards")[0];
        assert_eq!(num::<usize>(cards, "data-pods"), pods);
        assert_eq!(num::<usize>(cards, "data-nodes"), 8);
        let namespaces = h.json("/api/v1/model/namespaces/").as_array().unwrap().len();
        assert_eq!(num::<usize>(cards, "data-namespaces"), namespaces);
        let tops = elements(&dom, "section", "list");
        assert!(tops.iter().all(|t| t["data-kind"] == "pods" && t["data-rows"] == "10"), "{tops:?}");
        let charts = elements(&dom, "section", "chart");
        let cpu = charts.iter().find(|c| c["data-chart"] == "cpu").unwrap();
        check_chart(cpu, &points(&h.json("/api/v1/model/metrics/cpu/usage_rate")), true);

        // Page 2 of the pods by name: the rows the API has for page 2, in its order (names do not move).
        let dom = chromium.dump_dom(&url("#/pods?page=2"), 3000);
        ready(&dom);
        let api = h.json("/api/v1/dashboard/pods?page=2");
        let want: Vec<String> =
            api["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap().to_owned()).collect();
        assert_eq!(want.len(), 50);
        assert_eq!(row_keys(&dom), want);
        let list = &elements(&dom, "section", "list")[0];
        assert_eq!((num::<usize>(list, "data-total"), num::<usize>(list, "data-rows")), (pods, 50));

        // A search for one pod's name finds the pods the API finds for it.
        let key = &want[7];
        let name = key.rsplit("/pod:").next().unwrap();
        let dom = chromium.dump_dom(&url(&format!("#/pods?q={name}")), 3000);
        ready(&dom);
        let api = h.json(&format!("/api/v1/dashboard/pods?q={name}"));
        let found = row_keys(&dom);
        assert!(found.contains(key), "{name}: {found:?}");
        assert_eq!(found.len() as u64, api["total"].as_u64().unwrap(), "{name}: {found:?}");

        // That pod's page: its CPU chart against the model API, and its containers.
        let (ns, pod) = key.trim_start_matches("namespace:").split_once("/pod:").unwrap();
        let dom = chromium.dump_dom(&url(&format!("#/set?key={}", key.replace(':', "%3A").replace('/', "%2F"))), 4000);
        ready(&dom);
        let charts = elements(&dom, "section", "chart");
        let cpu = charts.iter().find(|c| c["data-chart"] == "cpu").unwrap();
        assert_eq!(&cpu["data-key"], key);
        check_chart(
            cpu,
            &points(&h.json(&format!("/api/v1/model/namespaces/{ns}/pods/{pod}/metrics/cpu/usage_rate"))),
            true,
        );
        let containers = h.json(&format!("/api/v1/model/namespaces/{ns}/pods/{pod}/containers/"));
        assert_eq!(row_keys(&dom).len(), containers.as_array().unwrap().len(), "the pod's containers");

        // The Cost page: heapster's own bill, the stages /api/v1/cost names, in its order, with their CPU.
        let dom = chromium.dump_dom(&url("#/cost?rounds=all"), 3000);
        ready(&dom);
        let api = h.json("/api/v1/cost?rounds=all");
        let section = &elements(&dom, "section", "cost")[0];
        let stages: Vec<&str> =
            api["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
        assert_eq!(stages, ["scrape", "decode", "processors", "store", "api", "other"], "{api}");
        assert_eq!(num::<usize>(section, "data-stages"), stages.len());
        assert_eq!(num::<usize>(section, "data-sinks"), 0);
        let rows: Vec<String> =
            dom.split("<tr data-stage=\"").skip(1).map(|r| r.split('"').next().unwrap().to_owned()).collect();
        assert_eq!(rows, stages, "the page's stage rows");
        let page_cpu: f64 = num(section, "data-cpu-seconds");
        assert!(page_cpu > 0.0 && page_cpu <= api["cpuSeconds"].as_f64().unwrap(), "{section:?} vs {api}");
        assert!(num::<u64>(section, "data-rounds") >= 2, "{section:?}");

        let shot = artifacts().join("dashboard-cluster.png");
        chromium.screenshot(&url(""), &shot, 4000);
        let (_, _, near, colours) = png_stats(&shot, &[[0x25, 0x63, 0xeb]]);
        assert!(colours > 200 && near[0] > 100, "{colours} colours, {} CPU-blue pixels in {}", near[0], shot.display());
    })
    .await
    .unwrap();
    drop(sim);
}
