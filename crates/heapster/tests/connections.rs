//! Clients that hold heapster's connections without finishing a request, against the real binary: slow and idle
//! connections are closed by `--http_header_timeout`; unfinished request heads cannot hold more than a small buffer
//! each; under a low open-file limit, connections beyond the cap neither stop `/healthz` nor scraping.

mod common;

use common::Heapster;
use heapster_sim::{SimConfig, Simulation};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to heapster from the loopback address `from` (all of 127/8 is local), so that a test's
/// clients can count as several addresses, or as other addresses than the test's own requests.
async fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Status and body of `GET path` from 127.0.0.1 on a new connection; status 0 when nothing answered in 10s.
async fn get(h: &Heapster, path: &str) -> (u16, String) {
    heapster_sources::ensure_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(0).build().unwrap();
    match client.get(format!("http://127.0.0.1:{}{path}", h.port)).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Waits until heapster answers `/healthz` with 200, for at most 60s.
async fn wait_healthy(h: &Heapster) {
    let until = Instant::now() + Duration::from_secs(60);
    while get(h, "/healthz").await.0 != 200 {
        assert!(Instant::now() < until, "heapster did not become healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads until the server closes the connection (EOF or an error): the server's answers are discarded.
async fn until_closed(mut stream: impl AsyncReadExt + Unpin) {
    let mut buf = [0u8; 4096];
    while let Ok(1..) = stream.read(&mut buf).await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed() {
    let h = Heapster::start(&["--http_header_timeout=2s"]);
    wait_healthy(&h).await;
    let port = h.port;
    let mut clients = tokio::task::JoinSet::new();
    // Idle: connect and send nothing.
    for _ in 0..20 {
        let s = connect_from(Ipv4Addr::LOCALHOST, port).await.unwrap();
        clients.spawn(until_closed(s));
    }
    // Slowloris: a request head that never ends, a byte every 250ms.
    for _ in 0..20 {
        let s = connect_from(Ipv4Addr::LOCALHOST, port).await.unwrap();
        clients.spawn(async move {
            let (read, mut write) = s.into_split();
            let drip = async move {
                write.write_all(b"GET /healthz HTTP/1.1\r\nHost: heapster\r\n").await?;
                loop {
                    write.write_all(b"X").await?;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            };
            tokio::select! { _ = until_closed(read) => {}, _ = drip => {} }
        });
    }
    // Keep-alive: one request answered, then nothing.
    let mut s = connect_from(Ipv4Addr::LOCALHOST, port).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: heapster\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the keep-alive connection is served first");
    clients.spawn(until_closed(s));

    let all_closed =
        tokio::time::timeout(Duration::from_secs(90), async { while clients.join_next().await.is_some() {} }).await;
    assert!(all_closed.is_ok(), "{} of 41 connections still open after 90s", clients.len());
    assert_eq!(get(&h, "/healthz").await.0, 200, "heapster still serves");
}

/// VmRSS of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB");
    kb.trim().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_request_heads_do_not_grow_memory() {
    const CONNECTIONS: usize = 500;
    const HEAD: usize = 400 * 1024;
    let h = Heapster::start(&[]);
    wait_healthy(&h).await;
    let before = rss(h.child.id());
    let mut held = Vec::new();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let s = connect_from(Ipv4Addr::LOCALHOST, h.port).await.unwrap();
        let (read, mut write) = s.into_split();
        held.push(read);
        writers.spawn(async move {
            let mut head = b"GET /api/v1/model/nodes/ HTTP/1.1\r\nHost: heapster\r\nX-Padding: ".to_vec();
            head.resize(HEAD, b'a');
            // The server stops reading (or answers 431 and closes): the rest of the write is abandoned.
            let _ = tokio::time::timeout(Duration::from_secs(20), write.write_all(&head)).await;
            write
        });
    }
    let mut writes = Vec::new();
    while let Some(w) = writers.join_next().await {
        writes.push(w.unwrap());
    }
    // Give heapster a moment to read what its buffers take; poll the peak for a few seconds.
    let mut peak = 0;
    for _ in 0..10 {
        peak = peak.max(rss(h.child.id()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let grew = peak.saturating_sub(before);
    eprintln!(
        "RSS {} MB before, {} MB peak with {CONNECTIONS} unfinished {} KiB heads (+{} MB)",
        before >> 20,
        peak >> 20,
        HEAD >> 10,
        grew >> 20
    );
    // Coarse: hyper's default buffer (about 400 KiB a connection) would take 200 MB here.
    assert!(grew < 80 << 20, "RSS grew by {} MB with {CONNECTIONS} unfinished request heads", grew >> 20);
    assert_eq!(get(&h, "/healthz").await.0, 200, "heapster still serves");
    drop((held, writes));
}

/// heapster run with an open-file limit of `nofile`, soft and hard (set through `ulimit`, i.e. setrlimit, before
/// exec).
fn start_with_nofile(nofile: u32, args: &[&str]) -> (Child, u16) {
    start_with_ulimit(&format!("-n {nofile}"), args)
}

/// heapster run after `ulimit {limit}` (`-n 256`: soft and hard; `-Sn 512`: the soft limit only).
fn start_with_ulimit(limit: &str, args: &[&str]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_heapster"))
        .args(["--listen_ip=127.0.0.1", &format!("--heapster_port={port}")])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// The sum of the samples of `name` in Prometheus text.
fn sum_of(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether the model API lists `n` nodes.
async fn nodes_listed(h: &Heapster, n: usize) -> bool {
    let (status, body) = get(h, "/api/v1/model/nodes/").await;
    status == 200
        && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v.as_array().is_some_and(|a| a.len() == n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_leave_room_for_healthz_and_scraping() {
    const NODES: usize = 20;
    const ATTACKERS: u8 = 11;
    const PER_ATTACKER: usize = 100;
    let sim = Simulation::start(SimConfig { nodes: NODES, pods_per_node: 5, ..Default::default() }).await.unwrap();
    // 256 open files: the derived cap is 128 connections, 32 per client address.
    let (child, port) = start_with_nofile(
        256,
        &[
            &format!(
                "--source=kubernetes.summary_api:http://{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP",
                sim.api_server,
                sim.nodes[0].addr.port()
            ),
            "--metric_resolution=2s",
            // Long enough that the cap, not the timeout, is what keeps room here.
            "--http_header_timeout=10m",
        ],
    );
    let h = Heapster { child, port };
    let until = Instant::now() + Duration::from_secs(60);
    while !nodes_listed(&h, NODES).await {
        assert!(Instant::now() < until, "heapster did not scrape the {NODES} nodes");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_healthy(&h).await;

    // 1,100 idle connections from 11 addresses other than the test's own requests.
    // Made at once: a server that stops accepting leaves them waiting in the backlog, each for at most 10s.
    let mut connecting = tokio::task::JoinSet::new();
    for a in 0..ATTACKERS {
        for _ in 0..PER_ATTACKER {
            connecting.spawn(connect_from(Ipv4Addr::new(127, 0, 0, 2 + a), port));
        }
    }
    let mut held = Vec::new();
    while let Some(c) = connecting.join_next().await {
        held.extend(c.unwrap().ok());
    }
    let (status, body) = get(&h, "/healthz").await;
    assert_eq!(status, 200, "/healthz with {} connections held: {body}", held.len());
    assert!(held.len() > 1000, "only {} connections made: heapster stopped accepting", held.len());
    let errors = |text: &str| sum_of(text, "heapster_kubelet_scrape_errors_total");
    let errors_before = errors(&get(&h, "/metrics").await.1);
    // Scraping goes on: two more rounds of every node, without a scrape error.
    let scrapes = |text: &str| sum_of(text, "heapster_kubelet_summary_request_duration_milliseconds_count");
    let scrapes_now = scrapes(&get(&h, "/metrics").await.1);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let text = get(&h, "/metrics").await.1;
        if scrapes(&text) >= scrapes_now + 2.0 * NODES as f64 {
            break;
        }
        assert!(Instant::now() < until, "no new rounds with the connections held: {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(errors(&get(&h, "/metrics").await.1), errors_before, "scrapes failed while the connections were held");
    assert!(nodes_listed(&h, NODES).await);
    let (status, _) = get(&h, "/healthz").await;
    assert_eq!(status, 200);
    let text = get(&h, "/metrics").await.1;
    assert!(sum_of(&text, "heapster_http_connections_dropped_total") > 0.0, "{text}");
    drop(held);
}

/// (soft, hard) open-file limits of a process, from /proc.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let mut it = line["Max open files".len()..].split_whitespace().map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    (it.next().unwrap(), it.next().unwrap())
}

/// Container runtimes give a soft open-file limit of 1,024 beside a far higher hard one; heapster, as Go programs
/// do, raises the soft limit to the hard one, so that kept kubelet connections and clients are not capped at 1,024.
#[tokio::test]
async fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_, hard) = open_file_limits(std::process::id());
    assert!(hard >= 1024, "this test needs a hard open-file limit of at least 1024 (it is {hard})");
    let soft = (hard / 2).min(1024);
    let (child, port) = start_with_ulimit(&format!("-Sn {soft}"), &["--source=local?hostname=rlimit"]);
    let h = Heapster { child, port };
    wait_healthy(&h).await;
    assert_eq!(open_file_limits(h.child.id()), (hard, hard), "started with a soft limit of {soft}");
}
