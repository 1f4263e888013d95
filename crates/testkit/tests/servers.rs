//! Each server starts, answers, and takes what its sink will send: the fixtures work before a sink relies on them.
//! A server that is not installed fails its test with the package to install.

use heapster_testkit::{Carbon, Influxd, Prometheus, Statsd, VictoriaMetrics, http, wait};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn influxd_stores_line_protocol_and_comes_back_after_a_stop() {
    let mut influx = Influxd::start();
    influx.post("", "CREATE DATABASE \"t\"", None);
    let ns = now_secs() * 1_000_000_000;
    influx.post("t", "", Some(&format!("uptime,type=node,nodename=n1 value=7i {ns}")));
    let want = std::collections::BTreeMap::from([((ns / 1_000_000) as i64, vec![7.0])]);
    assert_eq!(influx.node_values("t", "uptime", "value", "n1"), want);
    // /proc counts CPU in clock ticks, and a quick start on an idle machine can still read 0: the count must grow
    // while the server works, which it cannot if `cpu_seconds` reads the wrong fields.
    wait("influxd's CPU time in /proc/PID/stat", Duration::from_secs(30), || {
        influx.post("", "SHOW DATABASES", None);
        influx.cpu_seconds() > 0.0
    });
    let dir = influx.url();
    influx.stop();
    assert_eq!(http("GET", &format!("{dir}/ping"), None).0, 0, "stopped");
    influx.launch();
    assert_eq!(influx.node_values("t", "uptime", "value", "n1"), want, "the data survives a restart");
    assert!(influx.version().contains("InfluxDB"), "{}", influx.version());
}

#[test]
fn victoria_metrics_takes_the_influxdb_2x_write_api() {
    let vm = VictoriaMetrics::start();
    let ms = now_secs() as i64 * 1000;
    let body = format!("memory,type=node,nodename=n1,cluster_name=c usage=5i {ms}\n");
    let (status, answer) =
        http("POST", &format!("{}/api/v2/write?bucket=b&precision=ms", vm.url()), Some(body.as_bytes()));
    assert_eq!(status, 204, "{answer}");
    wait("the point in VictoriaMetrics", Duration::from_secs(20), || {
        !vm.node_values("memory_usage", "n1", "c").is_empty()
    });
    assert_eq!(vm.node_values("memory_usage", "n1", "c"), [(ms, vec![5.0])].into());
    assert!(vm.names().contains(&"memory_usage".to_owned()));
}

#[test]
fn prometheus_is_ready_with_its_remote_write_receiver_on() {
    let prom = Prometheus::start();
    assert_eq!(prom.query("vector(1)")[0]["value"][1], "1");
    // Without --web.enable-remote-write-receiver the path is 404; with it, a body that is not snappy is refused.
    let (status, answer) = http("POST", &prom.remote_write_url(), Some(b"not a remote-write request"));
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn carbon_writes_plaintext_points_to_whisper() {
    let carbon = Carbon::start();
    let t = now_secs();
    let mut conn = std::net::TcpStream::connect(carbon.address()).unwrap();
    conn.write_all(format!("heapster.test.uptime 42 {t}\n").as_bytes()).unwrap();
    drop(conn);
    wait("the point in whisper", Duration::from_secs(20), || {
        carbon.values("heapster.test.uptime").get(&(t as i64)) == Some(&42.0)
    });
}

#[test]
fn statsd_aggregates_datagrams() {
    let statsd = Statsd::start();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"heapster.test:3|c\nheapster.test:4|c", statsd.address()).unwrap();
    sock.send_to(b"heapster.gauge:9|g", statsd.address()).unwrap();
    wait("the counter in statsd", Duration::from_secs(20), || statsd.mgmt("counters").contains("'heapster.test': 7"));
    assert!(statsd.mgmt("gauges").contains("'heapster.gauge': 9"), "{}", statsd.mgmt("gauges"));
}
