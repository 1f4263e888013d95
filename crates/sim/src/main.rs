//! `heapster-sim`: run simulated kubelets until interrupted, printing where they are.

use clap::Parser;
use heapster_sim::{SimConfig, Simulation};
use std::time::Duration;

/// Simulated kubelets on loopback addresses 127.1.x.y, for trying and benchmarking heapster without a cluster.
#[derive(Parser)]
#[command(name = "heapster-sim", version)]
struct Args {
    /// Number of simulated nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Pods per node.
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    /// Port of every kubelet (each on its own address).
    #[arg(long, default_value_t = 10255)]
    kubelet_port: u16,
    /// Replace every pod this often, in seconds (0: never).
    #[arg(long, default_value_t = 0)]
    churn_seconds: u64,
    /// Port of the simulated Kubernetes API server on 127.0.0.1.
    #[arg(long, default_value_t = 8001)]
    api_port: u16,
    /// Serve https on the API server and every kubelet with certificates of a CA made at start-up, whose
    /// certificate is written to DIR/ca.crt (trust it with a kubeconfig's certificate-authority, kubeletCAFile=).
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
    /// Bearer token the API server and kubelets require (401 without it).
    #[arg(long)]
    token: Option<String>,
    /// Events the API server holds at start-up (`/api/v1/events`), so an eventer has something to ship.
    #[arg(long, default_value_t = 0)]
    events: u64,
    /// Seconds between the BOOKMARKs of an event watch that allows them.
    #[arg(long, default_value_t = 1)]
    event_bookmark_seconds: u64,
    /// Give every pod a `build` label of its own (a build id): a high-cardinality label, as for a sink's
    /// cardinality governor (`max_series=`).
    #[arg(long)]
    pod_build_ids: bool,
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let churn = (a.churn_seconds > 0).then(|| Duration::from_secs(a.churn_seconds));
    let tls = match &a.tls_dir {
        None => None,
        Some(dir) => {
            let pki = heapster_sim::tls::TestPki::new("heapster-sim CA");
            let mut ips: Vec<_> = (0..a.nodes).map(heapster_sim::node_ip).collect();
            ips.push(std::net::Ipv4Addr::LOCALHOST.into());
            let ca = dir.join("ca.crt");
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&ca, &pki.ca_pem)) {
                eprintln!("heapster-sim: cannot write {}: {e}", ca.display());
                std::process::exit(1);
            }
            println!("CA certificate {}", ca.display());
            Some(pki.sim_tls(&ips))
        }
    };
    let config = SimConfig {
        nodes: a.nodes,
        pods_per_node: a.pods_per_node,
        kubelet_port: a.kubelet_port,
        churn,
        api_port: a.api_port,
        api_tls: tls.clone(),
        api_token: a.token.clone(),
        kubelet_tls: tls.clone(),
        kubelet_token: a.token.clone(),
        unlisted_pods: 0,
        event_bookmark_interval: Duration::from_secs(a.event_bookmark_seconds.max(1)),
        pod_build_ids: a.pod_build_ids,
        kubelets: None,
    };
    let sim = match Simulation::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("heapster-sim: {e} (raise `ulimit -n` for many nodes)");
            std::process::exit(1);
        }
    };
    for i in 0..a.events {
        if let Err(e) = sim.events().create(heapster_sim::events::sample_event(i)) {
            eprintln!("heapster-sim: event {i}: {e}");
            std::process::exit(1);
        }
    }
    println!("API server {}", sim.api_url());
    if a.events > 0 {
        println!("{} events, resource version {}", a.events, sim.events().revision());
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    for n in sim.nodes.iter().take(5) {
        println!("{} {scheme}://{}/stats/summary", n.spec.name, n.addr);
    }
    if sim.nodes.len() > 5 {
        println!("... {} nodes in all", sim.nodes.len());
    }
    let _ = tokio::signal::ctrl_c().await;
}
