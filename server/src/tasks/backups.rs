//! Scheduled backups of the SQLite database (`serve --backup-dir`): one every `every` (the
//! first one `every` after the start), each verified before it gets its name, then the oldest
//! beyond `keep` deleted. A failed backup is logged and counted (`backups_total{outcome="failed"}`)
//! and tried again at the next tick; the last good ones stay.

use crate::AppState;
use crate::backup::{self, Schedule};

pub fn spawn(state: AppState, schedule: Schedule) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + schedule.every, schedule.every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match backup::backup(&schedule.database, &schedule.dir, state.clock.now_ms()).await {
                Ok(written) => {
                    state.metrics.backups.with_label_values(&["written"]).inc();
                    tracing::info!(
                        path = %written.path.display(),
                        bytes = written.bytes,
                        seconds = written.seconds,
                        orders = written.counts.orders,
                        "backup written and verified"
                    );
                    match backup::prune(&schedule.dir, schedule.keep) {
                        Ok(deleted) if !deleted.is_empty() => {
                            tracing::info!(deleted = deleted.len(), "old backups deleted")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "old backups not deleted"),
                    }
                }
                Err(e) => {
                    state.metrics.backups.with_label_values(&["failed"]).inc();
                    tracing::error!(error = %e, "backup failed");
                }
            }
        }
    })
}
