use super::*;
use std::time::Duration;

/// Burns about `ms` milliseconds of this thread's CPU.
fn burn(ms: u64) -> u64 {
    let until = thread_cpu_ns() + ms * 1_000_000;
    let mut x = 1u64;
    while thread_cpu_ns() < until {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    std::hint::black_box(x)
}

/// utime + stime of this process from `/proc/self/stat`, in seconds.
fn proc_stat_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th of the line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

#[test]
fn a_guard_counts_the_threads_cpu_and_not_its_sleep() {
    let s = Stage::named("test-guard");
    let before = thread_cpu_ns();
    {
        let _cpu = s.start();
        burn(30);
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = thread_cpu_ns() - before;
    assert!(s.cpu_ns() >= 30_000_000, "{s:?}");
    assert!(s.cpu_ns() <= took, "{s:?} > {took}");
    // Sleeping is not CPU: far below the 80 ms of wall time.
    assert!(s.cpu_ns() < 45_000_000, "{s:?}");
    assert_eq!(Stage::named("test-guard").cpu_ns(), s.cpu_ns(), "one counter per name");
}

#[test]
fn nested_guards_count_each_nanosecond_once() {
    let (outer, inner) = (Stage::named("test-outer"), Stage::named("test-inner"));
    let before = thread_cpu_ns();
    {
        let _o = outer.start();
        burn(20);
        {
            let _i = Stage::enter("test-inner");
            burn(30);
        }
        burn(10);
    }
    let took = thread_cpu_ns() - before;
    let (o, i) = (outer.cpu_ns(), inner.cpu_ns());
    assert!((30_000_000..=took).contains(&(o)), "outer {o}");
    assert!((30_000_000..=took).contains(&i), "inner {i}");
    assert!(o + i <= took, "{o} + {i} > {took}: counted twice");
    // Only the guards' own clock reads fall between the two.
    assert!(took - (o + i) < 2_000_000, "{o} + {i} vs {took}");
    // A guard after the nest is counted whole again.
    {
        let _o = outer.start();
        burn(10);
    }
    assert!(outer.cpu_ns() >= o + 10_000_000);
}

#[test]
fn a_costed_future_counts_its_polls_on_any_thread() {
    let s = Stage::named("test-future");
    let rt = std::thread::spawn(move || {
        // A future that burns CPU, yields, and burns again; polled by hand on this thread.
        let mut polls = 0;
        let fut = std::future::poll_fn(|cx| {
            burn(15);
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(polls)
        });
        let mut fut = std::pin::pin!(fut.costed(&Stage::named("test-future")));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(n) = fut.as_mut().poll(&mut cx) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert_eq!(rt.join().unwrap(), 3);
    assert!((45_000_000..60_000_000).contains(&s.cpu_ns()), "{s:?}: three polls of 15 ms, no sleeps");
}

#[test]
fn the_stages_and_other_sum_to_the_process_cpu() {
    let s = Stage::named("test-sum");
    let before = snapshot();
    {
        let _cpu = s.start();
        burn(20);
    }
    // Unguarded work on another thread is the process's too: it lands in `other`.
    std::thread::spawn(|| burn(40)).join().unwrap();
    let now = snapshot();
    let d = now.since(&before);
    assert_eq!(d.total_ns(), d.process_ns, "{d:?}");
    let all = d.with_other();
    assert_eq!(all.last().unwrap().0, OTHER);
    let sum: u64 = all.iter().map(|(_, n)| n).sum();
    assert_eq!(sum, d.process_ns);
    let test_sum = all.iter().find(|(n, _)| n == "test-sum").unwrap().1;
    assert!(test_sum >= 20_000_000, "{d:?}");
    // Other tests run meanwhile, so `other` holds at least the 40 ms of the unguarded thread.
    assert!(d.other_ns() >= 40_000_000 || d.stages.iter().any(|(n, _)| n.starts_with("test-")), "{d:?}");
}

#[test]
fn the_process_clock_agrees_with_proc_self_stat() {
    let (clock0, stat0) = (process_cpu_ns(), proc_stat_seconds());
    let workers: Vec<_> = (0..2).map(|_| std::thread::spawn(|| burn(400))).collect();
    workers.into_iter().for_each(|w| {
        w.join().unwrap();
    });
    let (clock, stat) = ((process_cpu_ns() - clock0) as f64 / 1e9, proc_stat_seconds() - stat0);
    assert!(clock >= 0.8, "{clock} s");
    // Ticks of 10 ms at each end, plus 10 %.
    assert!((clock - stat).abs() <= 0.1 * stat + 0.02, "clock {clock} s, /proc/self/stat {stat} s");
}

#[test]
fn the_ledger_gives_figures_per_round_and_per_sink() {
    let points = Arc::new(AtomicU64::new(0));
    let p = points.clone();
    let ledger = Ledger::new(3).with_sinks(move || {
        vec![SinkReading {
            name: "influxdb:x".into(),
            points: p.load(Ordering::Relaxed),
            queued_batches: 2,
            spooled: false,
            spool_bytes: None,
        }]
    });
    let empty = ledger.report(None);
    assert_eq!((empty.rounds, empty.nodes_last), (0, 0));
    assert_eq!(empty.sinks[0].points_per_second, 0.0);
    let s = Stage::named("test-ledger");
    for nodes in [10, 20, 30, 40] {
        let _cpu = s.start();
        burn(5);
        points.fetch_add(1000, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        drop(_cpu);
        ledger.round_ended(nodes);
    }
    let all = ledger.report(None);
    assert_eq!((all.rounds, all.nodes_last), (4, 40));
    // Only the kept marks' nodes are averaged (the first round's mark is gone).
    assert_eq!(all.nodes_mean, 30.0);
    let stage = |r: &Report| r.cpu.iter().find(|(n, _)| n == "test-ledger").unwrap().1;
    assert!(stage(&all) >= 20_000_000, "{all:?}");
    let rate = all.sinks[0].points_per_second;
    assert!(rate > 1000.0 && rate < 4000.0 / 0.08, "{rate}");
    assert_eq!(all.sinks[0].reading.queued_batches, 2);

    let last2 = ledger.report(Some(2));
    assert_eq!((last2.rounds, last2.nodes_mean), (2, 35.0));
    assert!(stage(&last2) >= 10_000_000 && stage(&last2) < stage(&all), "{last2:?}");
    // More rounds than kept: as many as the marks cover.
    assert_eq!(ledger.report(Some(10)).rounds, 2);
    assert_eq!(last2.cpu.last().unwrap().0, OTHER);
}
