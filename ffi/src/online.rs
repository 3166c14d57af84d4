//! What only the server has: the organization's SLA policies and an owner's contact.

use super::*;

#[uniffi::export]
impl Loopwork {
    // ----- settings -----

    /// Fetches the organization's SLA policies, so that countdowns on this phone are the ones
    /// the server enforces, and keeps them for offline use. Call it after signing in and now and
    /// then (daily); until the first call the seeded defaults apply.
    pub fn refresh_settings(&self) -> Result<(), LoopworkError> {
        let (url, token) = self.api("/api/v1/settings/sla")?;
        let response = self.get(url, vec![bearer(&token), header("accept", "application/json")])?;
        if response.status != 200 {
            return Err(json_error(&response));
        }
        let json: BookJson = serde_json::from_slice(&response.body)
            .map_err(|e| LoopworkError::Offline { detail: format!("unexpected settings: {e}") })?;
        let book = book_from_json(&json).map_err(|e| LoopworkError::Rejected {
            code: "invalid_sla".into(),
            message_en: e.to_string(),
            message_zh: "服务器返回的时限策略不合规".into(),
        })?;
        write_file(&self.dir, SLA_FILE, &response.body)?;
        if let Some(open) = self.lock().as_mut() {
            open.sla = book;
        }
        Ok(())
    }

    // ----- the owner's contact (online only: it never leaves the server's tables) -----

    /// The owner's name and phone number, masked (`王*`, `138****5678`). Office staff and
    /// technicians who have been given the order.
    pub fn contact(&self, order_id: String) -> Result<Contact, LoopworkError> {
        let id = parse_order(&order_id)?;
        let (url, token) = self.api(&format!("/api/v1/orders/{id}/contact"))?;
        let response = self.get(url, vec![bearer(&token), header("accept", "application/json")])?;
        contact_of(&response)
    }

    /// The full phone number, to call the owner: office staff, and the technician the order is
    /// assigned to while it is open. The server logs every reveal.
    pub fn reveal_contact(&self, order_id: String) -> Result<Contact, LoopworkError> {
        let id = parse_order(&order_id)?;
        let (url, token) = self.api(&format!("/api/v1/orders/{id}/contact/reveal"))?;
        let response = self.post(url, vec![bearer(&token), header("accept", "application/json")], Vec::new())?;
        contact_of(&response)
    }
}

pub(crate) fn contact_of(response: &HttpResponse) -> Result<Contact, LoopworkError> {
    if response.status != 200 {
        return Err(json_error(response));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| LoopworkError::Offline { detail: format!("unexpected contact response: {e}") })
}

/// The error of a JSON endpoint (`{"error": {"code", "message", "message_zh"}}`).
pub(crate) fn json_error(response: &HttpResponse) -> LoopworkError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
        #[serde(default)]
        message_zh: String,
    }
    let parsed = serde_json::from_slice::<Body>(&response.body).ok().map(|b| b.error);
    match (response.status, parsed) {
        (401, parsed) => LoopworkError::NotSignedIn {
            detail: parsed.map(|p| p.message).unwrap_or_else(|| "the server refused the credentials".into()),
        },
        (426, parsed) => LoopworkError::UpgradeRequired {
            message_en: parsed.as_ref().map(|p| p.message.clone()).unwrap_or_else(|| "upgrade required".into()),
            message_zh: parsed.map(|p| p.message_zh).unwrap_or_else(|| "请升级应用".into()),
        },
        (403, Some(p)) => LoopworkError::NotPermitted { code: p.code, message_en: p.message, message_zh: p.message_zh },
        (_, Some(p)) => LoopworkError::Rejected { code: p.code, message_en: p.message, message_zh: p.message_zh },
        // A 5xx without a readable body is the network's or the server's trouble: retry later.
        (status, None) if status >= 500 => {
            LoopworkError::Offline { detail: format!("the server answered HTTP {status}") }
        }
        (status, None) => LoopworkError::Rejected {
            code: format!("http_{status}"),
            message_en: format!("the server answered HTTP {status}"),
            message_zh: format!("服务器返回 HTTP {status}"),
        },
    }
}

pub(crate) fn header(name: &str, value: &str) -> HttpHeader {
    HttpHeader { name: name.into(), value: value.into() }
}

pub(crate) fn bearer(token: &str) -> HttpHeader {
    header("authorization", &format!("Bearer {token}"))
}
