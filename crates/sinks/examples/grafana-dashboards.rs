//! Writes the Grafana dashboards ([`heapster_sinks::influxdb::grafana`]) under a `deploy/grafana` directory:
//! `cargo run -p heapster-sinks --example grafana-dashboards -- deploy/grafana`.

use heapster_sinks::influxdb::grafana::dashboard_files;
use std::path::PathBuf;

fn main() {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: grafana-dashboards DIR (the repository's deploy/grafana)");
        std::process::exit(2);
    };
    for file in dashboard_files() {
        let path = root.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(&path, file.json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("{}", path.display());
    }
}
