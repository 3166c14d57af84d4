//! The storage's feed announcements (this process's writer's, and on PostgreSQL other server
//! processes') to this process's live listeners.

use crate::{AppState, FeedAdvanced, store};

/// Relays the storage's feed announcements to this process's live channel.
pub fn spawn(state: &AppState) -> tokio::task::JoinHandle<()> {
    let mut advanced = state.db.feed_advances();
    let state = state.clone();
    tokio::spawn(async move {
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
    })
}
