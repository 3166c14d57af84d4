//! Webhook deliveries from the outbox (see `webhooks::deliver`), on a timer.

use std::time::Duration;

use crate::AppState;

/// Delivers every `every` until aborted.
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = crate::webhooks::client();
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = crate::webhooks::deliver(&state, &client, state.clock.now_ms()).await {
                tracing::warn!(code = e.code, "webhook delivery failed");
            }
        }
    })
}
