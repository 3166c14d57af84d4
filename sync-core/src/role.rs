//! Who acts. A role is bound to a user by the server; documents record it on each transition.

use std::fmt;

use crate::error::DocumentError;

crate::classification::vocabulary! {
    /// A user's role, bound by the server.
    Role {
        /// 业主: bound to units; reports, confirms or rejects, rates.
        Owner => "owner", "业主", "Owner";
        /// 维修工: works the orders assigned to them.
        Technician => "technician", "维修工", "Technician";
        /// 客服/调度: registers, grades, assigns, records return visits, closes.
        Dispatcher => "dispatcher", "客服/调度", "Customer service";
        /// 主管
        Supervisor => "supervisor", "主管", "Supervisor";
        /// 经理
        Manager => "manager", "经理", "Manager";
        Admin => "admin", "管理员", "Administrator";
        /// The server itself (auto-confirmation, official numbers, compensations).
        System => "system", "系统", "System";
    }
}

/// Office staff, in order of seniority: dispatchers and everyone above them.
pub const STAFF: &[Role] = &[Role::Dispatcher, Role::Supervisor, Role::Manager, Role::Admin];

impl Role {
    /// Office staff: dispatchers and everyone above them.
    pub fn is_staff(self) -> bool {
        STAFF.contains(&self)
    }

    /// Who reads and writes internal notes (内部备注): the company's people, technicians
    /// included; never an owner, whose devices and pages receive only what an order's document
    /// holds (notes there are replies everyone holding the order reads).
    pub fn reads_internal_notes(self) -> bool {
        self == Role::Technician || self.is_staff()
    }

    /// Supervisors and everyone above them (staff KPIs, revoking another user's device).
    pub fn is_supervisor_or_above(self) -> bool {
        matches!(self, Role::Supervisor | Role::Manager | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_notes_are_the_company_s_only() {
        for role in [Role::Technician, Role::Dispatcher, Role::Supervisor, Role::Manager, Role::Admin] {
            assert!(role.reads_internal_notes(), "{role:?}");
        }
        for role in [Role::Owner, Role::System] {
            assert!(!role.reads_internal_notes(), "{role:?}");
        }
    }
}
