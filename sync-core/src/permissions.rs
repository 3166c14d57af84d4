//! Who may write which field of an order, in which states: one table, checked by a device
//! before it writes and published in `docs/permissions.md` (a test keeps the two equal).
//!
//! Transitions have their own table ([`crate::lifecycle::RULES`]); this one covers every other
//! field a device may write. Fields not listed here (the id, the reporter, the creation time,
//! the official number, deadlines) are written by nobody but the server, or never change.
//! Refusals reuse the lifecycle's reason codes, so an app shows one kind of message.

use crate::ids::UserId;
use crate::lifecycle::{OrderState, Party, Status, Supersession};
use crate::role::{Role, STAFF};

/// A field (or list) of a work order that a device may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// 问题描述
    Description,
    /// 分级
    Grade,
    /// 分类
    Category,
    /// 位置
    Location,
    /// 备注 (append-only)
    Notes,
    /// 检查项
    Checklist,
    /// 配件
    Parts,
    /// 工时
    TimeLog,
    /// 照片、签名 (references by content hash)
    Attachments,
    /// 预约时间: the window the caller would like someone to come in
    Appointment,
    /// 设备: the asset the order is about (its id in the asset register)
    Asset,
}

impl Field {
    pub fn code(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::Grade => "grade",
            Field::Category => "category",
            Field::Location => "location",
            Field::Notes => "notes",
            Field::Checklist => "checklist",
            Field::Parts => "parts",
            Field::TimeLog => "time_log",
            Field::Attachments => "attachments",
            Field::Appointment => "appointment",
            Field::Asset => "asset",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Field::Description => "问题描述",
            Field::Grade => "分级",
            Field::Category => "分类",
            Field::Location => "位置",
            Field::Notes => "备注",
            Field::Checklist => "检查项",
            Field::Parts => "配件",
            Field::TimeLog => "工时",
            Field::Attachments => "照片/签名",
            Field::Appointment => "预约时间",
            Field::Asset => "设备",
        }
    }
}

/// One row: these roles, and among them this party, may write the field in these states.
#[derive(Clone, Copy, Debug)]
pub struct FieldRule {
    pub field: Field,
    pub roles: &'static [Role],
    pub party: Party,
    pub states: &'static [Status],
}

const TECH: &[Role] = &[Role::Technician];
const OWNER: &[Role] = &[Role::Owner];
/// The server, as the author of the orders it makes itself (a maintenance plan's).
const SERVER: &[Role] = &[Role::System];
/// An order just made, before anyone has taken it up.
const JUST_MADE: &[Status] = &[Status::New];
/// Before a technician has accepted: what the owner may still change about their report.
const BEFORE_ACCEPTANCE: &[Status] = &[Status::New, Status::Assigned];
/// Every state that still owes work or an answer.
const NOT_FINISHED: &[Status] = &[
    Status::New,
    Status::Assigned,
    Status::Accepted,
    Status::OnSite,
    Status::InProgress,
    Status::OnHold,
    Status::AwaitingConfirmation,
    Status::Rework,
    Status::Confirmed,
    Status::AutoConfirmed,
    Status::ReturnVisited,
];
/// While the technician is on the job.
const ON_THE_JOB: &[Status] = &[Status::Accepted, Status::OnSite, Status::InProgress, Status::OnHold, Status::Rework];

/// While a visit is still to be agreed with the owner (改约): assigned, accepted, held (no one
/// home) or sent back for rework.
const TO_VISIT: &[Status] = &[Status::Assigned, Status::Accepted, Status::OnHold, Status::Rework];

