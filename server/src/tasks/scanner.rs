//! The scanner: the closed loop's auto-confirmation and escalation's SLA scan, on a timer and
//! soon after any change.

use std::time::Duration;

use crate::AppState;

/// After a change, the scanner looks within about this long (so the desk's colours and the
/// dashboards follow)…
const AFTER_CHANGE: Duration = Duration::from_secs(1);
/// …but no more often than this under a stream of changes: an order changed many times in
/// between is looked at once.
const BETWEEN_SCANS: Duration = Duration::from_secs(5);
/// While more orders are due than one scan takes (a backlog), the next scan follows after this
/// pause, which leaves the database's writer to the devices in between.
const BACKLOG_PAUSE: Duration = Duration::from_millis(200);

/// The server's scanner: every `every`, and about a second after the organization's feed
/// advances, on the state's clock, the closed loop's [`crate::closed_loop::tick`] and escalation's
/// [`crate::escalation::tick`] (which also materializes what the desk and dashboards read),
/// and again after a short pause while more is due than one scan takes, until the task is
/// aborted.
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut changes = state.live.subscribe();
        let mut last_scan = tokio::time::Instant::now();
        let mut backlog = false;
        loop {
            if backlog {
                tokio::time::sleep(BACKLOG_PAUSE).await;
            } else {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = changes.recv() => {
                        let since = last_scan.elapsed();
                        tokio::time::sleep(AFTER_CHANGE.max(BETWEEN_SCANS.saturating_sub(since))).await;
                        // Everything that arrived meanwhile is covered by this one scan.
                        changes = changes.resubscribe();
                    }
                }
            }
            last_scan = tokio::time::Instant::now();
            let now = state.clock.now_ms();
            if let Err(e) = crate::closed_loop::tick(&state, now).await {
                tracing::warn!(code = e.code, "closed-loop scan failed");
            }
            backlog = match crate::escalation::scan(&state, now).await {
                Ok(scanned) => scanned.full,
                Err(e) => {
                    tracing::warn!(code = e.code, "escalation scan failed");
                    false
                }
            };
        }
    })
}
