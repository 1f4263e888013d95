//! The scrape loop, as Heapster's `manager.go`: every resolution, scrape every source concurrently (each under
//! its own deadline), merge, run the processors in order, then hand the batch to the store and the sinks.

use crate::self_metrics::{PipelineMetrics, SourceLabels};
use heapster_cost::{CostExt, Ledger};
use heapster_model::{DataBatch, MetricSet, MetricSetType, Timestamp};
use heapster_processors::DataProcessor;
use heapster_processors::per_source::PerSource;
use heapster_sinks::SinkManager;
use heapster_sources::MetricsSourceProvider;
use heapster_sources::SourceError;
use heapster_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Everything one round needs.
pub struct Pipeline {
    pub provider: Arc<dyn MetricsSourceProvider>,
    pub processors: Vec<Box<dyn DataProcessor>>,
    pub store: Arc<Store>,
    pub sinks: SinkManager,
    pub resolution: Duration,
    pub metrics: PipelineMetrics,
    /// Scrapes in flight at once (`--max_concurrent_scrapes`): bounds sockets and memory at 5,000 nodes.
    pub max_concurrent: usize,
    /// Whether a node's container and pod sets may go to the store from its scrape (not `--store_whole_rounds`;
    /// see [`Pipeline::run`]).
    pub stream_sets: bool,
    /// What the sinks get of the namespace and cluster roll-ups (the store always gets them).
    pub rollups: SinkRollups,
    /// heapster's own bill, marked at the end of every round with the nodes it scraped.
    pub cost: Arc<Ledger>,
    /// The store's thread of its own, started at the first round.
    pub ingester: Ingester,
}

/// Store ingest on a thread of its own, in round order, so that a round's ingest overlaps the next round's scrape
/// instead of lengthening the round: at 15,000 nodes x 30 pods it was about 4 s of a round's 12 s serial part
/// (processors, store), which one thread runs after the scrape phase while the other core idles.
///
/// A rendezvous channel: handing a batch over waits until the thread has finished the previous one, so batches go
/// in in order and at most one waits beside the one being scraped. The wait is on a blocking thread, not on the
/// runtime's: a worker blocked for the seconds a large batch's ingest takes would stall every scrape task and
/// HTTP request queued on it. Where the thread cannot run, batches are ingested in the round as before.
#[derive(Default)]
pub struct Ingester(Option<std::sync::mpsc::SyncSender<Arc<DataBatch>>>);

impl Ingester {
    async fn ingest(&mut self, store: &Arc<Store>, batch: Arc<DataBatch>) {
        if self.0.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<DataBatch>>(0);
            let store = store.clone();
            let thread = std::thread::Builder::new().name("store-ingest".into()).spawn(move || {
                for batch in rx {
                    let _cpu = heapster_cost::STORE_STAGE.start();
                    store.ingest(batch);
                }
            });
            match thread {
                Ok(_) => self.0 = Some(tx),
                Err(e) => tracing::warn!("could not start the store's ingest thread ({e}): ingesting in the round"),
            }
        }
        let batch = match self.0.clone() {
            Some(tx) => match tokio::task::spawn_blocking(move || tx.send(batch)).await {
                Ok(Ok(())) => return,
                Err(e) => {
                    tracing::warn!("handing a batch to the store failed ({e}): the runtime is shutting down");
                    return;
                }
                Ok(Err(std::sync::mpsc::SendError(batch))) => {
                    tracing::warn!(
                        "the store's ingest thread ended: this batch is ingested here, the next by a new one"
                    );
                    self.0 = None;
                    batch
                }
            },
            None => batch,
        };
        let _cpu = heapster_cost::STORE_STAGE.start();
        store.ingest(batch);
    }
}

/// The processors and the batch they processed, back from their thread.
type Processed = (Vec<Box<dyn DataProcessor>>, DataBatch);

/// A round's sets stored from the scrape tasks, not in its batch (see [`Pipeline::run`]).
#[derive(Debug, Clone, Copy, Default)]
struct Streamed {
    sets: usize,
    points: usize,
}

/// [`Streamed`] as the scrape tasks count it.
#[derive(Default)]
struct StreamedCount {
    sets: AtomicUsize,
    points: AtomicUsize,
}

impl StreamedCount {
    fn totals(&self) -> Streamed {
        Streamed { sets: self.sets.load(Ordering::Relaxed), points: self.points.load(Ordering::Relaxed) }
    }

    /// Moves the sets of `batch` (one source's, processed) that `to` takes to its store, as part of round
    /// `timestamp`'s batch.
    fn store_sets(&self, timestamp: Timestamp, batch: &mut DataBatch, to: &StreamTo) {
        let sets: std::collections::BTreeMap<_, _> = batch.sets.extract_if(.., |_, set| to.takes(set)).collect();
        if sets.is_empty() {
            return;
        }
        let _cpu = heapster_cost::STORE_STAGE.start();
        let part = DataBatch { timestamp, sets };
        self.sets.fetch_add(part.sets.len(), Ordering::Relaxed);
        self.points.fetch_add(part.point_count(), Ordering::Relaxed);
        to.store.ingest_part(Arc::new(part));
    }
}

/// Which of each node's sets go to the store from its scrape task, not in the round's batch (see
/// [`Pipeline::run`]).
#[derive(Clone)]
struct StreamTo {
    store: Arc<Store>,
    containers: bool,
    pods: bool,
}

impl StreamTo {
    fn takes(&self, set: &MetricSet) -> bool {
        (self.containers && heapster_processors::is_container_set(set))
            || (self.pods && heapster_processors::is_pod_set(set))
    }
}

/// A round whose batch is with the processors.
struct Processing {
    timestamp: Timestamp,
    nodes: usize,
    streamed: Streamed,
    started: Instant,
    task: tokio::task::JoinHandle<Processed>,
}

