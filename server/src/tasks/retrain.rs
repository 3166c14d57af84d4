//! Scheduled retraining of the organizations' assistant models (`serve --triage-retrain-every`):
//! each round retrains every organization with enough new labels; a model worse on the frozen
//! set than the one in use is kept but not used. Every replica started with the flag trains on
//! its own schedule (the CPU is spent once per replica); the same labels give the same model,
//! stored once.

use std::time::Duration;

use crate::AppState;

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match crate::triage::retrain_due(&state, &loopwork_triage::TrainOptions::default()).await {
                Ok(done) => {
                    for (org, r) in done {
                        tracing::info!(%org, version = %r.version, labels = r.labels, activated = r.activated,
                            seconds = r.seconds, "triage model retrained");
                    }
                }
                Err(e) => tracing::error!(error = %e, "triage retraining failed"),
            }
        }
    })
}
