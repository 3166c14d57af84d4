//! The preventive maintenance scheduler (`crate::preventive::tick`), at start and then every
//! `every` on the state's clock. Every replica runs it; each occurrence's order is made once
//! whichever reserves it first.

use std::time::Duration;

use crate::AppState;

pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = state.clock.now_ms();
            match crate::preventive::tick(&state, now).await {
                Ok(pass) if pass.made + pass.done + pass.unreadable == 0 => {}
                Ok(pass) => tracing::info!(
                    made = pass.made,
                    done = pass.done,
                    unreadable = pass.unreadable,
                    "preventive maintenance: orders made"
                ),
                Err(e) => tracing::warn!(code = e.code, "preventive maintenance pass failed"),
            }
            match crate::preventive::raise_problems(&state, now).await {
                Ok(0) => {}
                Ok(raised) => tracing::info!(raised, "repeated failures: problem records raised"),
                Err(e) => tracing::warn!(code = e.code, "repeated-failure pass failed"),
            }
        }
    })
}