/// What wakes the scrape loop.
enum Event {
    Tick(Timestamp),
    Processed(Result<Processed, tokio::task::JoinError>),
    Stop,
}

/// What a replica writes to its sinks of the `namespace:` and `cluster` sets. A sharded replica rolls up only its
/// own nodes, so its sums are partial, and every replica's would go to the sinks under the same tags, each
/// overwriting the others' (InfluxDB and VictoriaMetrics keep one point per series and time). Node, pod and
/// container sets belong to one replica each (the node's), so they are whole wherever they are written. The store
/// and the APIs keep every set: reads sum the replicas' roll-ups through the fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkRollups {
    /// Not sharded: the roll-ups are the cluster's, written as they are.
    Whole,
    /// Sharded (the default): the partial roll-ups are not written.
    Omitted,
    /// Sharded with `--shard_export_rollups`: written with the label `shard=` this replica's identity, so that
    /// each replica's series is its own and a query sums them over `shard`.
    Labelled(String),
}

impl SinkRollups {
    /// The batch for the sinks. Called once the store has read `batch`, so the batch is changed in place (no copy)
    /// unless a sink still holds it.
    pub fn for_sinks(&self, mut batch: Arc<DataBatch>) -> Arc<DataBatch> {
        match self {
            SinkRollups::Whole => {}
            SinkRollups::Omitted => Arc::make_mut(&mut batch).sets.retain(|_, set| !is_rollup(set)),
            SinkRollups::Labelled(identity) => {
                for set in Arc::make_mut(&mut batch).sets.values_mut().filter(|s| is_rollup(s)) {
                    set.labels.insert(heapster_model::labels::SHARD, identity.clone());
                }
            }
        }
        batch
    }

    /// The start-up line saying which choice is in effect; none when not sharded.
    pub fn describe(&self) -> Option<String> {
        match self {
            SinkRollups::Whole => None,
            SinkRollups::Omitted => Some(
                "shard: the namespace and cluster roll-ups sum only this replica's nodes: they are not written to \
                 the sinks (the APIs serve them summed over the replicas); --shard_export_rollups writes them \
                 labelled with this replica's shard"
                    .into(),
            ),
            SinkRollups::Labelled(identity) => Some(format!(
                "shard: the namespace and cluster roll-ups of this replica's nodes go to the sinks labelled \
                 shard={identity} (--shard_export_rollups): sum them over shard for the cluster's"
            )),
        }
    }
}

/// A namespace or cluster set: a sum over nodes.
fn is_rollup(set: &MetricSet) -> bool {
    let ty = set.set_type();
    ty == Some(MetricSetType::Namespace.as_str()) || ty == Some(MetricSetType::Cluster.as_str())
}

/// A fixed delay per source, spread over the first tenth of the resolution, so that thousands of kubelets are not
/// all asked in the same millisecond of every round (and each is asked at the same point of every round).
fn jitter(name: &str, resolution: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let spread = (resolution.as_millis() as u64 / 10).max(1);
    Duration::from_millis(h.finish() % spread)
}

pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Timestamp).unwrap_or(0)
}

/// The tick the round after the one stamped `last` runs at, and how long until then: the next multiple of
/// `resolution` in wall-clock time, so that batches of every heapster (and every restart) land on the same
/// timestamps; or at once the one just after `last` if it passed less than half a resolution ago. A round whose
/// serial end (gathering its sets, starting its processors) ran past its tick then starts late by as much, rather
/// than a whole resolution later with a tick lost: Heapster's rounds ran from a ticker, each in its own goroutine,
/// and lost none.
fn next_tick(resolution: Duration, last: Option<Timestamp>) -> (Duration, Timestamp) {
    next_tick_at(now_ms(), resolution, last)
}

/// [`next_tick`] at the wall-clock time `now`.
fn next_tick_at(now: Timestamp, resolution: Duration, last: Option<Timestamp>) -> (Duration, Timestamp) {
    let res = resolution.as_millis().max(1) as i64;
    let next = (now / res + 1) * res;
    match last {
        Some(last) if next - last > res && now - (last + res) < res / 2 => (Duration::ZERO, last + res),
        // The wall clock stepped back: never the same timestamp twice, nor an older one.
        Some(last) if next <= last => (Duration::from_millis((last + res - now) as u64), last + res),
        _ => (Duration::from_millis((next - now) as u64), next),
    }
}

/// When a round's scrapes must be done, after its tick: the next tick less a tenth of the resolution, at most
/// 750 ms, for gathering its sets and starting its processors before that tick. Sources end their requests a
/// twentieth of the resolution earlier, at most 250 ms, so that a slow target is counted under its own cause.
///
/// Up to a 5 s resolution that is 90 % and 85 % of the resolution (the round's 90 % up to 7.5 s); at 15 s, 14.25 s
/// and 14 s (13.5 s and 12.75 s before): at 15,000 nodes on two cores the scrapes need nearly all of the round.
fn round_deadlines(resolution: Duration) -> (Duration, Duration) {
    let round = resolution.saturating_sub((resolution / 10).min(Duration::from_millis(750)));
    (round, round.saturating_sub((resolution / 20).min(Duration::from_millis(250))))
}

