//! The work-order lifecycle: states, the rule table, and the fold that computes the effective
//! state from the merged transition log.
//!
//! Status is never a last-writer-wins field. Each transition is appended to a list in the
//! document, naming the entries its writer had seen (`after`). Automerge gives every replica
//! the same list once they hold the same changes. [`linearize`] orders the entries causally and,
//! among entries that were written concurrently, by authority: a cancellation, then an
//! assignment, then the owner's answer, then the rest, so that "the dispatcher reassigned while
//! the technician completed offline" has one outcome whichever merged first. [`fold`] walks that
//! order, applies each entry the rules allow where it lands, and keeps the others marked
//! [`Verdict::Superseded`] with a reason. Device time is recorded, never used to order: a phone
//! whose clock is hours wrong cannot reorder history.
//!
//! This module must stay pure: no IO, no clock, no randomness.

use std::fmt;

use crate::classification::Kind;
use crate::error::DocumentError;
use crate::ids::{DeviceId, UserId};
use crate::role::{Role, STAFF};

/// The effective state of a work order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// 待派单
    New,
    /// 已派单
    Assigned,
    /// 已接单
    Accepted,
    /// 已到场
    OnSite,
    /// 处理中
    InProgress,
    /// 挂起
    OnHold,
    /// 待确认: completed, awaiting the owner.
    AwaitingConfirmation,
    /// 已确认 (with rating)
    Confirmed,
    /// 返工: the owner rejected; back with the technician.
    Rework,
    /// 自动确认: the owner did not answer in time.
    AutoConfirmed,
    /// 已回访
    ReturnVisited,
    /// 已关闭
    Closed,
    /// 已取消
    Cancelled,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::New,
        Status::Assigned,
        Status::Accepted,
        Status::OnSite,
        Status::InProgress,
        Status::OnHold,
        Status::AwaitingConfirmation,
        Status::Confirmed,
        Status::Rework,
        Status::AutoConfirmed,
        Status::ReturnVisited,
        Status::Closed,
        Status::Cancelled,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::Accepted => "accepted",
            Status::OnSite => "on_site",
            Status::InProgress => "in_progress",
            Status::OnHold => "on_hold",
            Status::AwaitingConfirmation => "awaiting_confirmation",
            Status::Confirmed => "confirmed",
            Status::Rework => "rework",
            Status::AutoConfirmed => "auto_confirmed",
            Status::ReturnVisited => "return_visited",
            Status::Closed => "closed",
            Status::Cancelled => "cancelled",
        }
    }

    /// The status in English (the desk's second language).
    pub fn label_en(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::Accepted => "accepted",
            Status::OnSite => "on site",
            Status::InProgress => "in progress",
            Status::OnHold => "on hold",
            Status::AwaitingConfirmation => "awaiting confirmation",
            Status::Confirmed => "confirmed",
            Status::Rework => "rework",
            Status::AutoConfirmed => "auto-confirmed",
            Status::ReturnVisited => "return visit done",
            Status::Closed => "closed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Status::New => "待派单",
            Status::Assigned => "已派单",
            Status::Accepted => "已接单",
            Status::OnSite => "已到场",
            Status::InProgress => "处理中",
            Status::OnHold => "已挂起",
            Status::AwaitingConfirmation => "待确认",
            Status::Confirmed => "已确认",
            Status::Rework => "返工",
            Status::AutoConfirmed => "自动确认",
            Status::ReturnVisited => "已回访",
            Status::Closed => "已关闭",
            Status::Cancelled => "已取消",
        }
    }

    pub fn from_code(code: &str) -> Result<Self, DocumentError> {
        Status::ALL
            .iter()
            .copied()
            .find(|s| s.code() == code)
            .ok_or_else(|| DocumentError::InvalidField { field: "Status", value: code.chars().take(64).collect() })
    }

    /// No transition leaves these.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Closed | Status::Cancelled)
    }

    /// Work is still owed to the owner: the order counts in a technician's queue.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            Status::Confirmed | Status::AutoConfirmed | Status::ReturnVisited | Status::Closed | Status::Cancelled
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

