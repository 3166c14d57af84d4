//! `GET /api/v1/live`: server-sent events when the caller's organization's feed advances
//! (`event: feed`) and when this process has just notified its users (`event: notify`: reload
//! the notifications) or a conversation with the owner bot changed (`event: conversation`, its
//! id; to its owner and the office staff serving its project only), until the process shuts
//! down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::Authenticated;
use crate::{AppState, FeedAdvanced};

/// The organization's feed positions as they advance (`event: feed`, the position or `lagged`).
pub async fn live(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let org = principal.org.clone();
    let feed_org = org.clone();
    let feed = BroadcastStream::new(state.live.subscribe()).filter_map(move |event| match event {
        Ok(FeedAdvanced { org: o, seq }) if o == feed_org => {
            Some(Ok(Event::default().event("feed").data(seq.to_string())))
        }
        // A listener that fell behind is told to sync; it loses nothing by it.
        Err(_) => Some(Ok(Event::default().event("feed").data("lagged"))),
        Ok(_) => None,
    });
    let notify = BroadcastStream::new(state.notified.subscribe()).filter_map(move |event| match event {
        Ok(o) if o == org => Some(Ok(Event::default().event("notify").data("sla"))),
        Err(_) => Some(Ok(Event::default().event("notify").data("lagged"))),
        Ok(_) => None,
    });
    // A conversation with the owner bot changed: its owner and the office staff serving its
    // project reload it (the id).
    let (conv_org, user) = (principal.org.clone(), principal.user.to_string());
    let serves: Option<Option<Vec<String>>> = if principal.role.is_staff() {
        // Not known (the database failed): no conversation events rather than too many.
        Some(state.db.served_projects(&principal).await.unwrap_or(Some(Vec::new())))
    } else {
        None
    };
    let staff_sees = move |project: &Option<String>| match &serves {
        Some(None) => true,
        Some(Some(projects)) => project.as_ref().is_some_and(|p| projects.contains(p)),
        None => false,
    };
    let conversations = BroadcastStream::new(state.conversations.subscribe()).filter_map(move |event| match event {
        Ok(c) if c.org == conv_org && (c.owner == user || (c.staff && staff_sees(&c.project))) => {
            Some(Ok(Event::default().event("conversation").data(c.id)))
        }
        Err(_) => Some(Ok(Event::default().event("conversation").data("lagged"))),
        Ok(_) => None,
    });
    let updates = feed.merge(notify).merge(conversations);
    // A shutdown ends the stream (the client reconnects to another process, or to this one once
    // it is back), so that it does not hold the drain.
    let mut draining = state.draining.subscribe();
    let ends = async move {
        let _ = draining.wait_for(|d| *d).await;
    };
    let updates = futures_util::StreamExt::take_until(updates, ends);
    Sse::new(updates).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
