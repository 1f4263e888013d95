//! `heapster doctor [the server's flags]`: checks the setup problems users of Heapster and metrics-server hit most,
//! with the flags heapster would run with, and prints one line per check:
//!
//! ```text
//! ok   <check>[: what was seen]
//! FAIL <check>: <problem> — fix: <the flag or manifest change>
//! skip <check>: <why>
//! ```
//!
//! and exits 1 if any check failed, else 0. The checks, in order: the API server (reachable, credentials taken,
//! clock skew against its `Date`), RBAC (a SelfSubjectAccessReview per verb heapster needs, [`cluster`]), the
//! metrics APIService's conditions, a sample of kubelets (port reachable, TLS certificate naming the address
//! heapster scrapes and signed by the CA it trusts, [`kubelets`]), and one request per sink ([`sinks`]).
//! Nothing is written anywhere.

mod cluster;
mod kubelets;
mod sinks;

use crate::flags::{Flags, normalize_args};
use heapster_sources::kubernetes::{Cluster, KubernetesOptions, is_kubernetes};
use std::io::Write;
use std::process::ExitCode;

/// `heapster doctor ARGS`, `args[0]` being `doctor`.
pub fn main(args: Vec<String>) -> ExitCode {
    let flags = Flags::try_parse_args(normalize_args(args)).unwrap_or_else(|e| e.exit());
    if let Err(e) = flags.validate() {
        let mut report = Report::default();
        report.fail("flags", &e, "change the flags as the problem says, then run heapster doctor again");
        return ExitCode::FAILURE;
    }
    let compat = flags.compat.clone();
    // Warnings only: the checks' lines are the output.
    crate::launch("heapster doctor", "warn", &compat, || run(flags))
}

/// The lines printed so far, and how many failed.
#[derive(Default)]
pub(crate) struct Report {
    failures: usize,
}

impl Report {
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// The check passed; `seen` (may be empty) says what it saw.
    pub(crate) fn ok(&mut self, check: &str, seen: &str) {
        if seen.is_empty() {
            self.line(format!("ok   {check}"));
        } else {
            self.line(format!("ok   {check}: {seen}"));
        }
    }

    /// The check failed for `problem`; `fix` is the flag or manifest change that fixes it.
    pub(crate) fn fail(&mut self, check: &str, problem: &str, fix: &str) {
        self.failures += 1;
        self.line(format!("FAIL {check}: {problem} — fix: {fix}"));
    }

    /// The check was not made, for `why`.
    pub(crate) fn skip(&mut self, check: &str, why: &str) {
        self.line(format!("skip {check}: {why}"));
    }
}

async fn run(flags: Flags) -> Result<(), String> {
    let mut report = Report::default();
    let kubernetes: Vec<_> = flags.sources.iter().filter(|s| is_kubernetes(s)).collect();
    if kubernetes.is_empty() {
        report
            .skip("cluster", "no kubernetes --source: the API server, RBAC, the APIService and kubelets are not used");
    }
    for uri in kubernetes {
        let options = match KubernetesOptions::parse(uri) {
            Ok(o) => o,
            Err(e) => {
                report.fail("source options", &e.to_string(), "correct the --source value as the problem says");
                continue;
            }
        };
        let cluster = match Cluster::connect(options).await {
            Ok(c) => c,
            Err(e) => {
                report.fail(
                    "API server credentials",
                    &e,
                    "give the --source the kubeconfig or service account it names",
                );
                continue;
            }
        };
        if cluster::check(&cluster, &flags, &mut report).await {
            kubelets::check(&cluster, &mut report).await;
        }
    }
    sinks::check(&flags, &mut report).await;
    match report.failures {
        0 => Ok(()),
        1 => Err("1 check failed".into()),
        n => Err(format!("{n} checks failed")),
    }
}
