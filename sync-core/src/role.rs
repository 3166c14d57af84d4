//! Who acts. A role is bound to a user by the server; documents record it on each transition.

use std::fmt;

use crate::error::DocumentError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// 业主: bound to units; reports, confirms or rejects, rates.
    Owner,
    /// 维修工: works the orders assigned to them.
    Technician,
    /// 客服/调度: registers, grades, assigns, records return visits, closes.
    Dispatcher,
    /// 主管
    Supervisor,
    /// 经理
    Manager,
    Admin,
    /// The server itself (auto-confirmation, official numbers, compensations).
    System,
}

/// Office staff, in order of seniority: dispatchers and everyone above them.
pub const STAFF: &[Role] = &[Role::Dispatcher, Role::Supervisor, Role::Manager, Role::Admin];

impl Role {
    pub const ALL: &'static [Role] =
        &[Role::Owner, Role::Technician, Role::Dispatcher, Role::Supervisor, Role::Manager, Role::Admin, Role::System];

    pub fn code(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Technician => "technician",
            Role::Dispatcher => "dispatcher",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Owner => "业主",
            Role::Technician => "维修工",
            Role::Dispatcher => "客服/调度",
            Role::Supervisor => "主管",
            Role::Manager => "经理",
            Role::Admin => "管理员",
            Role::System => "系统",
        }
    }

    pub fn from_code(code: &str) -> Result<Self, DocumentError> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.code() == code)
            .ok_or_else(|| DocumentError::InvalidField { field: "Role", value: code.chars().take(64).collect() })
    }

    /// Office staff: dispatchers and everyone above them.
    pub fn is_staff(self) -> bool {
        STAFF.contains(&self)
    }

    /// Supervisors and everyone above them (staff KPIs, revoking another user's device).
    pub fn is_supervisor_or_above(self) -> bool {
        matches!(self, Role::Supervisor | Role::Manager | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
