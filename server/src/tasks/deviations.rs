//! The watch on the service standard (`crate::deviations::watch`), once a minute on the state's
//! clock. Every replica watches; an episode opens and closes once whichever writes it first.

use std::time::Duration;

use crate::AppState;

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = state.clock.now_ms();
            match crate::deviations::watch(&state, now).await {
                Ok((0, 0)) => {}
                Ok((opened, closed)) => tracing::info!(opened, closed, "service standard: deviation episodes"),
                Err(e) => tracing::warn!(code = e.code, "service standard watch failed"),
            }
        }
    })
}