crate::classification::vocabulary! {
    /// Why an order is on hold. The first two pause the resolution clock.
    HoldReason {
        WaitingForParts => "waiting_for_parts", "等待配件", "waiting for parts";
        OwnerNotHome => "owner_not_home", "业主不在家", "owner not home";
        Other => "other", "其他", "other";
    }
}

impl HoldReason {
    /// Whether this hold stops the resolution clock.
    pub fn pauses(self) -> bool {
        !matches!(self, HoldReason::Other)
    }
}

/// What someone does to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// 派单 (or reassign) to a technician.
    Assign(UserId),
    /// 接单. From 待派单 a technician may take an unassigned order themselves (抢单).
    Accept,
    /// 到场
    Arrive,
    /// 开始处理
    Start,
    /// 挂起
    Hold(HoldReason),
    /// 恢复处理
    Resume,
    /// 完工
    Complete,
    /// 业主确认, with a rating of 1 to 5.
    Confirm { rating: u8 },
    /// 业主拒绝: rework.
    Reject,
    /// 自动确认 (the server, when the owner did not answer).
    AutoConfirm,
    /// 回访 recorded.
    ReturnVisit,
    /// 关闭
    Close,
    /// 取消
    Cancel,
}

impl Action {
    /// Whether the action needs a text: a rejection its reason, a return visit its result, a
    /// cancellation its reason. The one rule the phones, the desk and the JSON API follow.
    pub fn requires_text(&self) -> bool {
        matches!(self, Action::Reject | Action::ReturnVisit | Action::Cancel)
    }

    pub fn code(&self) -> &'static str {
        match self {
            Action::Assign(_) => "assign",
            Action::Accept => "accept",
            Action::Arrive => "arrive",
            Action::Start => "start",
            Action::Hold(_) => "hold",
            Action::Resume => "resume",
            Action::Complete => "complete",
            Action::Confirm { .. } => "confirm",
            Action::Reject => "reject",
            Action::AutoConfirm => "auto_confirm",
            Action::ReturnVisit => "return_visit",
            Action::Close => "close",
            Action::Cancel => "cancel",
        }
    }

    /// The action in English (the desk's second language).
    pub fn label_en(&self) -> &'static str {
        match self {
            Action::Hold(_) => "put on hold",
            Action::Reject => "reject (rework)",
            Action::ReturnVisit => "return visit",
            Action::Close => "close order",
            Action::Cancel => "cancel order",
            other => other.code(),
        }
    }

    pub fn label_zh(&self) -> &'static str {
        match self {
            Action::Assign(_) => "派单",
            Action::Accept => "接单",
            Action::Arrive => "到场",
            Action::Start => "开始处理",
            Action::Hold(_) => "挂起",
            Action::Resume => "恢复处理",
            Action::Complete => "完工",
            Action::Confirm { .. } => "业主确认",
            Action::Reject => "业主拒绝(返工)",
            Action::AutoConfirm => "自动确认",
            Action::ReturnVisit => "回访",
            Action::Close => "关闭工单",
            Action::Cancel => "取消工单",
        }
    }
}

/// Which person among those with the right role may act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// Anyone holding one of the rule's roles.
    AnyInRole,
    /// Only the technician the order is currently assigned to.
    Assignee,
    /// The assignee, or any technician while the order is unassigned (抢单).
    AssigneeOrUnassigned,
    /// Only the owner who reported the order.
    Reporter,
}

/// One row of the rule table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub action: &'static str,
    pub from: &'static [Status],
    pub roles: &'static [Role],
    pub party: Party,
    pub to: Status,
}

