//! The eventer's source: every `core/v1` Event version the API server makes, in resource-version order, resumed
//! from a given resource version.
//!
//! Heapster's eventer listed, threw the list away ("do not write old events") and watched from the list's
//! version; a broken watch listed again and so re-sent nothing but silently lost whatever happened in between,
//! and every restart lost everything since the last push (kubernetes-retired/heapster #224, #1137, #1413). Here
//! the watch resumes from the last version seen (which bookmarks keep fresh, so that a quiet cluster's version
//! does not fall behind compaction); only when the API server answers `410 Gone` (that version is compacted
//! away) does it list again, and then it yields the listed events newer than what it had seen, oldest first.
//! Versions that were replaced and compacted while nobody watched are gone from the API server itself: the
//! newest version of every event survives, the ones in between cannot be recovered by any client.

use super::watch::Backoff;
use futures_util::StreamExt;
use heapster_model::events::{Change, Event, EventVersion};
use kube::core::params::{ListParams, WatchParams};
use kube::core::{ObjectList, Request, WatchEvent};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the watch yields.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem {
    /// A new version of an event.
    Version(EventVersion),
    /// The API server is at this resource version with nothing more to ship before it (a bookmark, a deleted
    /// event, the end of a list): a cursor may move here.
    Reached(u64),
}

