//! The service desk owners reach (服务台): its phone number and hours, shown on the owner's page
//! with a call button (`GET`/`PUT /api/v1/settings/service-desk`; everyone signed in reads it,
//! administrators write it).

use loopwork_sync_core::estate::normalize_phone;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::settings::{Readers, Setting};

/// The service desk's number and hours.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDesk {
    /// The number owners call (stored as digits), or `null` while none is set.
    #[serde(default)]
    pub phone: Option<String>,
    /// When someone answers, as the company says it (at most 60 characters), e.g.
    /// `24小时服务热线` or `工作日 09:00–18:00`.
    #[serde(default)]
    pub hours: Option<String>,
}

impl Setting for ServiceDesk {
    const NAME: &'static str = "service-desk";
    const READERS: Readers = Readers::Everyone;
    const WRITE_REFUSED: (&'static str, &'static str) =
        ("only an administrator changes the service desk", "只有管理员可以修改服务台信息");

    fn seeded() -> Self {
        ServiceDesk::default()
    }

    fn check(self) -> Result<Self, ApiError> {
        let phone = match self.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(phone) => Some(normalize_phone(phone).map_err(|fault| {
                ApiError::invalid("invalid_setting", format!("phone: {fault}"), format!("电话:{}", fault.label_zh()))
            })?),
            None => None,
        };
        let hours = self.hours.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
        if hours.as_ref().is_some_and(|h| h.chars().count() > 60 || h.chars().any(char::is_control)) {
            return Err(ApiError::invalid("invalid_setting", "hours: at most 60 characters", "服务时间最多 60 个字符"));
        }
        Ok(ServiceDesk { phone, hours })
    }
}
