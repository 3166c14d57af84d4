//! `GET /api/v1/deviations` (office staff): the service standard's figures now, per project
//! (and per project and category for deadlines), with the episodes open and those closed in the
//! last 30 days (docs/incidents.md). A dispatcher bound to projects sees their projects' only.

use axum::Json;
use axum::extract::State;
use loopwork_sync_core::deviation::Standard;
use schemars::JsonSchema;
use serde::Serialize;

use crate::AppState;
use crate::auth::{Authenticated, require_staff};
use crate::deviations::FigureNow;
use crate::error::ApiError;
use crate::store::DeviationEpisode;

/// The watch on the service standard.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeviationsNow {
    /// The organization's standard (`/api/v1/settings/service-standard`).
    pub standard: Standard,
    /// The window the figures cover: `[from, to]` (ms).
    pub from: i64,
    pub to: i64,
    pub figures: Vec<FigureNow>,
    /// Open episodes and those closed in the last 30 days, newest first.
    pub episodes: Vec<DeviationEpisode>,
}

pub async fn deviations(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<DeviationsNow>, ApiError> {
    require_staff(&principal, "office staff read the service standard's figures", "只有客服人员可以查看服务标准监测")?;
    let now = state.clock.now_ms();
    // Every open episode, and those closed in the last 30 days: the figures' state and the list.
    let mut episodes = state.db.deviation_episodes(&principal.org, now - 30 * 86_400_000).await?;
    let (standard, mut figures) = crate::deviations::figures(&state, &principal.org, now, &episodes).await?;
    if let Some(projects) = state.db.served_projects(&principal).await? {
        figures.retain(|f| projects.contains(&f.project));
        episodes.retain(|e| projects.contains(&e.project));
    }
    Ok(Json(DeviationsNow { from: now - standard.window_ms(), to: now, standard, figures, episodes }))
}
