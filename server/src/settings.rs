//! Every organization setting, one shape: a named JSON value per organization in one table
//! (`org_settings`), a default seeded in code until the organization sets its own, read by
//! anyone the setting names and written only by administrators, after a check.
//!
//! | name (`/api/v1/settings/{name}`) | value | read by |
//! |---|---|---|
//! | `closing-authority` | [`ClosingAuthorityCodes`] | office staff |
//! | `sla` | [`BookJson`] (`sync_core::sla`) | anyone of the organization (phones count down with it) |
//! | `closed-loop` | [`crate::closed_loop::ClosedLoopSettings`] | office staff |
//! | `escalation` | [`crate::escalation::EscalationChain`] | office staff |
//! | `webhook-destinations` | [`crate::webhooks::Destinations`] | administrators |
//! | `service-desk` | [`crate::service_desk::ServiceDesk`] | anyone of the organization |
//! | `reply-templates` | [`crate::triage::ReplyTemplates`] | office staff |
//! | `signature-rules` | [`SignatureRules`] (`sync_core::signature`) | office staff |
//!
//! `GET` answers the value in force (the seeded one until the organization sets its own); `PUT`
//! takes the same shape, checks it, stores it as the next `GET` will answer it and answers 204.
//! The handlers are [`crate::http::settings`]; a new setting is a type implementing [`Setting`]
//! and one line there.

use loopwork_sync_core::Role;
use loopwork_sync_core::signature::SignatureRules;
use loopwork_sync_core::sla::{BookJson, SlaBook, book_from_json, book_to_json};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::store::{CLOSING_AUTHORITY, ClosingAuthorityCodes, Database};

/// Who reads a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Anyone signed in to the organization.
    Everyone,
    /// Office staff (dispatcher and above).
    Staff,
    /// Administrators.
    Admins,
}

/// One organization setting.
pub trait Setting: Serialize + DeserializeOwned + schemars::JsonSchema + Send + Sync + Sized + 'static {
    /// Its name in storage and in its route.
    const NAME: &'static str;
    const READERS: Readers;
    /// The refusal, in English and Chinese, to anyone but an administrator who writes it.
    const WRITE_REFUSED: (&'static str, &'static str);
    /// Whether storing it has the scanner look at every open order again (deadlines move).
    const RESCANS: bool = false;

    /// The value in force until the organization sets its own.
    fn seeded() -> Self;

    /// Checks a value an administrator puts; answers it as it will be stored.
    fn check(self) -> Result<Self, ApiError>;
}

/// The organization's value of `S`: its own, else the seeded one.
pub async fn read<S: Setting>(db: &dyn Database, org: &str) -> Result<S, ApiError> {
    match db.setting(org, S::NAME).await? {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            tracing::error!(setting = S::NAME, error = %e, "stored setting does not read");
            ApiError::internal()
        }),
        None => Ok(S::seeded()),
    }
}

/// Checks `value` and stores it as the organization's `S`.
pub async fn write<S: Setting>(db: &dyn Database, org: &str, value: S) -> Result<(), ApiError> {
    let value = value.check()?;
    let text = serde_json::to_string(&value).map_err(|e| {
        tracing::error!(setting = S::NAME, error = %e, "setting does not serialize");
        ApiError::internal()
    })?;
    Ok(db.set_setting(org, S::NAME, &text, S::RESCANS).await?)
}

/// The organization's SLA book, ready to compute deadlines with.
pub async fn sla_book(db: &dyn Database, org: &str) -> Result<SlaBook, ApiError> {
    book_from_json(&read::<BookJson>(db, org).await?).map_err(|e| {
        tracing::error!(error = %e, "stored SLA book does not validate");
        ApiError::internal()
    })
}

impl Setting for ClosingAuthorityCodes {
    const NAME: &'static str = CLOSING_AUTHORITY;
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes who may close orders", "只有管理员可以修改关闭权限");

    fn seeded() -> Self {
        (&loopwork_sync_core::authority::ClosingAuthority::default()).into()
    }

    /// Every grade needs an office role.
    fn check(self) -> Result<Self, ApiError> {
        let invalid = |code: &str| {
            ApiError::invalid(
                "invalid_role",
                format!("`{code}` is not an office role (dispatcher, supervisor, manager, admin)"),
                "须为客服、主管、经理或管理员",
            )
        };
        let authority = self.authority().map_err(|code| invalid(&code))?;
        for role in [authority.minor, authority.serious, authority.severe, authority.critical] {
            if !role.is_staff() {
                return Err(invalid(role.code()));
            }
        }
        Ok((&authority).into())
    }
}

impl Setting for SignatureRules {
    const NAME: &'static str = "signature-rules";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes when the owner's signature is required", "只有管理员可以修改业主签字规则");
    // Open orders are looked at again: their documents record the new requirement.
    const RESCANS: bool = true;

    fn seeded() -> Self {
        SignatureRules::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        SignatureRules::check(&self)
            .map_err(|e| ApiError::invalid("invalid_signature_rules", e.to_string(), "业主签字规则不合规"))?;
        Ok(self)
    }
}

impl Setting for loopwork_sync_core::failures::FailureSettings {
    const NAME: &'static str = "failure-rules";
    const READERS: Readers = Readers::Staff;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the failure rules", "只有管理员可以修改故障预警规则");
    const RESCANS: bool = false;

    fn seeded() -> Self {
        Self::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        loopwork_sync_core::failures::FailureSettings::check(&self)
            .map_err(|e| ApiError::invalid("invalid_failure_rules", e, "故障预警规则超出允许范围"))?;
        Ok(self)
    }
}

impl Setting for loopwork_sync_core::upload::AttachmentLimits {
    const NAME: &'static str = "attachment-limits";
    // Phones and owners' pages may refuse a file before sending it.
    const READERS: Readers = Readers::Everyone;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the attachment limits", "只有管理员可以修改附件大小上限");
    const RESCANS: bool = false;

    fn seeded() -> Self {
        Self::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        loopwork_sync_core::upload::AttachmentLimits::check(&self)
            .map_err(|e| ApiError::invalid("invalid_attachment_limits", e, "附件大小上限须在服务器允许的范围内"))?;
        Ok(self)
    }
}

impl Setting for BookJson {
    const NAME: &'static str = "sla";
    const READERS: Readers = Readers::Everyone;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the SLA policies", "只有管理员可以修改时限策略");
    const RESCANS: bool = true;

    fn seeded() -> Self {
        book_to_json(&SlaBook::defaults())
    }

    /// A default policy last, known calendars and time zones, positive targets, response and
    /// arrival no longer than resolution, working hours that open before they close.
    fn check(self) -> Result<Self, ApiError> {
        let book =
            book_from_json(&self).map_err(|e| ApiError::invalid("invalid_sla", e.to_string(), "时限策略不合规"))?;
        Ok(book_to_json(&book))
    }
}

/// Whether `role` reads settings that `readers` names.
pub fn may_read(readers: Readers, role: Role) -> bool {
    match readers {
        Readers::Everyone => true,
        Readers::Staff => role.is_staff(),
        Readers::Admins => role == Role::Admin,
    }
}
