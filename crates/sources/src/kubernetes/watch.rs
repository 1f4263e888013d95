//! Following one kind of object for as long as heapster runs: list, then watch, and list again when the watch
//! cannot go on.
//!
//! kube-rs's own backoff (`default_backoff`, client-go's: up to 30 s) waits after every error, the 410 Gone that
//! follows an API server outage included: the watches then slept out the backoff built up while the server was
//! down, and a new pod or label was missing for about a minute after it came back. Here a 410 re-lists at once,
//! any answer that carries objects resets the backoff, and the backoff stops at a few seconds: heapster is one
//! client (not a fleet of kubelets), so retrying every few seconds during an outage costs the server nothing.

use futures_util::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use std::time::Duration;

/// The first retry's delay; it doubles with each failure in a row up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// The longest wait between two attempts, which bounds how late heapster notices that the server is back.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(4);

/// Delays between attempts that fail in a row.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt, counting this failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = FIRST_DELAY.saturating_mul(1 << self.failures.min(8)).min(MAX_DELAY);
        self.failures += 1;
        delay
    }

    /// Failures in a row so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

/// Whether the API server said the resource version is too old (410 Gone / Expired): only a new list helps, and
/// the server, which just answered, is up.
fn is_gone(e: &watcher::Error) -> bool {
    let api_code = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 410);
    match e {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            api_code(e)
        }
        _ => false,
    }
}

/// Watches `api` until the process ends, handing every event to `apply`; `what` names the kind in logs.
///
/// A 410 starts a fresh watcher (a new list: `apply` sees `Init` ... `InitDone` again) without waiting; other
/// errors wait the backoff, logged at warn the first time and once more when the watch works again.
pub(crate) fn follow<K>(api: Api<K>, what: &'static str, mut apply: impl FnMut(watcher::Event<K>) + Send + 'static)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        'relist: loop {
            let mut stream = std::pin::pin!(watcher(api.clone(), watcher::Config::default()));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        if backoff.failures() > 0 {
                            tracing::info!("watching {what} works again after {} failed attempts", backoff.failures());
                            backoff.reset();
                        }
                        apply(event);
                    }
                    Err(e) if is_gone(&e) => {
                        tracing::info!("watching {what}: {e}; the resource version expired, listing again now");
                        backoff.reset();
                        continue 'relist;
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        if backoff.failures() == 1 {
                            tracing::warn!(
                                "watching {what}: {e}; retrying every {MAX_DELAY:?} at most (said again when it works)"
                            );
                        } else {
                            tracing::debug!("watching {what}: {e}; retrying in {delay:?}");
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
            // The watcher stream never ends by itself; if it did, start over after a pause.
            tokio::time::sleep(backoff.next_delay()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays[0], FIRST_DELAY);
        assert_eq!(delays[1], FIRST_DELAY * 2);
        assert_eq!(delays[5], MAX_DELAY);
        b.reset();
        assert_eq!(b.next_delay(), FIRST_DELAY);
    }

    #[test]
    fn a_410_in_any_form_is_gone() {
        let status = |code| kube::core::Status { code, ..Default::default() };
        assert!(is_gone(&watcher::Error::WatchError(Box::new(status(410)))));
        assert!(!is_gone(&watcher::Error::WatchError(Box::new(status(500)))));
        let api = |code| kube::Error::Api(Box::new(status(code)));
        assert!(is_gone(&watcher::Error::WatchStartFailed(api(410))));
        assert!(is_gone(&watcher::Error::InitialListFailed(api(410))));
        assert!(!is_gone(&watcher::Error::WatchFailed(api(503))));
    }
}
