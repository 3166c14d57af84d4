//! The check after a start of orders stored before snapshot heads were kept.

use crate::AppState;

/// Checks, in the background after a start, every order stored before snapshot heads were kept:
/// those that do not load are quarantined (see `Database::load_stored`).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut checked = 0;
        loop {
            match state.db.check_stored(200, state.clock.now_ms()).await {
                Ok((0, _)) => break,
                Ok((n, quarantined)) => {
                    checked += n;
                    for order in quarantined {
                        tracing::error!(%order, "an order's stored history does not load: quarantined");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the stored-order check stopped");
                    break;
                }
            }
        }
        tracing::info!(checked, "stored orders checked");
    })
}
