//! Each fuzz target over its corpus and a few seconds of mutated inputs, in the default test suite; the long runs
//! are `scripts/fuzz`'s.

use heapster_fuzz::{Counting, fuzz, targets};
use std::time::Duration;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn every_target_survives_its_corpus_and_a_few_seconds_of_mutations() {
    for target in targets::TARGETS {
        let r = fuzz(target, u64::MAX, 7, Some(Duration::from_secs(3)));
        assert!(r.executions > 10, "{}: only {} executions", target.name, r.executions);
        assert!(r.counted, "the counting allocator is installed");
        let panics: Vec<String> = r
            .panics
            .iter()
            .take(3)
            .map(|(i, m)| format!("{m} on {:?}", String::from_utf8_lossy(&i[..i.len().min(200)])))
            .collect();
        assert!(r.panics.is_empty(), "{}: {} panics: {panics:?}", target.name, r.panics.len());
        assert!(
            r.allocations.is_empty(),
            "{}: {} executions allocated over the limit",
            target.name,
            r.allocations.len()
        );
    }
}

#[test]
fn a_panicking_decoder_is_caught_and_reported() {
    let target = heapster_fuzz::Target {
        name: "spool_batch",
        seeds: || vec![b"x".to_vec()],
        fixtures: &[],
        run: |input| assert!(input.len() < 3, "too long"),
        dictionary: &[],
    };
    let r = fuzz(&target, 2000, 1, None);
    assert!(!r.panics.is_empty(), "mutations that grow the input panic the target");
    assert_eq!(r.panics[0].1, "too long");
}
