//! `heapster-fuzz [--executions N] [--seed S] [TARGET...]`: runs each target (all by default) for N executions
//! (default 10 million) and prints executions per second, the largest allocation peak of one execution, and
//! whether anything panicked or allocated out of proportion. Exits 1 when something did; the inputs are saved in
//! `target/fuzz-findings/` (or `$FUZZ_FINDINGS`). `scripts/fuzz` is the way to run it.

use heapster_fuzz::{Counting, alloc_limit, fuzz, save, targets};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut executions, mut seed, mut names) = (10_000_000u64, 1u64, Vec::new());
    while let Some(a) = args.next() {
        let mut number = |what: &str| -> u64 {
            let v = args.next().unwrap_or_default();
            v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("{what} wants a number, not {v:?}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--executions" | "-n" => executions = number("--executions"),
            "--seed" => seed = number("--seed"),
            "--list" => {
                targets::TARGETS.iter().for_each(|t| println!("{}", t.name));
                return ExitCode::SUCCESS;
            }
            name if targets::find(name).is_some() => names.push(name.to_owned()),
            other => {
                let known: Vec<&str> = targets::TARGETS.iter().map(|t| t.name).collect();
                eprintln!("unknown target or option {other:?}; targets: {}", known.join(", "));
                return ExitCode::from(2);
            }
        }
    }
    if names.is_empty() {
        names = targets::TARGETS.iter().map(|t| t.name.to_owned()).collect();
    }
    let findings = std::env::var_os("FUZZ_FINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings"));
    let mut clean = true;
    println!(
        "{:<18} {:>12} {:>9} {:>12} {:>18}  result",
        "target", "executions", "seconds", "exec/s", "max peak (input)"
    );
    for name in names {
        let target = targets::find(&name).expect("checked above");
        let r = fuzz(target, executions, seed, None);
        let result = if r.clean() {
            "ok: no panic, no allocation over the limit".to_owned()
        } else {
            clean = false;
            let saved = save(target.name, &r, &findings);
            let first = r.panics.first().map(|(_, m)| m.clone()).unwrap_or_default();
            format!(
                "FOUND {} panics ({first}), {} allocations over {} bytes per input (limit for 0 bytes); saved {saved:?}",
                r.panics.len(),
                r.allocations.len(),
                alloc_limit(0)
            )
        };
        println!(
            "{:<18} {:>12} {:>9.1} {:>12.0} {:>9} B ({:>5} B)  {result}",
            target.name,
            r.executions,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            r.max_peak.0,
            r.max_peak.1
        );
    }
    if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
