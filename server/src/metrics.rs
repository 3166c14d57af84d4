//! Prometheus metrics, served on their own listener. Labels are routes (the matched pattern)
//! and error codes, never raw URIs, user ids or anything personal.

use std::collections::HashMap;
use std::sync::Mutex;

use loopwork_sync_core::DeviceId;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub sync_requests: IntCounterVec,
    pub sync_bytes: IntCounterVec,
    pub changes_merged: IntCounter,
    pub changes_relayed: IntCounter,
    pub merge_seconds: Histogram,
    pub active_devices: IntGauge,
    pub errors: IntCounterVec,
    /// Pushed changes the server judged invalid and compensated, by reason code.
    pub compensations: IntCounterVec,
    /// Orders the server confirmed for an owner who did not answer.
    pub auto_confirmed: IntCounter,
    /// SLA warnings and breaches recorded, by stage and level.
    pub sla_events: IntCounterVec,
    /// Webhook delivery attempts by outcome (delivered, retry, given_up).
    pub webhook_deliveries: IntCounterVec,
    /// Scheduled backups by outcome (`written`, `failed`).
    pub backups: IntCounterVec,
    /// Orders set aside because their stored history does not load.
    pub orders_quarantined: IntCounter,
    /// Attachments' uploads by outcome: `created`, `deduplicated` (complete at creation),
    /// `completed`, `hash_mismatch`, `unsupported_type`, `ended`.
    pub uploads: IntCounterVec,
    /// Attachments' bytes: `received` (kept in uploads' chunks), `stored` (in new blobs),
    /// `discarded` (read from refused requests: sent for nothing, e.g. from a wrong offset).
    pub upload_bytes: IntCounterVec,
    /// Uploads receiving bytes (or being assembled) in this process now.
    pub uploads_in_progress: IntGauge,
    /// Pictures stripped and thumbnailed, by how long it took.
    pub picture_seconds: Histogram,
    /// Attachments downloaded, by `variant` (original or thumbnail).
    pub downloads: IntCounterVec,
    /// Blobs and abandoned uploads the collector deleted, by `what`.
    pub collected: IntCounterVec,
    /// Each device's last sync; the devices not seen for `ACTIVE_WINDOW_MS` are let go of
    /// when the metrics are read.
    seen: Mutex<HashMap<DeviceId, i64>>,
}

/// A device counts as active for this long after its last sync.
const ACTIVE_WINDOW_MS: i64 = 5 * 60_000;

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("loopwork".into()), None).unwrap_or_default();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by matched route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let sync_requests =
            IntCounterVec::new(Opts::new("sync_requests_total", "Sync round trips by outcome"), &["outcome"])
                .expect("valid metric");
        let sync_bytes =
            IntCounterVec::new(Opts::new("sync_bytes_total", "Sync body bytes by direction"), &["direction"])
                .expect("valid metric");
        let changes_merged = IntCounter::new("changes_merged_total", "Changes new to the server, merged and stored")
            .expect("valid metric");
        let changes_relayed = IntCounter::new(
            "changes_relayed_total",
            "Changes of other devices relayed back by a device after a server restore",
        )
        .expect("valid metric");
        let merge_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "sync_merge_seconds",
                "Time to serve one sync round trip: merge and store its push, then read its pull",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )
        .expect("valid metric");
        let active_devices =
            IntGauge::new("active_devices", "Devices that synced in the last five minutes").expect("valid metric");
        let errors =
            IntCounterVec::new(Opts::new("errors_total", "Refused or failed requests by error code"), &["code"])
                .expect("valid metric");
        let compensations = IntCounterVec::new(
            Opts::new("compensations_total", "Pushed changes judged invalid and compensated, by reason code"),
            &["reason"],
        )
        .expect("valid metric");
        let auto_confirmed =
            IntCounter::new("auto_confirmed_total", "Orders confirmed by the server for owners who did not answer")
                .expect("valid metric");
        let sla_events = IntCounterVec::new(
            Opts::new("sla_events_total", "SLA warnings and breaches recorded, by stage and level"),
            &["stage", "level"],
        )
        .expect("valid metric");
        let webhook_deliveries = IntCounterVec::new(
            Opts::new("webhook_deliveries_total", "Webhook delivery attempts by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let backups = IntCounterVec::new(
            Opts::new("backups_total", "Scheduled backups by outcome (written and verified, or failed)"),
            &["outcome"],
        )
        .expect("valid metric");
        let orders_quarantined = IntCounter::new(
            "orders_quarantined_total",
            "Orders set aside because their stored history does not load (an administrator repairs them)",
        )
        .expect("valid metric");
        let uploads = IntCounterVec::new(Opts::new("uploads_total", "Attachments' uploads by outcome"), &["outcome"])
            .expect("valid metric");
        let upload_bytes = IntCounterVec::new(
            Opts::new("upload_bytes_total", "Attachments' bytes received, stored in new blobs, or discarded"),
            &["kind"],
        )
        .expect("valid metric");
        let uploads_in_progress =
            IntGauge::new("uploads_in_progress", "Uploads receiving bytes or being assembled in this process now")
                .expect("valid metric");
        let picture_seconds = Histogram::with_opts(
            HistogramOpts::new("picture_seconds", "Time to strip a picture's metadata and make its thumbnail")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )
        .expect("valid metric");
        let downloads = IntCounterVec::new(
            Opts::new("downloads_total", "Attachments downloaded, by variant (original or thumbnail)"),
            &["variant"],
        )
        .expect("valid metric");
        let collected = IntCounterVec::new(
            Opts::new("blobs_collected_total", "Unreferenced blobs and abandoned uploads deleted, by what"),
            &["what"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sync_requests.clone()),
            Box::new(sync_bytes.clone()),
            Box::new(changes_merged.clone()),
            Box::new(changes_relayed.clone()),
            Box::new(merge_seconds.clone()),
            Box::new(active_devices.clone()),
            Box::new(errors.clone()),
            Box::new(compensations.clone()),
            Box::new(auto_confirmed.clone()),
            Box::new(sla_events.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(backups.clone()),
            Box::new(orders_quarantined.clone()),
            Box::new(uploads.clone()),
            Box::new(upload_bytes.clone()),
            Box::new(uploads_in_progress.clone()),
            Box::new(picture_seconds.clone()),
            Box::new(downloads.clone()),
            Box::new(collected.clone()),
        ] {
            registry.register(collector).expect("metrics register once");
        }
        Metrics {
            registry,
            http_requests,
            sync_requests,
            sync_bytes,
            changes_merged,
            changes_relayed,
            merge_seconds,
            active_devices,
            errors,
            compensations,
            auto_confirmed,
            sla_events,
            webhook_deliveries,
            backups,
            orders_quarantined,
            uploads,
            upload_bytes,
            uploads_in_progress,
            picture_seconds,
            downloads,
            collected,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records that a device synced now.
    pub fn device_seen(&self, device: DeviceId, now_ms: i64) {
        let Ok(mut seen) = self.seen.lock() else { return };
        seen.insert(device, now_ms);
    }

    /// Brings `orders_quarantined_total` up to the orders quarantined so far (counted where
    /// they are quarantined, in the storage layer).
    pub fn quarantined_so_far(&self, total: u64) {
        let counted = self.orders_quarantined.get();
        if total > counted {
            self.orders_quarantined.inc_by(total - counted);
        }
    }

    /// The metrics as Prometheus reads them, the active devices counted as of `now_ms`.
    pub fn render(&self, now_ms: i64) -> String {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, at| now_ms - *at < ACTIVE_WINDOW_MS);
            self.active_devices.set(seen.len() as i64);
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
