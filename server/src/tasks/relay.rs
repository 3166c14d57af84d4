//! Pushes through other server processes (PostgreSQL's announcements) reach this process's live
//! listeners too.

use crate::{AppState, FeedAdvanced, store};

/// Relays other servers' feed announcements to this process's live channel, if the store has
/// other servers (PostgreSQL); `None` otherwise.
pub fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let mut advanced = state.db.other_servers_advanced()?;
    let state = state.clone();
    Some(tokio::spawn(async move {
        loop {
            match advanced.recv().await {
                Ok(store::Announced { org, seq: Some(seq) }) => {
                    let _ = state.live.send(FeedAdvanced { org, seq });
                }
                Ok(store::Announced { org, seq: None }) => {
                    if let Ok(seq) = state.db.latest_seq(&org).await {
                        let _ = state.live.send(FeedAdvanced { org, seq });
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}
