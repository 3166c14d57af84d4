//! Deviations from the service standard watched live (docs/incidents.md): once a minute, each
//! organization's figures (response within its minutes, satisfaction, deadlines kept) over its
//! rolling window are judged by sync-core's `deviation::Standard`; a figure below its target
//! opens an episode (its office roles notified, the webhooks told `deviation.opened`), the
//! episode closes when the figure is back above the target by the margin
//! (`deviation.recovered`). Once per episode, whichever replica writes it first.

use loopwork_sync_core::Role;
use loopwork_sync_core::deviation::{Judgement, Measure, Standard};

use crate::AppState;
use crate::error::ApiError;
use crate::settings::{self, Readers, Setting};
use crate::store::{DeviationChanges, DeviationEpisode, ScopedFigure};

impl Setting for Standard {
    const NAME: &'static str = "service-standard";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the service standard", "只有管理员可以修改服务标准");

    fn seeded() -> Self {
        Standard::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        Standard::check(&self)
            .map_err(|e| ApiError::invalid("invalid_service_standard", e.to_string(), "服务标准不合规"))?;
        Ok(self)
    }
}

/// One figure as the dashboard shows it: its target and whether it deviates now.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct FigureNow {
    /// `response`, `satisfaction` or `deadlines`.
    pub measure: String,
    pub project: String,
    /// A per-category measure's category; empty for a project's.
    pub category: String,
    pub met: u64,
    pub orders: u64,
    /// `met / orders` in thousandths (`null` with no orders).
    pub value_permille: Option<i64>,
    pub target_permille: i64,
    /// `deviating` (an episode is open), `below` (below target, too few orders to judge),
    /// `ok`.
    pub state: String,
}

/// The open episode of a figure's measure and scope, if any.
fn episode_of<'a>(episodes: &'a [DeviationEpisode], f: &ScopedFigure) -> Option<&'a DeviationEpisode> {
    episodes.iter().find(|e| {
        e.closed_at.is_none() && e.measure == f.measure.code() && e.project == f.project && e.category == f.category
    })
}

/// The organization's figures now, each with its state under `episodes` (every open one among
/// them).
pub async fn figures(
    state: &AppState,
    org: &str,
    now_ms: i64,
    episodes: &[DeviationEpisode],
) -> Result<(Standard, Vec<FigureNow>), ApiError> {
    let standard = settings::read::<Standard>(&*state.db, org).await?;
    let figures = read(state, org, &standard, now_ms).await?;
    let out = figures
        .into_iter()
        .map(|f| {
            let target = standard.target(f.measure);
            let deviating = episode_of(episodes, &f).is_some();
            let below = f.figure.value().is_some_and(|v| v < target);
            FigureNow {
                measure: f.measure.code().to_owned(),
                project: f.project,
                category: f.category,
                met: f.figure.met,
                orders: f.figure.of,
                value_permille: f.figure.value().map(|_| f.figure.permille()),
                target_permille: (target * 1000.0).round() as i64,
                state: if deviating {
                    "deviating"
                } else if below {
                    "below"
                } else {
                    "ok"
                }
                .to_owned(),
            }
        })
        .collect();
    Ok((standard, out))
}

async fn read(state: &AppState, org: &str, standard: &Standard, now_ms: i64) -> Result<Vec<ScopedFigure>, ApiError> {
    let response_ms = i64::from(standard.response_minutes) * 60_000;
    Ok(state.db.deviation_figures(org, now_ms - standard.window_ms(), now_ms, response_ms).await?)
}

/// One watch of every organization; the episodes (opened, closed).
pub async fn watch(state: &AppState, now_ms: i64) -> Result<(usize, usize), ApiError> {
    let (mut opened, mut closed) = (0, 0);
    for org in state.db.organizations_with_orders().await? {
        // One organization's failure is logged; the others are still watched.
        let (o, c) = match watch_org(state, &org, now_ms).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(code = e.code, "service standard watch of an organization failed");
                continue;
            }
        };
        opened += o;
        closed += c;
        if o + c > 0 {
            let _ = state.notified.send(org.clone());
        }
    }
    Ok((opened, closed))
}

async fn watch_org(state: &AppState, org: &str, now_ms: i64) -> Result<(usize, usize), ApiError> {
    let standard = settings::read::<Standard>(&*state.db, org).await?;
    let figures = read(state, org, &standard, now_ms).await?;
    let open = state.db.deviation_episodes(org, now_ms).await?;
    let mut changes = DeviationChanges {
        notify: standard.notify.iter().filter_map(|r| Role::from_code(r).ok()).collect(),
        targets: Measure::ALL.iter().map(|m| (*m, (standard.target(*m) * 1000.0).round() as i64)).collect(),
        ..DeviationChanges::default()
    };
    for f in figures {
        let episode = episode_of(&open, &f);
        match standard.judge(f.measure, f.figure, episode.is_some()) {
            Judgement::Open => changes.open.push(f),
            Judgement::Close => changes.close.push(f),
            // An open episode's lowest figure, written only when it is lower.
            Judgement::Stay
                if episode.is_some_and(|e| f.figure.of > 0 && f.figure.permille() < e.worst_value_permille) =>
            {
                changes.stay.push(f)
            }
            Judgement::Stay => {}
        }
    }
    if changes.open.is_empty() && changes.close.is_empty() && changes.stay.is_empty() {
        return Ok((0, 0));
    }
    Ok(state.db.apply_deviations(org, &changes, now_ms).await?)
}