impl EventItem {
    /// The resource version the item brings a reader to.
    pub fn resource_version(&self) -> Option<u64> {
        match self {
            EventItem::Version(v) => v.event.resource_version(),
            EventItem::Reached(rv) => Some(*rv),
        }
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From now: list once for the current version, ship none of the listed events (Heapster's behaviour on a
    /// first start, so that a new eventer does not flood its sinks with the cluster's whole history).
    Now,
    /// After this resource version: everything newer, as watch replays it or, if compacted, as a list has it.
    After(u64),
}

/// Lists and watches Events in every namespace and sends each item, in order, into `out`. A full channel holds
/// the watch back (the API server buffers, then ends the watch, which resumes later from the last version
/// sent). Returns when `out` is closed.
pub async fn follow(client: kube::Client, start: Start, out: mpsc::Sender<EventItem>) {
    let mut follower = Follower { client, seen: None, backoff: Backoff::default() };
    if let Start::After(rv) = start {
        follower.seen = Some(rv);
    }
    follower.run(out).await
}

/// Watches run this long before the API server ends them and a new one starts (kube-apiserver caps them at
/// `--min-request-timeout` to twice that, 1800 s to 3600 s by default).
const WATCH_SECONDS: u32 = 290;
/// Events per list page.
const PAGE: u32 = 500;

struct Follower {
    client: kube::Client,
    /// The newest resource version sent, which the next watch resumes from.
    seen: Option<u64>,
    backoff: Backoff,
}

/// Why a watch or list stopped.
enum Stop {
    /// `out` was closed: the reader is gone.
    Closed,
    /// The version to resume from is compacted away: list again.
    Gone,
    /// Anything else; retry after the backoff.
    Failed(String),
}

impl Follower {
    async fn run(&mut self, out: mpsc::Sender<EventItem>) {
        loop {
            let result = match self.seen {
                None => self.list(&out, false).await,
                // A watch from "0" means "from any version": the API server opens with the current events in
                // key order, not version order. From the beginning, then, is a list of everything.
                Some(0) => self.list(&out, true).await,
                Some(rv) => self.watch(rv, &out).await,
            };
            match result {
                Ok(()) => {}
                Err(Stop::Closed) => return,
                Err(Stop::Gone) => {
                    tracing::info!(
                        "events: resource version {} is compacted away; listing to catch up",
                        self.seen.unwrap_or(0)
                    );
                    match self.list(&out, true).await {
                        Ok(()) => {}
                        Err(Stop::Closed) => return,
                        Err(Stop::Gone | Stop::Failed(_)) => wait(&mut self.backoff, "listing events").await,
                    }
                }
                Err(Stop::Failed(e)) => {
                    tracing::warn!("events: {e}");
                    wait(&mut self.backoff, "watching events").await;
                }
            }
        }
    }

    /// Lists every event; with `ship`, sends those newer than `seen` oldest first, then moves to the list's
    /// version.
    async fn list(&mut self, out: &mpsc::Sender<EventItem>, ship: bool) -> Result<(), Stop> {
        let mut items: Vec<Event> = Vec::new();
        let mut token: Option<String> = None;
        let list_rv = loop {
            let mut params = ListParams::default().limit(PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let request = Request::new("/api/v1/events").list(&params).map_err(|e| Stop::Failed(e.to_string()))?;
            let page: ObjectList<Event> = self.client.request(request).await.map_err(|e| stop_of(e, "listing"))?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break page.metadata.resource_version.and_then(|v| v.parse::<u64>().ok()),
            }
        };
        let Some(list_rv) = list_rv else {
            return Err(Stop::Failed("the API server's event list carries no numeric resourceVersion".into()));
        };
        self.backoff.reset();
        if ship && let Some(seen) = self.seen {
            let mut newer: Vec<(u64, Event)> =
                items.into_iter().filter_map(|e| Some((e.resource_version()?, e))).filter(|(v, _)| *v > seen).collect();
            newer.sort_by_key(|(v, _)| *v);
            for (_, event) in newer {
                // A listed event was seen before as an older version when it has happened more than once.
                let change = if event.count > 1 { Change::Modified } else { Change::Added };
                let item = EventItem::Version(EventVersion { change, event: Arc::new(event) });
                out.send(item).await.map_err(|_| Stop::Closed)?;
            }
        }
        self.seen = Some(list_rv);
        out.send(EventItem::Reached(list_rv)).await.map_err(|_| Stop::Closed)
    }

    /// Watches from `from` until the API server ends the watch.
    async fn watch(&mut self, from: u64, out: &mpsc::Sender<EventItem>) -> Result<(), Stop> {
        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
        params.bookmarks = true;
        let request = Request::new("/api/v1/events")
            .watch(&params, &from.to_string())
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let stream = self.client.request_events::<Event>(request).await.map_err(|e| stop_of(e, "watching"))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(next) = stream.next().await {
            let event = next.map_err(|e| stop_of(e, "watching"))?;
            let item = match event {
                WatchEvent::Added(e) => version(Change::Added, e),
                WatchEvent::Modified(e) => version(Change::Modified, e),
                WatchEvent::Deleted(e) => e.resource_version().map(EventItem::Reached),
                WatchEvent::Bookmark(b) => b.metadata.resource_version.parse().ok().map(EventItem::Reached),
                WatchEvent::Error(status) if status.code == 410 => return Err(Stop::Gone),
                WatchEvent::Error(status) => {
                    return Err(Stop::Failed(format!("the watch ended with {} {}", status.code, status.message)));
                }
            };
            self.backoff.reset();
            let Some(item) = item else { continue };
            let Some(rv) = item.resource_version() else { continue };
            // A replay never goes backwards; a version at or below the last one sent was sent already.
            if self.seen.is_some_and(|seen| rv <= seen) {
                continue;
            }
            self.seen = Some(rv);
            out.send(item).await.map_err(|_| Stop::Closed)?;
        }
        Ok(())
    }
}

fn version(change: Change, event: Event) -> Option<EventItem> {
    Some(EventItem::Version(EventVersion { change, event: Arc::new(event) }))
}

/// The pod and node watches' backoff (at most a few seconds), so that the eventer, like them, is back within
/// seconds of an API server outage rather than after the 30 s a longer backoff builds up while the server is down.
async fn wait(backoff: &mut Backoff, doing: &str) {
    let delay = backoff.next_delay();
    tracing::debug!("{doing}: retrying in {delay:?}");
    tokio::time::sleep(delay).await;
}

fn stop_of(e: kube::Error, doing: &str) -> Stop {
    match &e {
        kube::Error::Api(status) if status.code == 410 => Stop::Gone,
        _ => Stop::Failed(format!("{doing} events: {e}")),
    }
}
