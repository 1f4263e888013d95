//! kubectl run by tests: `kubectl --server=http://127.0.0.1:PORT ...` with nothing of the user's configuration.
//!
//! `kubectl` is gcloud's dispatcher: it asks the server's `/version` and runs the matching kubectl.

use serde_json::Value;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// kubectl with an empty kubeconfig, a cache and a HOME of its own, removed on drop.
pub struct Kubectl {
    dir: PathBuf,
}

impl Kubectl {
    pub fn new(tag: &str) -> Kubectl {
        let dir = std::env::temp_dir().join(format!("heapster-kubectl-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("kubeconfig"), "").unwrap();
        Kubectl { dir }
    }

    /// Runs `kubectl --server=http://127.0.0.1:PORT ARGS`: status, stdout and stderr.
    pub fn try_run(&self, port: u16, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("HOME", &self.dir)
            .arg(format!("--server=http://127.0.0.1:{port}"))
            .arg(format!("--cache-dir={}", self.dir.join("cache").display()))
            .arg("--request-timeout=30s")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl ({e}): install it (gcloud's kubectl dispatcher)"));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    /// stdout of a kubectl run that must succeed.
    pub fn run(&self, port: u16, args: &[&str]) -> String {
        let (ok, out, err) = self.try_run(port, args);
        assert!(ok, "kubectl {args:?} failed: {err}{out}");
        out
    }

    /// The minor version of the kubectl the dispatcher picked for this server.
    pub fn client_minor(&self, port: u16) -> String {
        let out = self.run(port, &["version", "--output=json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl version: {e}: {out}"));
        v["clientVersion"]["minor"].as_str().unwrap_or_default().trim_end_matches('+').to_owned()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