impl Pipeline {
    /// Runs rounds until `stop` turns true, then lets the sinks drain. Every round runs at a multiple of the
    /// resolution in wall-clock time and its batch is stamped with it, as Heapster stamped each batch with the end
    /// of its window: series line up across restarts and across heapsters. The first round waits for the next
    /// one too (at most one resolution, as in Heapster): stamping a round run at once with the grid point just
    /// passed would give a heapster restarted within one resolution the timestamp of its predecessor's last
    /// batch, and overwrite that batch's points in the sinks.
    ///
    /// A round's processors run on a blocking thread, and the next round's scrape starts at its tick even if they
    /// have not finished: at 15,000 nodes x 30 pods the processors took 7-8 s after a scrape phase of 7.5 s, so
    /// rounds done one after the other missed every second tick while one of the two cores idled. The processors
    /// are one chain with state (rates), so a batch waits for the previous one's to finish; its store and sinks
    /// hand-off follows as soon as they do, or, when the next scrape is already running, when that scrape ends.
    ///
    /// The chain's leading processors that need one node's sets only (rates, enrichment, pod and node sums, node
    /// autoscaling figures) run in each node's scrape instead, on that node's sets (see
    /// `heapster_processors::per_source`).
    ///
    /// With no sink, each node's container and pod sets go to the store as soon as its scrape is processed
    /// ([`Store::ingest_part`]), those of each kind that no processor after the per-source ones reads: with
    /// Kubernetes' chain both, so only the node's set and its sums per namespace join the round's batch (the
    /// namespace aggregator runs per node, its sums added up as the round's sets are gathered). Containers were
    /// some 60 % of a batch that lived until the round's end, pods most of the rest: at 1,000 nodes the batch was
    /// 0.175 of heapster's 0.38 MiB per node at its peak (heaptrack), the store about as much.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> SinkManager {
        let (per_source, rest) = heapster_processors::per_source::split(std::mem::take(&mut self.processors));
        self.processors = rest;
        let per_source = Arc::new(per_source);
        let stream = (self.stream_sets && self.sinks.is_empty())
            .then(|| StreamTo {
                store: self.store.clone(),
                containers: self.processors.iter().all(|p| !p.needs_container_sets()),
                pods: self.processors.iter().all(|p| !p.needs_pod_sets()),
            })
            .filter(|to| to.containers || to.pods);
        let mut processing: Option<Processing> = None;
        // Sets the last round's sources gave: the next round's are collected into a vector of that size.
        let mut last_sets = 0;
        let mut last_tick = None;
        loop {
            let (wait, next) = next_tick(self.resolution, last_tick);
            let event = tokio::select! {
                _ = tokio::time::sleep(wait) => Event::Tick(next),
                done = async { (&mut processing.as_mut().expect("guarded").task).await }, if processing.is_some() => {
                    Event::Processed(done)
                }
                _ = stop.changed() => Event::Stop,
            };
            match event {
                Event::Stop => break,
                Event::Processed(done) => {
                    let round = processing.take().expect("a round was processing");
                    self.export(round, done).await;
                }
                Event::Tick(timestamp) => {
                    last_tick = Some(timestamp);
                    let started = Instant::now();
                    // At most half a resolution (see `next_tick`), unless the process was paused or the clock
                    // stepped: then the round gets half of its time rather than none.
                    let late = Duration::from_millis(u64::try_from(now_ms() - timestamp).unwrap_or(0))
                        .min(self.resolution / 2);
                    let now = tokio::time::Instant::now();
                    let ticked = now.checked_sub(late).unwrap_or(now);
                    let previous = async {
                        let mut round = processing.take()?;
                        let done = (&mut round.task).await;
                        Some((round, done))
                    };
                    let ((batch, nodes, streamed), previous) = tokio::join!(
                        self.scrape(timestamp, ticked, &per_source, &mut last_sets, stream.as_ref()),
                        previous
                    );
                    if let Some((round, done)) = previous {
                        self.export(round, done).await;
                    }
                    processing = Some(self.process(timestamp, batch, nodes, streamed, started));
                }
            }
        }
        if let Some(mut round) = processing.take() {
            let done = (&mut round.task).await;
            self.export(round, done).await;
        }
        self.sinks
    }

    /// Starts the processors on `batch`, on a blocking thread; they come back with it ([`Pipeline::export`]).
    fn process(
        &mut self,
        timestamp: Timestamp,
        batch: DataBatch,
        nodes: usize,
        streamed: Streamed,
        started: Instant,
    ) -> Processing {
        self.metrics.round_nodes_scraped.set(nodes as i64);
        let mut processors = std::mem::take(&mut self.processors);
        let observed = self.metrics.heapster.processor.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _cpu = heapster_cost::PROCESSORS_STAGE.start();
            let batch = processors.iter_mut().fold(batch, |b, p| {
                let started = Instant::now();
                let b = p.process(b);
                observed.observe(p.name(), started.elapsed());
                b
            });
            (processors, batch)
        });
        Processing { timestamp, nodes, streamed, started, task }
    }

    /// Takes the processors back and hands the processed batch to the store and the sinks. Each stage's CPU is
    /// counted for heapster's bill. A processor's panic goes on here, as when the chain ran in the round.
    async fn export(&mut self, round: Processing, done: Result<Processed, tokio::task::JoinError>) {
        let (processors, batch) = match done {
            Ok(done) => done,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("the processors' thread was cancelled ({e}): the runtime is shutting down"),
            },
        };
        self.processors = processors;
        let Processing { timestamp, nodes, streamed, started, .. } = round;
        self.metrics.batch_sets.set((batch.sets.len() + streamed.sets) as i64);
        self.metrics.batch_points.set((batch.point_count() + streamed.points) as i64);
        self.metrics.last_batch_timestamp.set(timestamp as f64 / 1000.0);
        self.metrics.batches.inc();
        let batch = Arc::new(batch);
        match self.rollups {
            // With no sink, the store is alone with the batch and frees each set as it stores it (see
            // `Store::ingest`).
            SinkRollups::Whole if self.sinks.is_empty() => self.ingester.ingest(&self.store, batch).await,
            SinkRollups::Whole => {
                self.ingester.ingest(&self.store, batch.clone()).await;
                self.push_to_sinks(batch);
            }
            _ => {
                // The sharded modes change the sinks' batch after the store has let it go, so that `make_mut`
                // changes it in place instead of copying it.
                let _cpu = heapster_cost::STORE_STAGE.start();
                self.store.ingest(batch.clone());
                self.push_to_sinks(self.rollups.for_sinks(batch));
            }
        }
        self.metrics.round_seconds.observe(started.elapsed().as_secs_f64());
        self.cost.round_ended(nodes as u64);
    }

    fn push_to_sinks(&self, batch: Arc<DataBatch>) {
        // Freeing the batch (every set's labels and metrics: 5 % of heapster's CPU at 1,000 nodes) is left to
        // another thread, off the loop: once the sinks and the store are done, this is the last reference.
        let last = batch.clone();
        self.sinks.push(batch);
        tokio::task::spawn_blocking(move || drop(last));
    }

    /// Scrapes every source concurrently, at most `max_concurrent` at once, each after its jitter. A source that
    /// fails or misses the deadline ([`round_deadlines`]) costs only its own sets. The deadlines count from
    /// `ticked`, when the round's tick was due, so that a round started late (see [`next_tick`]) does not end late
    /// too. Returns the batch and how many sources (nodes, for a kubernetes source) gave their sets. Each source's
    /// sets go through its instances of the per-source processors in its own task, after its deadline.
    /// `gathered` sizes the vector every source's sets are gathered in (the last round's count, before the
    /// nodes' namespace sums were added up) and is set to this round's. With `stream_to`, the sets it takes go
    /// from each source's task to its store instead (see [`Pipeline::run`]).
    async fn scrape(
        &self,
        timestamp: Timestamp,
        ticked: tokio::time::Instant,
        per_source: &Arc<PerSource>,
        gathered: &mut usize,
        stream_to: Option<&StreamTo>,
    ) -> (DataBatch, usize, Streamed) {
        let streamed = Arc::new(StreamedCount::default());
        if let Some(StreamTo { store, .. }) = stream_to {
            // The round's timestamp is in the store's list before any part of the next round can be: else, with
            // no streamed part this round and processors running past the tick, the next round's parts would
            // come first and this round's rest would be dropped as out of order.
            store.ingest_part(Arc::new(DataBatch { timestamp, ..Default::default() }));
        }
        let (deadline, requests_end) = round_deadlines(self.resolution);
        let (round_deadline, scrape_deadline) = (ticked + deadline, ticked + requests_end);
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_concurrent.max(1)));
        let resolution = self.resolution;
        let mut tasks = tokio::task::JoinSet::new();
        for source in self.provider.sources() {
            let permits = permits.clone();
            let per_source = per_source.clone();
            let stream_to = stream_to.cloned();
            let streamed = streamed.clone();
            tasks.spawn(
                async move {
                    let name = source.name();
                    tokio::time::sleep(jitter(&name, resolution)).await;
                    let started = Instant::now();
                    let result = tokio::time::timeout_at(round_deadline, async {
                        let _permit = permits.acquire().await;
                        source.scrape_until(timestamp, scrape_deadline).await
                    })
                    .await;
                    let took = started.elapsed();
                    let mut result = result.map(|scraped| {
                        scraped.and_then(|batch| match per_source.take(&name) {
                            Some(mut chain) => {
                                let _cpu = heapster_cost::PROCESSORS_STAGE.start();
                                // A processor's bug costs this source's sets and its processors' state, counted
                                // as its scrape error; the panic's message and place went to stderr.
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    (per_source.run(&mut chain, batch), Some(chain))
                                }))
                                .map_err(|_| {
                                    SourceError::Other(
                                        "a processor panicked on its sets: a bug, please report it".into(),
                                    )
                                })
                            }
                            None => Ok((batch, None)),
                        })
                    });
                    if let (Ok(Ok((batch, _))), Some(to)) = (&mut result, &stream_to) {
                        streamed.store_sets(timestamp, batch, to);
                    }
                    (name, took, result)
                }
                .costed(&heapster_cost::SCRAPE_STAGE),
            );
        }
        // Every source's sets in one vector, made into the batch's map once at the end (`PerSource::gather`):
        // inserting them one by one into a map of the whole cluster's sets cost a search and its string compares
        // per set. The vector is made at the last round's size (and a little more):
        // grown by doubling from empty, it was copied a dozen times a round, the larger copies into freshly faulted
        // pages (about 1 % of heapster's CPU at 1,000 nodes).
        let mut sets = Vec::with_capacity(*gathered + *gathered / 64);
        let mut scraped = 0;
        let mut chains = std::collections::HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (name, took, result) = match joined {
                Ok(done) => done,
                Err(e) => {
                    // The panic's own message went to stderr; the source is not known here, only that its sets
                    // are lost this round.
                    tracing::error!("a scrape task ended without its sets ({e}): a bug, please report it");
                    continue;
                }
            };
            let labels = SourceLabels { source: name.clone() };
            self.metrics.scrape_seconds.get_or_create(&labels).observe(took.as_secs_f64());
            self.metrics.heapster.scraped(&name, took);
            match result {
                Ok(Ok((batch, chain))) => {
                    scraped += 1;
                    sets.extend(batch.sets);
                    if let Some(chain) = chain {
                        chains.insert(name, chain);
                    }
                }
                Ok(Err(e)) => {
                    self.metrics.scrape_errors.get_or_create(&labels).inc();
                    tracing::warn!("scrape of {name} failed: {e}");
                }
                Err(_) => {
                    self.metrics.scrape_errors.get_or_create(&labels).inc();
                    tracing::warn!(
                        "scrape of {name} did not finish by the round's deadline ({deadline:?} after its tick): \
                         skipped this round"
                    );
                }
            }
        }
        per_source.keep(chains);
        for (processor, took) in per_source.spent() {
            self.metrics.heapster.processor.observe(processor, took);
        }
        let _cpu = heapster_cost::SCRAPE_STAGE.start();
        *gathered = sets.len();
        (DataBatch { timestamp, sets: per_source.gather(sets) }, scraped, streamed.totals())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use async_trait::async_trait;
    use heapster_sources::{MetricsSource, SourceError, StaticProvider};

    /// A store keeping a minute.
    fn test_store(resolution: Duration) -> Arc<Store> {
        Arc::new(Store::new(heapster_store::StoreConfig { window: Duration::from_secs(60), resolution }))
    }

    /// A pipeline with no sinks and its own registry.
    fn test_pipeline(
        provider: Arc<dyn MetricsSourceProvider>,
        processors: Vec<Box<dyn DataProcessor>>,
        store: Arc<Store>,
        resolution: Duration,
        max_concurrent: usize,
    ) -> Pipeline {
        let mut registry = prometheus_client::registry::Registry::default();
        Pipeline {
            provider,
            processors,
            store,
            sinks: SinkManager::start(
                Vec::new(),
                Default::default(),
                heapster_sinks::SinkMetrics::register(&mut registry),
            ),
            resolution,
            metrics: PipelineMetrics::new(&mut registry),
            max_concurrent,
            stream_sets: true,
            rollups: SinkRollups::Whole,
            cost: Arc::new(Ledger::new(4)),
            ingester: Default::default(),
        }
    }

    fn no_per_source() -> Arc<PerSource> {
        Arc::new(heapster_processors::per_source::split(Vec::new()).0)
    }

    /// A node using one core, whose scrape fails on the calls listed.
    struct Node {
        name: &'static str,
        calls: AtomicUsize,
        fails_on: &'static [usize],
    }

    #[async_trait]
    impl MetricsSource for Node {
        fn name(&self) -> String {
            self.name.into()
        }
        async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
            if self.fails_on.contains(&self.calls.fetch_add(1, Ordering::SeqCst)) {
                return Err(SourceError::Other("down this round".into()));
            }
            let mut set = MetricSet { create_time: 1, scrape_time: timestamp, ..Default::default() };
            set.set_kind(MetricSetType::Node);
            set.set("cpu/usage", heapster_model::MetricValue::Int(timestamp * 1_000_000));
            let mut b = DataBatch { timestamp, ..Default::default() };
            b.sets.insert(heapster_model::keys::node_key(self.name), set);
            Ok(b)
        }
    }

    /// Notes how many sets each batch it gets holds; runs per source.
    #[derive(Clone)]
    struct Sees(Arc<std::sync::Mutex<Vec<usize>>>);

    impl DataProcessor for Sees {
        fn name(&self) -> &'static str {
            "sees"
        }
        fn process(&mut self, batch: DataBatch) -> DataBatch {
            self.0.lock().unwrap().push(batch.sets.len());
            batch
        }
        fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
            Some(Box::new(self.clone()))
        }
    }

    /// The per-source processors run in each source's scrape on its sets alone, keep each source's state (rates)
    /// from round to round, and a source that failed a round starts afresh.
    #[tokio::test]
    async fn per_source_processors_run_in_each_scrape_and_a_failed_source_starts_afresh() {
        let node = |name, fails_on| Arc::new(Node { name, calls: AtomicUsize::new(0), fails_on });
        let sources: Vec<Arc<dyn MetricsSource>> = vec![node("a", &[]), node("b", &[2])];
        let seen = Sees(Default::default());
        let (per_source, rest) = heapster_processors::per_source::split(vec![
            Box::new(seen.clone()),
            Box::new(heapster_processors::RateCalculator::new()),
            Box::new(heapster_processors::ClusterAggregator::new(heapster_processors::ClusterFrom::Nodes)),
        ]);
        assert_eq!(rest.len(), 1, "the cluster aggregator needs the whole batch");
        let per_source = Arc::new(per_source);
        let p = test_pipeline(
            Arc::new(StaticProvider(sources)),
            Vec::new(),
            test_store(Duration::from_secs(1)),
            Duration::from_secs(1),
            4,
        );
        let mut rates = Vec::new();
        for round in 1..=5 {
            let (batch, _, _) = p.scrape(round * 10_000, tokio::time::Instant::now(), &per_source, &mut 0, None).await;
            let rate = |node: &str| {
                batch.sets.get(&heapster_model::keys::node_key(node)).map(|s| s.get("cpu/usage_rate").is_some())
            };
            rates.push((rate("a"), rate("b")));
        }
        assert_eq!(
            rates,
            [
                (Some(false), Some(false)),
                (Some(true), Some(true)),
                (Some(true), None),
                (Some(true), Some(false)),
                (Some(true), Some(true)),
            ],
            "(a, b) per round: present, and with a rate"
        );
        assert!(seen.0.lock().unwrap().iter().all(|&n| n == 1), "a per-source processor saw another source's sets");
        assert_eq!(seen.0.lock().unwrap().len(), 9, "once per source and round that gave sets");
    }

    /// Panics on the sets of node `b`; runs per source.
    struct PanicsOnB;

    impl DataProcessor for PanicsOnB {
        fn name(&self) -> &'static str {
            "panics_on_b"
        }
        fn process(&mut self, batch: DataBatch) -> DataBatch {
            assert!(!batch.sets.contains_key("node:b"), "a bug in a processor (this test's)");
            batch
        }
        fn for_one_source(&self) -> Option<Box<dyn DataProcessor>> {
            Some(Box::new(PanicsOnB))
        }
    }

    /// A per-source processor that panics on one node's sets costs that node's sets, counted as its scrape error,
    /// not the round.
    #[tokio::test]
    async fn a_per_source_processor_that_panics_costs_only_its_sources_sets() {
        let node = |name| Arc::new(Node { name, calls: AtomicUsize::new(0), fails_on: &[] });
        let sources: Vec<Arc<dyn MetricsSource>> = vec![node("a"), node("b"), node("c")];
        let (per_source, _) = heapster_processors::per_source::split(vec![Box::new(PanicsOnB)]);
        let store = test_store(Duration::from_secs(1));
        let p = test_pipeline(Arc::new(StaticProvider(sources)), Vec::new(), store, Duration::from_secs(1), 4);
        let (batch, scraped, _) =
            p.scrape(10_000, tokio::time::Instant::now(), &Arc::new(per_source), &mut 0, None).await;
        assert_eq!(batch.sets.keys().collect::<Vec<_>>(), ["node:a", "node:c"]);
        assert_eq!(scraped, 2);
        let errors = |n: &str| p.metrics.scrape_errors.get_or_create(&SourceLabels { source: n.into() }).get();
        assert_eq!((errors("a"), errors("b"), errors("c")), (0, 1, 0), "counted as b's scrape error");
    }

    /// Counts how many of its kind are scraping at once.
    struct Slow {
        id: usize,
        now: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl MetricsSource for Slow {
        fn name(&self) -> String {
            format!("slow-{}", self.id)
        }
        async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            let mut b = DataBatch { timestamp, ..Default::default() };
            b.sets.insert(format!("node:{}", self.id), Default::default());
            Ok(b)
        }
    }

    /// A source taking 60 % of the resolution to answer.
    struct Sleepy;

    #[async_trait]
    impl MetricsSource for Sleepy {
        fn name(&self) -> String {
            "sleepy".into()
        }
        async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let mut b = DataBatch { timestamp, ..Default::default() };
            b.sets.insert("node:sleepy".into(), Default::default());
            Ok(b)
        }
    }

    /// Processors taking 60 % of the resolution, noting the batches they get.
    struct SlowChain(Arc<std::sync::Mutex<Vec<Timestamp>>>);

    impl DataProcessor for SlowChain {
        fn name(&self) -> &'static str {
            "slow_chain"
        }
        fn process(&mut self, batch: DataBatch) -> DataBatch {
            std::thread::sleep(Duration::from_millis(1200));
            self.0.lock().unwrap().push(batch.timestamp);
            batch
        }
    }

    /// Scraping and processing each take 60 % of the resolution: done one after the other, every second tick
    /// was missed; with the processors beside the next scrape, every tick gives a batch, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_whose_scrape_and_processors_outlast_the_resolution_still_runs_every_tick() {
        let resolution = Duration::from_secs(2);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = test_store(resolution);
        let p = test_pipeline(
            Arc::new(StaticProvider(vec![Arc::new(Sleepy)])),
            vec![Box::new(SlowChain(seen.clone()))],
            store.clone(),
            resolution,
            4,
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = tokio::spawn(p.run(stop_rx));
        tokio::time::sleep(Duration::from_secs(13)).await;
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), run).await.expect("the loop stops").unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() >= 5, "batches processed in 13 s at a 2 s resolution: {seen:?}");
        assert!(seen.windows(2).all(|w| w[1] - w[0] == 2000), "a tick was skipped: {seen:?}");
        // The batch in flight at the stop was still stored (by the ingest thread, which ends with the loop).
        let until = Instant::now() + Duration::from_secs(10);
        while store.latest_timestamp() != seen.last().copied() {
            assert!(Instant::now() < until, "the last batch was not stored: {:?}", store.latest_timestamp());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn scrapes_are_bounded_and_all_land() {
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let sources: Vec<Arc<dyn MetricsSource>> = (0..40)
            .map(|id| Arc::new(Slow { id, now: now.clone(), peak: peak.clone() }) as Arc<dyn MetricsSource>)
            .collect();
        let p = test_pipeline(
            Arc::new(StaticProvider(sources)),
            Vec::new(),
            test_store(Duration::from_secs(2)),
            Duration::from_secs(2),
            4,
        );
        let (batch, scraped, _) = p.scrape(1000, tokio::time::Instant::now(), &no_per_source(), &mut 0, None).await;
        assert_eq!(batch.sets.len(), 40, "every source scraped");
        assert_eq!(scraped, 40);
        assert!(peak.load(Ordering::SeqCst) <= 4, "peak {}", peak.load(Ordering::SeqCst));
        assert!(jitter("a", Duration::from_secs(15)) < Duration::from_millis(1500));
    }

    /// Issue 3, "a kubelet that never answers", at the provider level: one of four simulated nodes accepts the
    /// connection and never answers, with a kubelet client timeout of an hour. The round still ends at its
    /// deadline (90% of the 1 s resolution), with the three others' data and one scrape error for the silent node.
    #[tokio::test]
    async fn a_silent_kubelet_costs_only_its_own_sets() {
        use heapster_sim::{SimConfig, Simulation};
        let sim = Simulation::start(SimConfig { nodes: 4, pods_per_node: 2, ..Default::default() }).await.unwrap();
        let uri: heapster_model::SpecUri = format!(
            "kubernetes.summary_api:{}?inClusterConfig=false&kubeletPort={}&kubeletPreferredAddressTypes=InternalIP\
             &kubeletTimeout=1h",
            sim.api_url(),
            sim.nodes[0].addr.port()
        )
        .parse()
        .unwrap();
        use heapster_sources::kubernetes::{Cluster, KubernetesOptions, KubernetesProvider};
        let cluster = Cluster::connect(KubernetesOptions::parse(&uri).unwrap()).await.unwrap();
        let provider = KubernetesProvider::start(&cluster, Default::default()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), provider.ready()).await.unwrap();
        assert_eq!(provider.sources().len(), 4);
        sim.silence_kubelet(2);

        let p = test_pipeline(
            Arc::new(provider),
            Vec::new(),
            test_store(Duration::from_secs(1)),
            Duration::from_secs(1),
            8,
        );
        // Generous: without the round deadline this would wait for the 1 h client timeout.
        let (batch, scraped, _) = tokio::time::timeout(
            Duration::from_secs(30),
            p.scrape(1000, tokio::time::Instant::now(), &no_per_source(), &mut 0, None),
        )
        .await
        .expect("the round ends");
        assert_eq!(scraped, 3, "the silent node is not counted as scraped");
        for node in ["sim-node-0", "sim-node-1", "sim-node-3"] {
            assert!(batch.sets.contains_key(&format!("node:{node}")), "{node} missing");
        }
        assert!(!batch.sets.contains_key("node:sim-node-2"));
        let pods = batch.sets.keys().filter(|k| k.contains("/pod:") && !k.contains("/container:")).count();
        assert_eq!(pods, 6, "two pods from each answering node");
        let errors =
            |n: &str| p.metrics.scrape_errors.get_or_create(&SourceLabels { source: format!("kubelet:{n}") }).get();
        assert_eq!(errors("sim-node-2"), 1);
        assert_eq!(errors("sim-node-0"), 0);
    }

    /// A sharded replica's sinks get no partial roll-ups by default, or get them labelled with its identity; node,
    /// pod and container sets pass unchanged, and the batch is not copied when the sinks are its only owner.
    #[test]
    fn partial_rollups_are_left_out_or_labelled_for_the_sinks() {
        use heapster_model::{MetricValue, keys};
        let mut batch = DataBatch { timestamp: 15_000, ..Default::default() };
        for (key, kind) in [
            (keys::node_key("n1"), MetricSetType::Node),
            (keys::pod_key("default", "web"), MetricSetType::Pod),
            (keys::pod_container_key("default", "web", "nginx"), MetricSetType::PodContainer),
            (keys::namespace_key("default"), MetricSetType::Namespace),
            (keys::cluster_key(), MetricSetType::Cluster),
        ] {
            let mut set = MetricSet::default();
            set.set_kind(kind);
            set.set("cpu/usage_rate", MetricValue::Int(5));
            batch.sets.insert(key, set);
        }
        let batch = Arc::new(batch);
        let kinds = |b: &DataBatch| b.sets.values().map(|s| s.set_type().unwrap().to_owned()).collect::<Vec<_>>();

        let whole = SinkRollups::Whole.for_sinks(batch.clone());
        assert!(Arc::ptr_eq(&whole, &batch));
        assert!(SinkRollups::Whole.describe().is_none());

        let omitted = SinkRollups::Omitted.for_sinks(Arc::new((*batch).clone()));
        let mut left = kinds(&omitted);
        left.sort();
        assert_eq!(left, ["node", "pod", "pod_container"]);

        let unique = Arc::new((*batch).clone());
        let before = Arc::as_ptr(&unique);
        let labelled = SinkRollups::Labelled("heapster-1".into()).for_sinks(unique);
        assert_eq!(Arc::as_ptr(&labelled), before, "changed in place");
        assert_eq!(labelled.sets.len(), 5);
        for (key, set) in &labelled.sets {
            let shard = set.labels.get_str(heapster_model::labels::SHARD);
            let rollup = key == "cluster" || !key.contains('/') && key.starts_with("namespace:");
            assert_eq!(shard, rollup.then_some("heapster-1"), "{key}");
            assert_eq!(set.get("cpu/usage_rate"), Some(MetricValue::Int(5)));
        }
        // A batch still held elsewhere is copied, not changed under its other owner.
        let copy = SinkRollups::Labelled("heapster-1".into()).for_sinks(batch.clone());
        assert!(copy.sets["cluster"].labels.get(heapster_model::labels::SHARD).is_some());
        assert!(batch.sets.values().all(|s| s.labels.get(heapster_model::labels::SHARD).is_none()));
        assert!(SinkRollups::Labelled("heapster-1".into()).describe().unwrap().contains("shard=heapster-1"));
    }

    /// A node with one pod of two containers, every set of the kind its key says.
    struct PodNode;

    #[async_trait]
    impl MetricsSource for PodNode {
        fn name(&self) -> String {
            "pod-node".into()
        }
        async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
            use heapster_model::keys;
            let mut b = DataBatch { timestamp, ..Default::default() };
            for (key, kind) in [
                (keys::node_key("n1"), MetricSetType::Node),
                (keys::pod_key("default", "web"), MetricSetType::Pod),
                (keys::pod_container_key("default", "web", "nginx"), MetricSetType::PodContainer),
                (keys::pod_container_key("default", "web", "sidecar"), MetricSetType::PodContainer),
            ] {
                let mut set = MetricSet { create_time: 1, scrape_time: timestamp, ..Default::default() };
                set.set_kind(kind);
                set.set("cpu/usage", heapster_model::MetricValue::Int(timestamp));
                b.sets.insert(key, set);
            }
            Ok(b)
        }
    }

    /// Runs on the whole batch and notes the kinds of the sets it gets; says whether it needs containers, pods.
    struct Kinds {
        needs_containers: bool,
        needs_pods: bool,
        seen: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    }

    impl DataProcessor for Kinds {
        fn name(&self) -> &'static str {
            "kinds"
        }
        fn process(&mut self, batch: DataBatch) -> DataBatch {
            let kinds = batch.sets.values().map(|s| s.set_type().unwrap_or_default().to_owned()).collect();
            self.seen.lock().unwrap().push(kinds);
            batch
        }
        fn needs_container_sets(&self) -> bool {
            self.needs_containers
        }
        fn needs_pod_sets(&self) -> bool {
            self.needs_pods
        }
    }

    /// With no sink and no later processor reading them, containers and pods go to the store from the scrape and
    /// not through the round's batch; every round still stores and counts every set. A processor that needs one
    /// kind gets that kind in the batch as before, and every processor gets all with `--store_whole_rounds`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn containers_and_pods_go_to_the_store_from_the_scrape_unless_a_processor_needs_them() {
        let cases =
            [(false, false, true), (true, false, true), (false, true, true), (true, true, true), (false, false, false)];
        for (needs_containers, needs_pods, stream) in cases {
            let resolution = Duration::from_secs(1);
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let store = test_store(resolution);
            let mut p = test_pipeline(
                Arc::new(StaticProvider(vec![Arc::new(PodNode)])),
                vec![Box::new(Kinds { needs_containers, needs_pods, seen: seen.clone() })],
                store.clone(),
                resolution,
                4,
            );
            p.stream_sets = stream;
            let batch_sets = p.metrics.batch_sets.clone();
            let (stop_tx, stop_rx) = watch::channel(false);
            let run = tokio::spawn(p.run(stop_rx));
            tokio::time::sleep(Duration::from_millis(3500)).await;
            stop_tx.send(true).unwrap();
            tokio::time::timeout(Duration::from_secs(10), run).await.expect("the loop stops").unwrap();
            let seen = seen.lock().unwrap().clone();
            assert!(seen.len() >= 2, "rounds processed: {seen:?}");
            let count = |kinds: &Vec<String>, kind: &str| kinds.iter().filter(|k| *k == kind).count();
            let containers = if needs_containers || !stream { 2 } else { 0 };
            let pods = usize::from(needs_pods || !stream);
            assert!(
                seen.iter().all(|k| count(k, "pod_container") == containers
                    && count(k, "pod") == pods
                    && k.len() == containers + pods + 1),
                "{needs_containers} {needs_pods} {stream}: {seen:?}"
            );
            assert_eq!(batch_sets.get(), 4, "the round's sets, wherever they went");
            let until = Instant::now() + Duration::from_secs(10);
            while store.latest_batch().map(|b| b.sets.len()) != Some(4) {
                assert!(Instant::now() < until, "the last round was not stored whole");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let latest = store.latest_batch().unwrap();
            let key = heapster_model::keys::pod_container_key("default", "web", "nginx");
            let points = store.points(&key, "cpu/usage", &Default::default(), None, None).unwrap();
            assert_eq!(points.len(), seen.len(), "one point a round: {points:?}");
            assert_eq!(latest.sets[&key].get("cpu/usage"), Some(heapster_model::MetricValue::Int(latest.timestamp)));
            assert_eq!(store.stats().out_of_order, 0);
        }
    }

    /// Batches handed to the ingest thread land in the store in order, none out of order, and handing one over
    /// waits for the previous ingest; the thread ends with the pipeline.
    #[tokio::test]
    async fn the_ingest_thread_stores_every_batch_in_order() {
        let store = Arc::new(Store::new(heapster_store::StoreConfig {
            window: Duration::from_secs(600),
            resolution: Duration::from_secs(1),
        }));
        let mut ingester = Ingester::default();
        for ts in 1..=20 {
            let mut batch = DataBatch { timestamp: ts * 1000, ..Default::default() };
            let mut set = MetricSet::default();
            set.set_kind(MetricSetType::Node);
            set.set("cpu/usage", heapster_model::MetricValue::Int(ts));
            batch.sets.insert("node:a".into(), set);
            ingester.ingest(&store, Arc::new(batch)).await;
            // The rendezvous: the thread took this batch, so every earlier one is in (the first may still be on
            // its way: the thread need not have stored it yet).
            assert!(ts == 1 || store.latest_timestamp() >= Some((ts - 1) * 1000), "batch {}", ts - 1);
        }
        assert!(Arc::strong_count(&store) == 2, "the thread holds the store");
        drop(ingester);
        let until = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&store) > 1 {
            assert!(Instant::now() < until, "the ingest thread did not end with its sender");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(store.latest_timestamp(), Some(20_000));
        let stats = store.stats();
        assert_eq!((stats.out_of_order, stats.points), (0, 20), "{stats:?}");
    }

    #[test]
    fn ticks_are_aligned_to_the_resolution() {
        let (wait, next) = next_tick(Duration::from_secs(15), None);
        assert_eq!(next % 15_000, 0);
        assert!(wait <= Duration::from_secs(15));
    }

    /// A round that ran past the next tick by less than half a resolution is followed at once by that tick's
    /// round, not by the one after it: no tick is lost. Further behind, the next grid point is taken.
    #[test]
    fn a_tick_passed_a_moment_ago_runs_at_once() {
        let res = Duration::from_secs(10);
        let ms = Duration::from_millis;
        // The round stamped 100 s ran past the tick at 110 s: 1 s late, that tick runs at once.
        assert_eq!(next_tick_at(111_000, res, Some(100_000)), (Duration::ZERO, 110_000));
        // 6 s late (more than half a resolution): the tick at 120 s, in 4 s.
        assert_eq!(next_tick_at(116_000, res, Some(100_000)), (ms(4000), 120_000));
        // On time (the last round was the tick just passed): the next grid point.
        assert_eq!(next_tick_at(111_000, res, Some(110_000)), (ms(9000), 120_000));
        // Long behind (a stall of minutes): the grid point, not a burst of rounds to catch up.
        assert_eq!(next_tick_at(711_000, res, Some(100_000)), (ms(9000), 720_000));
        assert_eq!(next_tick_at(111_000, res, None), (ms(9000), 120_000));
        // The clock stepped back half a second after the round stamped 110 s: the tick after it, not 110 s again.
        assert_eq!(next_tick_at(109_500, res, Some(110_000)), (ms(10_500), 120_000));
    }

    /// Up to 5 s the round's deadline is 90 % of the resolution and requests end at 85 %; beyond, the margins
    /// reach 750 and 250 ms and stay there.
    #[test]
    fn round_deadlines_leave_a_bounded_margin_before_the_next_tick() {
        let ms = Duration::from_millis;
        assert_eq!(round_deadlines(ms(1000)), (ms(900), ms(850)));
        assert_eq!(round_deadlines(ms(5000)), (ms(4500), ms(4250)));
        assert_eq!(round_deadlines(ms(15_000)), (ms(14_250), ms(14_000)));
        assert_eq!(round_deadlines(ms(60_000)), (ms(59_250), ms(59_000)));
    }
}
