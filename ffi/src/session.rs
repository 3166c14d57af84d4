//! Signing in and out, and the session and store kept in the app's directory.

use super::*;

#[uniffi::export]
impl Loopwork {
    /// Opens (or creates) the device's data in `dir`, resuming the session kept there.
    #[uniffi::constructor]
    pub fn open(dir: String, transport: Arc<dyn Transport>) -> Result<Arc<Self>, LoopworkError> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(LoopworkError::storage)?;
        let state = match read_session(&dir)? {
            Some(saved) => Some(open_store(&dir, saved)?),
            None => None,
        };
        Ok(Arc::new(Loopwork {
            dir,
            transport,
            state: Mutex::new(state),
            syncing: Mutex::new(()),
            observer: Mutex::new(None),
            files: attachments::Files::new(),
        }))
    }

    /// Signs in with a login and password: the server registers this device and gives it a
    /// token. Data kept from an earlier session of the same user is resumed; another user's is
    /// wiped first, unless it still holds changes that were never uploaded (then this fails
    /// and nothing changes).
    pub fn sign_in(
        &self,
        server_url: String,
        login: String,
        password: String,
        device_name: String,
    ) -> Result<SessionInfo, LoopworkError> {
        let server_url = server_url.trim_end_matches('/').to_owned();
        if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
            return Err(LoopworkError::invalid("the server URL starts with http:// or https://"));
        }
        let body = serde_json::json!({ "login": login, "password": password, "device_name": device_name });
        let response = self.post(
            format!("{server_url}/api/v1/login"),
            vec![header("content-type", "application/json"), header("accept", "application/json")],
            body.to_string().into_bytes(),
        )?;
        if response.status != 200 {
            return Err(json_error(&response));
        }
        let login: LoginResponse = serde_json::from_slice(&response.body)
            .map_err(|e| LoopworkError::Offline { detail: format!("unexpected login response: {e}") })?;
        let role = Role::from_code(&login.role).map_err(|_| LoopworkError::UpgradeRequired {
            message_en: format!("unknown role {}", login.role),
            message_zh: "未知角色,请升级应用".into(),
        })?;
        let info =
            SessionInfo { server_url, user_id: login.user_id, role, org_id: login.org_id, device_id: login.device_id };
        let mut state = self.lock();
        let kept = match state.take() {
            Some(open) => Some(open),
            None => read_session(&self.dir)?.map(|saved| open_store(&self.dir, saved)).transpose()?,
        };
        let (last_sync_ms, reconcile_next) = match kept {
            Some(open) if open.saved.info.user_id == info.user_id && open.saved.info.server_url == info.server_url => {
                (open.saved.last_sync_ms, open.reconcile_next)
            }
            Some(open) => {
                let unsent = open.replica.pending_count()?;
                let unsent_bytes =
                    open.replica.store().uploads()?.iter().filter(|q| !q.upload.state.is_final()).count();
                if unsent > 0 || unsent_bytes > 0 {
                    *state = Some(open);
                    return Err(LoopworkError::invalid(format!(
                        "this device holds {unsent} changes and {unsent_bytes} attachments of another user that \
                         were never uploaded: sign in as that user and sync, or sign out with wipe"
                    )));
                }
                drop(open);
                wipe_files(&self.dir)?;
                (None, false)
            }
            None => (None, false),
        };
        let saved = SavedSession { info: info.clone(), token: Some(login.token), last_sync_ms };
        write_session(&self.dir, &saved)?;
        let mut open = open_store(&self.dir, saved)?;
        open.reconcile_next = reconcile_next;
        *state = Some(open);
        drop(state);
        // Best effort: the countdowns use the defaults until the next `refresh_settings`.
        let _ = self.refresh_settings();
        Ok(info)
    }

    /// Who is signed in, if anyone.
    pub fn session(&self) -> Option<SessionInfo> {
        self.lock().as_ref().filter(|o| o.saved.token.is_some()).map(|o| o.saved.info.clone())
    }

    /// Signs out. With `wipe`, the device is revoked on the server (best effort) and every local
    /// order, unsent change and the session are deleted. Without it, only the token is
    /// forgotten: the orders stay for the same user's next sign-in.
    pub fn sign_out(&self, wipe: bool) -> Result<(), LoopworkError> {
        let _sync = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.lock();
        if !wipe {
            if let Some(open) = state.as_mut() {
                open.saved.token = None;
                write_session(&self.dir, &open.saved)?;
            }
            return Ok(());
        }
        if let Some(open) = state.take()
            && let Some(token) = &open.saved.token
        {
            let url = format!("{}/api/v1/devices/{}/revoke", open.saved.info.server_url, open.saved.info.device_id);
            // Best effort: a lost network must not keep a user from wiping their phone.
            let _ = self.send("POST", url, vec![bearer(token)], Vec::new());
        }
        wipe_files(&self.dir)
    }

    pub fn set_observer(&self, observer: Option<Arc<dyn ChangeObserver>>) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = observer;
    }
}

pub(crate) fn open_store(dir: &Path, saved: SavedSession) -> Result<Open, LoopworkError> {
    let user: UserId =
        saved.info.user_id.parse().map_err(|_| LoopworkError::storage("the saved session is damaged"))?;
    let device: DeviceId =
        saved.info.device_id.parse().map_err(|_| LoopworkError::storage("the saved session is damaged"))?;
    let store = SqliteStore::open(dir.join(STORE_FILE))?;
    let replica = Replica::new(store, Identity::new(user, saved.info.role, device), SystemClock);
    // Settings that no longer parse (an older or damaged file) fall back to the defaults.
    let sla = std::fs::read(dir.join(SLA_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<BookJson>(&bytes).ok())
        .and_then(|json| book_from_json(&json).ok())
        .unwrap_or_else(SlaBook::defaults);
    Ok(Open { saved, replica, sla, reconcile_next: false })
}

pub(crate) fn read_session(dir: &Path) -> Result<Option<SavedSession>, LoopworkError> {
    match std::fs::read(dir.join(SESSION_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LoopworkError::storage(format!("the saved session is damaged: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoopworkError::storage(e)),
    }
}

pub(crate) fn write_session(dir: &Path, saved: &SavedSession) -> Result<(), LoopworkError> {
    write_file(dir, SESSION_FILE, &serde_json::to_vec(saved).map_err(LoopworkError::storage)?)
}

/// Writes a file atomically: a new file, synced, renamed over the old one.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LoopworkError> {
    write_atomically(&dir.join(name), bytes)
}

/// The suffix of a file being written, before it is renamed over its name.
pub(crate) const WRITING: &str = "tmp";

/// Writes a whole file or nothing: a temporary beside it (`{name}.tmp`), synced, renamed over,
/// the directory synced (else the rename may not survive a power loss).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoopworkError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{WRITING}"));
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(LoopworkError::storage)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(LoopworkError::storage)?;
    std::fs::rename(&tmp, path).map_err(LoopworkError::storage)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(LoopworkError::storage)?;
    }
    Ok(())
}

pub(crate) fn wipe_files(dir: &Path) -> Result<(), LoopworkError> {
    for name in
        [SESSION_FILE, STORE_FILE, SLA_FILE, "loopwork.db-wal", "loopwork.db-shm", "session.json.tmp", "sla.json.tmp"]
    {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LoopworkError::storage(e)),
        }
    }
    match std::fs::remove_dir_all(dir.join("attachments")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LoopworkError::storage(e)),
    }
}