/// The table. A field may have several rows; a writer may write it if any row that includes
/// their role allows it.
pub const FIELD_RULES: &[FieldRule] = &[
    FieldRule { field: Field::Description, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Description, roles: OWNER, party: Party::Reporter, states: BEFORE_ACCEPTANCE },
    FieldRule { field: Field::Grade, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Category, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Location, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Notes, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Notes, roles: TECH, party: Party::Assignee, states: NOT_FINISHED },
    // A technician who registered an order themselves (found on an inspection round).
    FieldRule { field: Field::Notes, roles: TECH, party: Party::Reporter, states: NOT_FINISHED },
    FieldRule { field: Field::Notes, roles: OWNER, party: Party::Reporter, states: NOT_FINISHED },
    FieldRule { field: Field::Checklist, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Checklist, roles: TECH, party: Party::Assignee, states: ON_THE_JOB },
    // A maintenance plan's checklist, written by the server with the order it makes.
    FieldRule { field: Field::Checklist, roles: SERVER, party: Party::Reporter, states: JUST_MADE },
    FieldRule { field: Field::Parts, roles: TECH, party: Party::Assignee, states: ON_THE_JOB },
    FieldRule { field: Field::TimeLog, roles: TECH, party: Party::Assignee, states: ON_THE_JOB },
    FieldRule { field: Field::Attachments, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Attachments, roles: TECH, party: Party::Assignee, states: ON_THE_JOB },
    FieldRule { field: Field::Attachments, roles: OWNER, party: Party::Reporter, states: BEFORE_ACCEPTANCE },
    FieldRule { field: Field::Appointment, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Appointment, roles: TECH, party: Party::Assignee, states: TO_VISIT },
    FieldRule { field: Field::Appointment, roles: OWNER, party: Party::Reporter, states: BEFORE_ACCEPTANCE },
    // The asset: named by the office, by the technician who finds which one it is on site (the
    // QR code on it), or by one who reported it on an inspection round.
    FieldRule { field: Field::Asset, roles: STAFF, party: Party::AnyInRole, states: NOT_FINISHED },
    FieldRule { field: Field::Asset, roles: TECH, party: Party::Assignee, states: ON_THE_JOB },
    FieldRule { field: Field::Asset, roles: TECH, party: Party::Reporter, states: NOT_FINISHED },
    // The asset of an order the server makes (a plan's service, a problem's preventive work).
    FieldRule { field: Field::Asset, roles: SERVER, party: Party::Reporter, states: JUST_MADE },
];

/// Whether `by` in `role` may write `field` of an order in `state` reported by `reporter`: any
/// row of the field that includes the role may allow it; if none does, the first row's reason.
pub fn check_field(
    field: Field,
    state: &OrderState,
    reporter: UserId,
    by: UserId,
    role: Role,
) -> Result<(), Supersession> {
    let mut first_refusal = None;
    for rule in FIELD_RULES.iter().filter(|r| r.field == field && r.roles.contains(&role)) {
        match check_rule(rule, state, reporter, by) {
            Ok(()) => return Ok(()),
            Err(why) => {
                first_refusal.get_or_insert(why);
            }
        }
    }
    Err(first_refusal.unwrap_or(Supersession::RoleNotPermitted))
}

fn check_rule(rule: &FieldRule, state: &OrderState, reporter: UserId, by: UserId) -> Result<(), Supersession> {
    match state.status {
        Status::Cancelled => return Err(Supersession::OrderCancelled),
        Status::Closed => return Err(Supersession::OrderClosed),
        _ => {}
    }
    match rule.party {
        Party::AnyInRole => {}
        Party::Reporter if by != reporter => return Err(Supersession::NotReporter),
        Party::Reporter => {}
        Party::Assignee | Party::AssigneeOrUnassigned if state.assignee != Some(by) => {
            return Err(if state.was_assignee(by) { Supersession::Reassigned } else { Supersession::NotAssignee });
        }
        Party::Assignee | Party::AssigneeOrUnassigned => {}
    }
    if !rule.states.contains(&state.status) {
        return Err(Supersession::InvalidFromState);
    }
    Ok(())
}

/// The table as Markdown, for `docs/permissions.md`.
pub fn field_rules_markdown() -> String {
    let mut out = String::from("| field | roles | who among them | in states |\n|---|---|---|---|\n");
    for rule in FIELD_RULES {
        let roles: Vec<&str> = rule.roles.iter().map(|r| r.code()).collect();
        let party = match rule.party {
            Party::AnyInRole => "any",
            Party::Assignee | Party::AssigneeOrUnassigned => "the assignee",
            Party::Reporter => "the reporter",
        };
        let states: Vec<&str> = rule.states.iter().map(|s| s.code()).collect();
        out.push_str(&format!(
            "| {} {} | {} | {} | {} |\n",
            rule.field.label_zh(),
            rule.field.code(),
            roles.join(", "),
            party,
            states.join(", ")
        ));
    }
    out
}