const TECH: &[Role] = &[Role::Technician];
const OWNER: &[Role] = &[Role::Owner];
const WORKING: &[Status] = &[
    Status::New,
    Status::Assigned,
    Status::Accepted,
    Status::OnSite,
    Status::InProgress,
    Status::OnHold,
    Status::Rework,
];
const CANCELLABLE_BY_STAFF: &[Status] = &[
    Status::New,
    Status::Assigned,
    Status::Accepted,
    Status::OnSite,
    Status::InProgress,
    Status::OnHold,
    Status::Rework,
    Status::AwaitingConfirmation,
];

/// The rule table: who may do which transition from which states. Published in
/// `docs/lifecycle.md` (a test keeps the two equal). Order matters only for `confirm` and
/// `cancel`, which have a row for the reporting owner and one for staff.
pub const RULES: &[Rule] = &[
    Rule { action: "assign", from: WORKING, roles: STAFF, party: Party::AnyInRole, to: Status::Assigned },
    Rule {
        action: "accept",
        from: &[Status::New, Status::Assigned],
        roles: TECH,
        party: Party::AssigneeOrUnassigned,
        to: Status::Accepted,
    },
    Rule { action: "arrive", from: &[Status::Accepted], roles: TECH, party: Party::Assignee, to: Status::OnSite },
    Rule {
        action: "start",
        from: &[Status::OnSite, Status::Rework],
        roles: TECH,
        party: Party::Assignee,
        to: Status::InProgress,
    },
    Rule { action: "hold", from: &[Status::InProgress], roles: TECH, party: Party::Assignee, to: Status::OnHold },
    Rule { action: "resume", from: &[Status::OnHold], roles: TECH, party: Party::Assignee, to: Status::InProgress },
    Rule {
        action: "complete",
        from: &[Status::InProgress, Status::Rework],
        roles: TECH,
        party: Party::Assignee,
        to: Status::AwaitingConfirmation,
    },
    Rule {
        action: "confirm",
        from: &[Status::AwaitingConfirmation],
        roles: OWNER,
        party: Party::Reporter,
        to: Status::Confirmed,
    },
    // The owner's answer taken by phone, recorded by customer service (the transition names who
    // recorded it, with their role: the timeline and the audit trail show it as such).
    Rule {
        action: "confirm",
        from: &[Status::AwaitingConfirmation],
        roles: STAFF,
        party: Party::AnyInRole,
        to: Status::Confirmed,
    },
    Rule {
        action: "reject",
        from: &[Status::AwaitingConfirmation],
        roles: OWNER,
        party: Party::Reporter,
        to: Status::Rework,
    },
    Rule {
        action: "auto_confirm",
        from: &[Status::AwaitingConfirmation],
        roles: &[Role::System],
        party: Party::AnyInRole,
        to: Status::AutoConfirmed,
    },
    Rule {
        action: "return_visit",
        from: &[Status::Confirmed, Status::AutoConfirmed],
        roles: STAFF,
        party: Party::AnyInRole,
        to: Status::ReturnVisited,
    },
    Rule {
        action: "close",
        from: &[Status::Confirmed, Status::AutoConfirmed, Status::ReturnVisited],
        roles: STAFF,
        party: Party::AnyInRole,
        to: Status::Closed,
    },
    Rule { action: "cancel", from: CANCELLABLE_BY_STAFF, roles: STAFF, party: Party::AnyInRole, to: Status::Cancelled },
    Rule {
        action: "cancel",
        from: &[Status::New, Status::Assigned],
        roles: OWNER,
        party: Party::Reporter,
        to: Status::Cancelled,
    },
];

/// Why a transition did not take effect where it landed in the fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Supersession {
    /// The actor's role may never do this.
    RoleNotPermitted,
    /// A technician acted on an order that was never assigned to them.
    NotAssignee,
    /// A technician acted after the order had been reassigned to someone else.
    Reassigned,
    /// Another technician accepted the order first.
    AlreadyTaken,
    /// An owner acted on an order they did not report.
    NotReporter,
    /// The order had been cancelled.
    OrderCancelled,
    /// The order had been closed.
    OrderClosed,
    /// The action is not possible from the state the order was in.
    InvalidFromState,
    /// A rating outside 1..=5.
    RatingOutOfRange,
    /// The order needs a return visit (回访) before it can be closed.
    ReturnVisitPending,
    /// The organization requires the owner's signature to complete this order, and the
    /// completion carried none (see [`crate::signature`]).
    SignatureRequired,
}

