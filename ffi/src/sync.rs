//! Sync over the host's transport: the rounds of requests and responses sync-core drives.

use super::*;

#[uniffi::export]
impl Loopwork {
    // ----- sync -----

    /// Pushes local changes and pulls what is new, in as many round trips as it takes. Safe to
    /// call at any time from any thread; a second call waits for the first. If the transport
    /// fails midway, what was already applied stays applied and the next call continues.
    pub fn sync(&self) -> Result<SyncReport, LoopworkError> {
        let _sync = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = SyncReport {
            round_trips: 0,
            acknowledged: 0,
            updated_order_ids: Vec::new(),
            revoked: Vec::new(),
            pending_uploads: 0,
        };
        let mut news: Vec<String> = Vec::new();
        let result = self.sync_rounds(&mut report, &mut news);
        if !news.is_empty() {
            self.notify(news, true);
        }
        result.map(|()| report)
    }

    /// Local changes waiting for upload, the last completed sync, whether signed in.
    pub fn sync_status(&self) -> Result<SyncStatus, LoopworkError> {
        let state = self.lock();
        match state.as_ref() {
            Some(open) => Ok(SyncStatus {
                signed_in: open.saved.token.is_some(),
                pending_uploads: open.replica.pending_count()? as u64,
                last_sync_ms: open.saved.last_sync_ms,
            }),
            None => Ok(SyncStatus { signed_in: false, pending_uploads: 0, last_sync_ms: None }),
        }
    }
}

impl Loopwork {
    fn sync_rounds(&self, report: &mut SyncReport, news: &mut Vec<String>) -> Result<(), LoopworkError> {
        let mut seen = std::collections::HashSet::new();
        let mut session = SyncSession::new(self.with_open(|open| Ok(open.reconcile_next))?);
        loop {
            // Build the request under the lock, send it without.
            let (url, token, body) = {
                let mut state = self.lock();
                let open = state.as_mut().ok_or_else(LoopworkError::not_signed_in)?;
                let token = open.saved.token.clone().ok_or_else(LoopworkError::not_signed_in)?;
                let request = match session.next_request(&open.replica)? {
                    Next::Send(request) => request,
                    Next::Done => {
                        open.saved.last_sync_ms = Some(open.replica.now_ms());
                        write_session(&self.dir, &open.saved)?;
                        report.pending_uploads = open.replica.pending_count()? as u64;
                        return Ok(());
                    }
                    Next::Unsettled => {
                        return Err(LoopworkError::Offline {
                            detail: format!("the sync did not settle in {} round trips", session.round_trips()),
                        });
                    }
                };
                (format!("{}/sync/v1", open.saved.info.server_url), token, request.encode())
            };
            let response = self.post(url, vec![bearer(&token), header("content-type", CONTENT_TYPE)], body)?;
            report.round_trips += 1;
            if response.status != 200 {
                return Err(self.refusal(&response));
            }
            let decoded = SyncResponse::decode(&response.body, &Limits::default())
                .map_err(|e| LoopworkError::Offline { detail: format!("the response did not arrive whole: {e}") })?;
            let mut state = self.lock();
            let open = state.as_mut().ok_or_else(LoopworkError::not_signed_in)?;
            let outcome = session.apply(&mut open.replica, &decoded)?;
            open.reconcile_next = session.reconcile_next();
            report.acknowledged += outcome.acknowledged as u64;
            for id in &outcome.updated {
                if seen.insert(*id) {
                    report.updated_order_ids.push(id.to_string());
                    news.push(id.to_string());
                }
            }
            for r in &outcome.revoked {
                news.push(r.order.to_string());
                report.revoked.push(RevokedOrder { order_id: r.order.to_string(), reason: r.reason.clone() });
            }
        }
    }

    /// The error for a non-200 sync response. A refused token signs the device out (its data
    /// stays).
    fn refusal(&self, response: &HttpResponse) -> LoopworkError {
        let frame = ErrorFrame::decode(&response.body).ok();
        match (response.status, frame) {
            (401, frame) => {
                if let Some(open) = self.lock().as_mut() {
                    open.saved.token = None;
                    let _ = write_session(&self.dir, &open.saved);
                }
                LoopworkError::NotSignedIn {
                    detail: frame.map(|f| f.message_en).unwrap_or_else(|| "the server refused the token".into()),
                }
            }
            (426, frame) => LoopworkError::UpgradeRequired {
                message_en: frame.as_ref().map(|f| f.message_en.clone()).unwrap_or_else(|| "upgrade required".into()),
                message_zh: frame.map(|f| f.message_zh).unwrap_or_else(|| "请升级应用".into()),
            },
            (403, Some(f)) => {
                LoopworkError::NotPermitted { code: f.code, message_en: f.message_en, message_zh: f.message_zh }
            }
            (_, Some(f)) => {
                LoopworkError::Rejected { code: f.code, message_en: f.message_en, message_zh: f.message_zh }
            }
            (_, None) => json_error(response),
        }
    }
}
