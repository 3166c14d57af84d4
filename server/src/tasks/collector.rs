//! Garbage collection of attachments' bytes (docs/attachments.md), hourly: a blob no order
//! references is deleted once its grace period (`serve --blob-grace`, 30 days by default,
//! longer than phones stay offline) has passed since it was stored or lost its last reference;
//! an upload that received nothing for as long is ended and its chunks deleted. A referenced
//! blob is never deleted: the database forgets a blob only while no reference exists, in one
//! statement, before its bytes go. Every replica collects; each blob goes once.

use std::time::Duration;

use crate::AppState;
use crate::store::StoreError;

/// The default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 86_400);
/// Blobs or uploads looked at per round.
const BATCH: i64 = 500;

/// What one collection deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub blobs: usize,
    pub uploads: usize,
}

/// Deletes what the grace period no longer protects at `now_ms`.
pub async fn collect(state: &AppState, now_ms: i64) -> Result<Collected, StoreError> {
    let mut collected = Collected::default();
    let Some(blobs) = &state.blobs else { return Ok(collected) };
    // Orders written before references were kept are read first: until then a blob could look
    // unreferenced that is not.
    while state.db.backfill_references(BATCH).await? {}
    let before = now_ms - state.blob_grace.as_millis() as i64;
    loop {
        let candidates = state.db.collectable_blobs(before, BATCH).await?;
        let round = candidates.len();
        for (org, blob) in candidates {
            if state.db.forget_blob(&org, &blob.sha256, before).await? {
                blobs.delete_blob(&org, &blob.sha256).await;
                collected.blobs += 1;
                state.metrics.collected.with_label_values(&["blob"]).inc();
            }
        }
        if round < BATCH as usize {
            break;
        }
    }
    loop {
        let abandoned = state.db.abandon_uploads(before, BATCH).await?;
        let round = abandoned.len();
        for upload in abandoned {
            for object in &upload.objects {
                blobs.delete_object(object).await;
            }
            if let Err(e) = blobs.delete_upload_objects(&upload.id).await {
                tracing::warn!(error = %e, "an abandoned upload's objects not listed");
            }
            collected.uploads += 1;
            state.metrics.collected.with_label_values(&["upload"]).inc();
        }
        if round < BATCH as usize {
            break;
        }
    }
    Ok(collected)
}

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match collect(&state, state.clock.now_ms()).await {
                Ok(Collected { blobs: 0, uploads: 0 }) => {}
                Ok(Collected { blobs, uploads }) => tracing::info!(blobs, uploads, "attachments collected"),
                Err(e) => tracing::warn!(error = %e, "attachment collection failed"),
            }
        }
    })
}