impl Supersession {
    pub fn code(self) -> &'static str {
        match self {
            Supersession::RoleNotPermitted => "role_not_permitted",
            Supersession::NotAssignee => "not_assignee",
            Supersession::Reassigned => "reassigned",
            Supersession::AlreadyTaken => "already_taken",
            Supersession::NotReporter => "not_reporter",
            Supersession::OrderCancelled => "order_cancelled",
            Supersession::OrderClosed => "order_closed",
            Supersession::InvalidFromState => "invalid_from_state",
            Supersession::RatingOutOfRange => "rating_out_of_range",
            Supersession::ReturnVisitPending => "return_visit_pending",
            Supersession::SignatureRequired => "signature_required",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        const ALL: [Supersession; 11] = [
            Supersession::RoleNotPermitted,
            Supersession::NotAssignee,
            Supersession::Reassigned,
            Supersession::AlreadyTaken,
            Supersession::NotReporter,
            Supersession::OrderCancelled,
            Supersession::OrderClosed,
            Supersession::InvalidFromState,
            Supersession::RatingOutOfRange,
            Supersession::ReturnVisitPending,
            Supersession::SignatureRequired,
        ];
        ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn message_zh(self) -> &'static str {
        match self {
            Supersession::RoleNotPermitted => "您的角色无权执行此操作",
            Supersession::NotAssignee => "此工单未派给您",
            Supersession::Reassigned => "此工单已改派他人,您的操作未生效(您的记录已保留)",
            Supersession::AlreadyTaken => "此工单已被其他维修工接单",
            Supersession::NotReporter => "只有报事业主本人可以执行此操作",
            Supersession::OrderCancelled => "工单已取消,操作未生效",
            Supersession::OrderClosed => "工单已关闭,操作未生效",
            Supersession::InvalidFromState => "工单当前状态不允许此操作",
            Supersession::RatingOutOfRange => "评分须为1到5分",
            Supersession::ReturnVisitPending => "须先完成回访才能关闭",
            Supersession::SignatureRequired => "此工单完工须业主签字确认",
        }
    }

    pub fn message_en(self) -> &'static str {
        match self {
            Supersession::RoleNotPermitted => "your role may not do this",
            Supersession::NotAssignee => "this order is not assigned to you",
            Supersession::Reassigned => {
                "the order was reassigned; your action did not take effect (your records are kept)"
            }
            Supersession::AlreadyTaken => "another technician accepted this order first",
            Supersession::NotReporter => "only the owner who reported the order may do this",
            Supersession::OrderCancelled => "the order had been cancelled",
            Supersession::OrderClosed => "the order had been closed",
            Supersession::InvalidFromState => "the order's state does not allow this",
            Supersession::RatingOutOfRange => "a rating is 1 to 5",
            Supersession::ReturnVisitPending => "a return visit is required before closing",
            Supersession::SignatureRequired => "completing this order needs the owner's signature",
        }
    }
}

impl fmt::Display for Supersession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message_en(), self.code())
    }
}

/// One entry of the transition log, as stored in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Unique per entry (UUID v7), so the timeline can name it.
    pub id: String,
    pub action: Action,
    pub by: UserId,
    pub role: Role,
    pub device: DeviceId,
    /// The device's clock when it acted: a claim, shown and checked, never used to order.
    pub at_ms: i64,
    /// The state the acting device saw.
    pub from: Status,
    /// The state it meant to reach.
    pub to: Status,
    /// Free text: a reason, a rating comment, a return-visit note.
    pub text: Option<String>,
    /// A completion's owner signature: the SHA-256 of the signature attachment added with it.
    pub signature: Option<String>,
    /// The newest entries the writer had seen (the frontier of its log): what makes two entries
    /// concurrent or ordered.
    pub after: Vec<String>,
}

