//! The server's background tasks, started by `serve` and stopped with it: the scanner (the
//! closed loop and escalation), webhook deliveries, the stored-order check after a start, and
//! the relay of the storage's feed announcements to the live channel, the watch on the service
//! standard, scheduled backups, scheduled retraining of the assistant's models, and the
//! collection of attachments' unreferenced bytes, and the preventive maintenance scheduler.

pub mod backups;
pub mod collector;
pub mod deliveries;
pub mod deviations;
pub mod maintenance;
pub mod relay;
pub mod retrain;
pub mod scanner;
pub mod stored_check;

use std::time::Duration;

use crate::AppState;

/// The running background tasks.
#[derive(Debug)]
pub struct Tasks {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Starts every background task on the state.
    pub fn start(state: &AppState) -> Tasks {
        let mut handles = vec![
            scanner::spawn(state.clone(), Duration::from_secs(60)),
            stored_check::spawn(state.clone()),
            deliveries::spawn(state.clone(), Duration::from_secs(5)),
            deviations::spawn(state.clone(), Duration::from_secs(60)),
            maintenance::spawn(state.clone(), Duration::from_secs(600)),
            relay::spawn(state),
        ];
        if state.blobs.is_some() {
            handles.push(collector::spawn(state.clone(), Duration::from_secs(3_600)));
        }
        if let Some(every) = state.triage_retrain_every {
            handles.push(retrain::spawn(state.clone(), every));
        }
        if let Some(schedule) = &state.backups {
            handles.push(backups::spawn(state.clone(), schedule.clone()));
        }
        Tasks { handles }
    }

    /// Stops them all.
    pub fn stop(self) {
        for handle in self.handles {
            handle.abort();
        }
    }
}