/// What became of one log entry in the fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    Superseded(Supersession),
}

/// A log entry with its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedTransition {
    pub transition: Transition,
    pub verdict: Verdict,
    /// The effective state after this entry.
    pub status_after: Status,
}

/// The effective state of an order: the deterministic fold of its transition log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderState {
    pub status: Status,
    pub assignee: Option<UserId>,
    pub hold_reason: Option<HoldReason>,
    /// How many times the owner rejected the work (返工次数).
    pub reopen_count: u32,
    pub rating: Option<u8>,
    pub rating_comment: Option<String>,
    pub auto_confirmed: bool,
    /// A rating of 3 or less, any rejection, or an auto-confirmed complaint needs a 回访.
    pub return_visit_required: bool,
    /// Why the 回访 is owed, each reason once, in the order the history gave them.
    pub return_visit_reasons: Vec<ReturnVisitReason>,
    /// Device times (claims) of the milestones, for deadlines and the timeline.
    pub accepted_at_ms: Option<i64>,
    pub arrived_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    /// Hold intervals that pause the resolution clock: (start, end or None while on hold).
    pub pauses: Vec<(i64, Option<i64>)>,
    pub history: Vec<FoldedTransition>,
}

crate::classification::vocabulary! {
    /// Why an order owes a return visit (回访) before it may close.
    ReturnVisitReason {
        /// The owner rated the work 3 or less.
        LowRating => "low_rating", "低评分", "Low rating";
        /// The owner rejected the work at least once.
        Rejected => "rejected", "曾被拒绝", "Was rejected";
        /// A complaint the server confirmed because the owner did not answer.
        AutoConfirmedComplaint => "auto_confirmed_complaint", "投诉自动确认", "Complaint auto-confirmed";
    }
}

impl OrderState {
    fn owe_return_visit(&mut self, reason: ReturnVisitReason) {
        self.return_visit_required = true;
        if !self.return_visit_reasons.contains(&reason) {
            self.return_visit_reasons.push(reason);
        }
    }

    /// A new order's state: nothing has happened to it yet.
    pub fn initial() -> Self {
        OrderState {
            status: Status::New,
            assignee: None,
            hold_reason: None,
            reopen_count: 0,
            rating: None,
            rating_comment: None,
            auto_confirmed: false,
            return_visit_required: false,
            return_visit_reasons: Vec::new(),
            accepted_at_ms: None,
            arrived_at_ms: None,
            completed_at_ms: None,
            pauses: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Whether the order was ever assigned to `by` or taken by them (entries that took effect):
    /// a technician refused for not being the assignee was then reassigned, not a stranger.
    pub fn was_assignee(&self, by: UserId) -> bool {
        self.history.iter().any(|f| {
            f.verdict == Verdict::Applied
                && match f.transition.action {
                    Action::Assign(who) => who == by,
                    Action::Accept => f.transition.by == by,
                    _ => false,
                }
        })
    }

    /// The entries that did not take effect, with their reasons: what the app shows as
    /// "your action did not take effect because ...".
    pub fn superseded(&self) -> impl Iterator<Item = (&Transition, Supersession)> {
        self.history.iter().filter_map(|f| match f.verdict {
            Verdict::Superseded(why) => Some((&f.transition, why)),
            Verdict::Applied => None,
        })
    }
}

/// Facts about the order that the rules need besides the log.
#[derive(Clone, Copy, Debug)]
pub struct OrderFacts {
    pub reporter: UserId,
    pub kind: Kind,
    /// The server's record that completing the order needs the owner's signature.
    pub signature_required: bool,
}

/// The rules' verdict on `action` by `by` (in `role`) against `state`: the state it leads to,
/// or why not. One place for the rule, used by the fold and by a device before it writes.
pub fn check(
    state: &OrderState,
    facts: &OrderFacts,
    action: &Action,
    by: UserId,
    role: Role,
) -> Result<Status, Supersession> {
    let rules: Vec<&Rule> = RULES.iter().filter(|r| r.action == action.code()).collect();
    let Some(rule) = rules.iter().find(|r| r.roles.contains(&role)) else {
        return Err(Supersession::RoleNotPermitted);
    };
    match state.status {
        Status::Cancelled => return Err(Supersession::OrderCancelled),
        Status::Closed => return Err(Supersession::OrderClosed),
        _ => {}
    }
    match rule.party {
        Party::AnyInRole => {}
        Party::Reporter if by != facts.reporter => return Err(Supersession::NotReporter),
        Party::Reporter => {}
        Party::Assignee | Party::AssigneeOrUnassigned => {
            let open_to_all = rule.party == Party::AssigneeOrUnassigned && state.assignee.is_none();
            if !open_to_all && state.assignee != Some(by) {
                return Err(technician_refusal(state, by, action));
            }
        }
    }
    if !rule.from.contains(&state.status) {
        return Err(Supersession::InvalidFromState);
    }
    match action {
        Action::Confirm { rating } if !(1..=5).contains(rating) => Err(Supersession::RatingOutOfRange),
        Action::Close if state.return_visit_required && state.status != Status::ReturnVisited => {
            Err(Supersession::ReturnVisitPending)
        }
        _ => Ok(rule.to),
    }
}

/// [`check`] for an entry of the log: a completion also needs the owner's signature where the
/// order requires one (`signed`: the entry names its signature). What the fold and a device
/// about to write both ask.
pub fn check_entry(
    state: &OrderState,
    facts: &OrderFacts,
    action: &Action,
    by: UserId,
    role: Role,
    signed: bool,
) -> Result<Status, Supersession> {
    let to = check(state, facts, action, by, role)?;
    if matches!(action, Action::Complete) && facts.signature_required && !signed {
        return Err(Supersession::SignatureRequired);
    }
    Ok(to)
}

fn technician_refusal(state: &OrderState, by: UserId, action: &Action) -> Supersession {
    if state.was_assignee(by) {
        Supersession::Reassigned
    } else if matches!(action, Action::Accept) && state.assignee.is_some() && state.status != Status::Assigned {
        Supersession::AlreadyTaken
    } else {
        Supersession::NotAssignee
    }
}

/// Which of two concurrent entries goes first: lower first.
fn precedence(action: &Action) -> u8 {
    match action {
        Action::Cancel => 0,
        Action::Assign(_) => 1,
        Action::Confirm { .. } | Action::Reject => 2,
        Action::ReturnVisit | Action::Close => 3,
        Action::AutoConfirm => 5,
        _ => 4,
    }
}

/// Orders a merged log: every entry after the entries it had seen, and among the entries that
/// are ready at each step the one of highest precedence, ties in list order. An `after` that
/// names an unknown or later entry is ignored, so a malformed log still has an order.
pub fn linearize(log: Vec<Transition>) -> Vec<Transition> {
    let mut position = std::collections::HashMap::new();
    for (i, t) in log.iter().enumerate() {
        position.entry(t.id.as_str()).or_insert(i);
    }
    let parents: Vec<Vec<usize>> = log
        .iter()
        .enumerate()
        .map(|(i, t)| t.after.iter().filter_map(|id| position.get(id.as_str()).copied().filter(|&p| p < i)).collect())
        .collect();
    let mut placed = vec![false; log.len()];
    let mut order = Vec::with_capacity(log.len());
    for _ in 0..log.len() {
        let next = (0..log.len())
            .filter(|&i| !placed[i] && parents[i].iter().all(|&p| placed[p]))
            .min_by_key(|&i| (precedence(&log[i].action), i))
            .expect("the earliest unplaced entry is always ready");
        placed[next] = true;
        order.push(next);
    }
    let mut slots: Vec<Option<Transition>> = log.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The ids an entry written now must name as `after`: the entries no other entry has seen.
pub fn frontier(log: &[Transition]) -> Vec<String> {
    let seen: std::collections::HashSet<&str> = log.iter().flat_map(|t| t.after.iter().map(String::as_str)).collect();
    log.iter().filter(|t| !seen.contains(t.id.as_str())).map(|t| t.id.clone()).collect()
}

/// Folds a merged transition log into the effective state. Pure and deterministic: the same
/// log gives the same state on every replica.
pub fn fold(facts: &OrderFacts, log: Vec<Transition>) -> OrderState {
    fold_ordered(facts, linearize(log))
}

/// Folds entries in the order given (already [`linearize`]d).
pub fn fold_ordered(facts: &OrderFacts, log: impl IntoIterator<Item = Transition>) -> OrderState {
    let mut state = OrderState::initial();
    for t in log {
        let verdict = match check_entry(&state, facts, &t.action, t.by, t.role, t.signature.is_some()) {
            Ok(next) => {
                apply(&mut state, facts, &t, next);
                Verdict::Applied
            }
            Err(why) => Verdict::Superseded(why),
        };
        state.history.push(FoldedTransition { transition: t, verdict, status_after: state.status });
    }
    state
}

fn apply(state: &mut OrderState, facts: &OrderFacts, t: &Transition, next: Status) {
    if state.status == Status::OnHold {
        if let Some((_, end @ None)) = state.pauses.last_mut() {
            *end = Some(t.at_ms);
        }
        state.hold_reason = None;
    }
    match t.action {
        Action::Assign(who) => state.assignee = Some(who),
        Action::Accept => {
            state.assignee = Some(t.by);
            state.accepted_at_ms = Some(t.at_ms);
        }
        Action::Arrive => state.arrived_at_ms = Some(t.at_ms),
        Action::Hold(reason) => {
            state.hold_reason = Some(reason);
            if reason.pauses() {
                state.pauses.push((t.at_ms, None));
            }
        }
        Action::Complete => state.completed_at_ms = Some(t.at_ms),
        Action::Confirm { rating } => {
            state.rating = Some(rating);
            state.rating_comment = t.text.clone();
            if rating <= 3 {
                state.owe_return_visit(ReturnVisitReason::LowRating);
            }
        }
        Action::Reject => {
            state.reopen_count += 1;
            state.owe_return_visit(ReturnVisitReason::Rejected);
            state.completed_at_ms = None;
        }
        Action::AutoConfirm => {
            state.auto_confirmed = true;
            if facts.kind == Kind::Complaint {
                state.owe_return_visit(ReturnVisitReason::AutoConfirmedComplaint);
            }
        }
        Action::Start | Action::Resume | Action::ReturnVisit | Action::Close | Action::Cancel => {}
    }
    state.status = next;
}

/// The rule table as Markdown, for `docs/lifecycle.md`.
pub fn rules_markdown() -> String {
    let mut out = String::from("| action | from | roles | who among them | to |\n|---|---|---|---|---|\n");
    for rule in RULES {
        let from: Vec<String> = rule.from.iter().map(|s| format!("{} {}", s.label_zh(), s.code())).collect();
        let roles: Vec<&str> = rule.roles.iter().map(|r| r.code()).collect();
        let party = match rule.party {
            Party::AnyInRole => "any",
            Party::Assignee => "the assignee",
            Party::AssigneeOrUnassigned => "the assignee, or anyone while unassigned (抢单)",
            Party::Reporter => "the reporting owner",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} {} |\n",
            rule.action,
            from.join(", "),
            roles.join(", "),
            party,
            rule.to.label_zh(),
            rule.to.code()
        ));
    }
    out
}
