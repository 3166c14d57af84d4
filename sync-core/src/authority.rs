//! The server's authority over what devices wrote offline: every change a device pushes is
//! judged against the rules as its author saw the order (the document at the change's
//! dependencies); an invalid change is kept (it is history) and answered with one compensating
//! change of the server's that restores the valid state and records the rejection in the
//! document. Devices learn why at their next sync ([`WorkOrder::rejections`]).
//!
//! What is judged: field permissions ([`crate::permissions`]), fields only the server writes,
//! fields that never change, append-only history (transitions, notes, parts, time, attachments),
//! attribution (an entry must name its author's user, role and device), and shape (known fields,
//! valid values, length limits). Lifecycle rules are not compensated: the fold already keeps
//! every transition and marks the ones that did not take effect.
//!
//! Exactly once: a change that already has a rejection record is not judged again, and records
//! are keyed by change hash, so two servers compensating the same change concurrently leave one.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{Change, ChangeHash, ObjId, ObjType, PatchAction, Prop, ROOT, ReadDoc, Value};

use crate::classification::Grade;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::ids::{DeviceId, UserId};
use crate::lifecycle::{OrderState, Supersession};
use crate::permissions::{self, Field};
use crate::role::Role;
use crate::work_order::{MAX_DESCRIPTION_CHARS, MAX_NOTE_CHARS, WorkOrder, is_mime, is_sha256};

/// How many entries any one list of an order may hold.
pub const MAX_LIST_ENTRIES: usize = 1_000;

/// Why the server did not accept a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The field table (or the lifecycle's party rules) does not allow this writer.
    Refused(Supersession),
    /// Only the server writes this field (official number, rejection records).
    ServerOnly,
    /// The field never changes after the order is created (id, reporter, kind, ...).
    Immutable,
    /// History is append-only: an existing entry was edited or removed.
    AppendOnly,
    /// An entry names another user, role or device than the one that wrote it.
    Misattributed,
    /// An unknown field, an invalid value, or too long a text or list.
    InvalidShape,
    /// The order's grade needs a more senior role to close it (投诉分级与处理权限).
    ClosingAuthority,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Refused(why) => why.code(),
            RejectReason::ServerOnly => "server_only_field",
            RejectReason::Immutable => "immutable_field",
            RejectReason::AppendOnly => "append_only",
            RejectReason::Misattributed => "misattributed",
            RejectReason::InvalidShape => "invalid_shape",
            RejectReason::ClosingAuthority => "closing_authority",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "server_only_field" => RejectReason::ServerOnly,
            "immutable_field" => RejectReason::Immutable,
            "append_only" => RejectReason::AppendOnly,
            "misattributed" => RejectReason::Misattributed,
            "invalid_shape" => RejectReason::InvalidShape,
            "closing_authority" => RejectReason::ClosingAuthority,
            other => RejectReason::Refused(Supersession::from_code(other)?),
        })
    }

    pub fn message_zh(self) -> &'static str {
        match self {
            RejectReason::Refused(why) => why.message_zh(),
            RejectReason::ServerOnly => "此字段只能由系统填写,您的修改未生效",
            RejectReason::Immutable => "此字段创建后不能修改,您的修改未生效",
            RejectReason::AppendOnly => "工单记录只能追加,不能修改或删除,您的修改未生效",
            RejectReason::Misattributed => "记录的操作人与提交设备不符,您的修改未生效",
            RejectReason::InvalidShape => "修改内容不合规(未知字段、无效取值或超长),未生效",
            RejectReason::ClosingAuthority => "按工单分级,您无权关闭此工单,请由上级关闭",
        }
    }

    pub fn message_en(self) -> &'static str {
        match self {
            RejectReason::Refused(why) => why.message_en(),
            RejectReason::ServerOnly => "only the server writes this field; your edit did not take effect",
            RejectReason::Immutable => "this field never changes after creation; your edit did not take effect",
            RejectReason::AppendOnly => "the order's records are append-only; your edit did not take effect",
            RejectReason::Misattributed => {
                "the entry names someone other than its writer; your edit did not take effect"
            }
            RejectReason::InvalidShape => {
                "an unknown field, an invalid value or too long a text; your edit did not take effect"
            }
            RejectReason::ClosingAuthority => "the order's grade needs a more senior role to close it",
        }
    }
}

/// Who may close an order of each grade (投诉分级与处理权限): the least senior role allowed,
/// per organization. Seniority: dispatcher < supervisor < manager < admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosingAuthority {
    pub minor: Role,
    pub serious: Role,
    pub severe: Role,
    pub critical: Role,
}

impl Default for ClosingAuthority {
    /// Customer service closes 一般, a supervisor 较重, a manager 严重 and 重大.
    fn default() -> Self {
        ClosingAuthority {
            minor: Role::Dispatcher,
            serious: Role::Supervisor,
            severe: Role::Manager,
            critical: Role::Manager,
        }
    }
}

impl ClosingAuthority {
    pub fn required(&self, grade: Grade) -> Role {
        match grade {
            Grade::Minor => self.minor,
            Grade::Serious => self.serious,
            Grade::Severe => self.severe,
            Grade::Critical => self.critical,
        }
    }

    pub fn set(&mut self, grade: Grade, role: Role) {
        match grade {
            Grade::Minor => self.minor = role,
            Grade::Serious => self.serious = role,
            Grade::Severe => self.severe = role,
            Grade::Critical => self.critical = role,
        }
    }

    /// Whether `role` may close an order of `grade`.
    pub fn allows(&self, grade: Grade, role: Role) -> bool {
        seniority(role) >= seniority(self.required(grade))
    }
}

/// Office seniority; roles outside the office rank below everyone in it.
fn seniority(role: Role) -> u8 {
    match role {
        Role::Owner | Role::Technician => 0,
        Role::Dispatcher => 1,
        Role::Supervisor => 2,
        Role::Manager => 3,
        Role::Admin => 4,
        Role::System => 5,
    }
}

/// Who pushed the changes being judged, and the rules of their organization.
#[derive(Clone, Copy, Debug)]
pub struct Author {
    pub identity: Identity,
    pub closing: ClosingAuthority,
}

/// What the rules need of an order as it stood before a push. A pushed change made on exactly
/// these heads (its device was up to date: the usual case) is judged against this, instead of
/// against the document rebuilt at its dependencies, which costs a replay of the whole history.
#[derive(Clone, Debug)]
pub struct Prior {
    heads: Vec<ChangeHash>,
    grade: Grade,
    state: OrderState,
    reporter: UserId,
}

impl Prior {
    /// The order before the push; `None` if it does not read (the slow path judges it then).
    pub fn of(order: &WorkOrder, transitions: Vec<crate::lifecycle::Transition>) -> Option<Prior> {
        let reporter = order.reporter().ok()?;
        let facts = order.facts().ok()?;
        let mut heads = order.heads();
        heads.sort();
        Some(Prior { heads, grade: order.grade().ok()?, state: crate::lifecycle::fold(&facts, transitions), reporter })
    }

    fn at(&self, deps: &[ChangeHash]) -> bool {
        let mut deps = deps.to_vec();
        deps.sort();
        deps == self.heads
    }
}

/// One rejected change, as recorded in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub change: ChangeHash,
    pub by: UserId,
    pub role: Role,
    pub device: DeviceId,
    pub reason: RejectReason,
    /// The top-level fields the change touched.
    pub fields: Vec<String>,
    /// When the server rejected it (server clock).
    pub at_ms: i64,
}

/// Top-level fields of a work order, by who may write them.
const SERVER_ONLY: &[&str] = &["official_no", "rejections", "incident", "signature_required"];
const IMMUTABLE: &[&str] =
    &["schema", "id", "created_at", "created_by", "created_role", "reporter", "kind", "channel", "occurred_at"];
const HISTORY_LISTS: &[&str] = &["transitions", "notes", "parts", "time_log", "attachments"];

/// The fields a new list entry may have, per list.
fn entry_keys(list: &str) -> &'static [&'static str] {
    match list {
        "transitions" => &[
            "id",
            "action",
            "assignee",
            "hold_reason",
            "rating",
            "by",
            "role",
            "device",
            "at",
            "from",
            "to",
            "after",
            "text",
            "signature",
        ],
        "notes" => &["id", "by", "device", "at", "text"],
        "parts" => &["name", "qty", "by", "at"],
        "time_log" => &["by", "device", "start", "end"],
        "attachments" => &["sha256", "mime", "kind", "size", "caption", "by", "at"],
        "checklist" => &["id", "label", "done"],
        _ => &[],
    }
}

fn field_of(key: &str) -> Option<Field> {
    Some(match key {
        "description" => Field::Description,
        "grade" => Field::Grade,
        "category" => Field::Category,
        "location" => Field::Location,
        "notes" => Field::Notes,
        "checklist" => Field::Checklist,
        "parts" => Field::Parts,
        "time_log" => Field::TimeLog,
        "attachments" => Field::Attachments,
        "appointment" => Field::Appointment,
        "asset" => Field::Asset,
        _ => return None,
    })
}

/// Whether `id` names an operation of `change`.
fn made_by(id: &ObjId, change: &Change) -> bool {
    match id {
        ObjId::Root => false,
        ObjId::Id(counter, actor, _) => {
            let start = change.start_op().get();
            actor == change.actor_id() && *counter >= start && *counter < start + change.len() as u64
        }
    }
}

/// What one change did at the top level of the document.
#[derive(Debug, Default)]
struct Touched {
    /// Top-level keys the change wrote or replaced directly.
    roots: BTreeSet<String>,
    /// Lists it inserted entries into, with the entries' object ids.
    inserted: Vec<(String, ObjId)>,
    /// Lists it deleted entries from.
    deleted: BTreeSet<String>,
    /// Entries that existed before it whose fields it wrote: (list, entry, key).
    entry_puts: Vec<(String, ObjId, String)>,
    /// Anything else inside a top-level object (text splices, location fields).
    inner: BTreeSet<String>,
}

impl Touched {
    fn keys(&self) -> BTreeSet<String> {
        let mut all = self.roots.clone();
        all.extend(self.inserted.iter().map(|(k, _)| k.clone()));
        all.extend(self.deleted.iter().cloned());
        all.extend(self.entry_puts.iter().map(|(k, _, _)| k.clone()));
        all.extend(self.inner.iter().cloned());
        all
    }
}

fn touched(order: &WorkOrder, change: &Change) -> Touched {
    let doc = order.automerge();
    let mut t = Touched::default();
    for patch in doc.diff(change.deps(), &[change.hash()]) {
        let root_key = match patch.path.first() {
            Some((_, Prop::Map(key))) => key.clone(),
            Some((_, Prop::Seq(_))) => continue,
            None => match &patch.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                    t.roots.insert(key.clone());
                    continue;
                }
                PatchAction::Conflict { prop: Prop::Map(key) }
                | PatchAction::Increment { prop: Prop::Map(key), .. } => {
                    t.roots.insert(key.clone());
                    continue;
                }
                _ => continue,
            },
        };
        let is_list = HISTORY_LISTS.contains(&root_key.as_str()) || root_key == "checklist";
        match (patch.path.len(), &patch.action) {
            (1, PatchAction::Insert { values, .. }) if is_list => {
                for (_, id, _) in values.iter() {
                    t.inserted.push((root_key.clone(), id.clone()));
                }
            }
            (1, PatchAction::DeleteSeq { .. } | PatchAction::PutSeq { .. }) if is_list => {
                t.deleted.insert(root_key);
            }
            (2, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) if is_list => {
                if !made_by(&patch.obj, change) {
                    t.entry_puts.push((root_key, patch.obj.clone(), key.clone()));
                }
            }
            _ if is_list => {
                // Deeper than an entry's fields: entries hold scalars only.
                if !patch.path.get(1).is_some_and(|(_, _)| made_by(&patch.obj, change)) {
                    t.deleted.insert(root_key);
                }
            }
            _ => {
                t.inner.insert(root_key);
            }
        }
    }
    t
}

/// Judges one change by `author` against the order as the author saw it. `None`: valid.
fn judge(
    order: &WorkOrder,
    change: &Change,
    who: &Author,
    t: &Touched,
    prior: Option<&Prior>,
) -> Result<Option<RejectReason>, CoreError> {
    let author = &who.identity;
    let doc = order.automerge();
    let keys = t.keys();
    if keys.iter().any(|k| SERVER_ONLY.contains(&k.as_str())) {
        // A server's own change (the incident it put the order in: its in-process edits go
        // through the same review) writes the server's fields, and only those. Only server
        // processes hold the System role; a device's change under a server's actor is refused
        // before review unless the server's receipt vouches for it.
        if author.role == Role::System && keys.iter().all(|k| SERVER_ONLY.contains(&k.as_str())) {
            return Ok(None);
        }
        return Ok(Some(RejectReason::ServerOnly));
    }
    if keys.iter().any(|k| IMMUTABLE.contains(&k.as_str())) {
        return Ok(Some(RejectReason::Immutable));
    }
    let known = |k: &String| field_of(k).is_some() || k == "transitions";
    if !keys.iter().all(known) {
        return Ok(Some(RejectReason::InvalidShape));
    }
    // Replacing a list or the description object, or editing or removing history entries.
    let replaced_object =
        t.roots.iter().any(|k| HISTORY_LISTS.contains(&k.as_str()) || k == "checklist" || k == "description");
    let history_edit = t.deleted.iter().chain(t.entry_puts.iter().map(|(k, _, _)| k)).any(|k| k != "checklist")
        || t.deleted.contains("checklist")
        || t.entry_puts.iter().any(|(k, _, key)| k == "checklist" && key != "done");
    if replaced_object || history_edit {
        return Ok(Some(RejectReason::AppendOnly));
    }

    // Shape, read at the change's own heads (no copy of the document): the fields it touched
    // must parse, and texts and lists stay within their limits.
    let after = At { doc, heads: vec![change.hash()] };
    if !keys.iter().all(|key| after.shape_ok(key)) {
        return Ok(Some(RejectReason::InvalidShape));
    }
    let mut closes = false;
    // A signature and the completion that names it come in one change, and only so.
    let mut signatures_named = BTreeSet::new();
    let mut signatures_added = BTreeSet::new();
    for (list, entry) in &t.inserted {
        if doc.object_type(entry).ok() != Some(ObjType::Map) {
            return Ok(Some(RejectReason::InvalidShape));
        }
        let fields = after.entry_fields(entry);
        let allowed = entry_keys(list);
        if fields.iter().any(|(k, v)| !allowed.contains(&k.as_str()) || v.chars().count() > MAX_NOTE_CHARS) {
            return Ok(Some(RejectReason::InvalidShape));
        }
        let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let user = author.user.to_string();
        let device = author.device.to_string();
        let attributed = match list.as_str() {
            "transitions" => {
                get("by") == Some(&user) && get("role") == Some(author.role.code()) && get("device") == Some(&device)
            }
            "notes" | "time_log" => get("by") == Some(&user) && get("device") == Some(&device),
            "parts" | "attachments" => get("by") == Some(&user),
            _ => true,
        };
        if !attributed {
            return Ok(Some(RejectReason::Misattributed));
        }
        closes |= list == "transitions" && get("action") == Some("close");
        match list.as_str() {
            "transitions" => {
                if let Some(signature) = get("signature") {
                    if get("action") != Some("complete") || !is_sha256(signature) {
                        return Ok(Some(RejectReason::InvalidShape));
                    }
                    signatures_named.insert(signature.to_owned());
                }
            }
            "attachments" => {
                // Named by content, typed: what every reader (and a phone's file paths) takes.
                let named = get("sha256").is_some_and(is_sha256);
                let typed = get("mime").is_some_and(is_mime);
                if !named || !typed {
                    return Ok(Some(RejectReason::InvalidShape));
                }
                let kind = get("kind").map(crate::work_order::AttachmentKind::from_code).transpose();
                let size_ok = get("size").is_none_or(|n| n.parse::<i64>().is_ok_and(|n| n >= 0));
                let caption_ok =
                    get("caption").is_none_or(|c| c.chars().count() <= crate::work_order::MAX_SHORT_TEXT_CHARS);
                match kind {
                    Err(_) => return Ok(Some(RejectReason::InvalidShape)),
                    _ if !size_ok || !caption_ok => return Ok(Some(RejectReason::InvalidShape)),
                    Ok(Some(crate::work_order::AttachmentKind::Signature)) => {
                        if !get("mime").is_some_and(|m| m.starts_with("image/")) {
                            return Ok(Some(RejectReason::InvalidShape));
                        }
                        signatures_added.insert(get("sha256").unwrap_or_default().to_owned());
                    }
                    Ok(_) => {}
                }
            }
            _ => {}
        }
    }
    if signatures_named != signatures_added {
        return Ok(Some(RejectReason::InvalidShape));
    }

    // Permissions, as the author saw the order: the document at the change's dependencies,
    // folded only when a rule needs the state (a transition alone is judged by the fold).
    let fields: Vec<Field> = keys.iter().filter_map(|k| field_of(k)).collect();
    if fields.is_empty() && !closes {
        return Ok(None);
    }
    let (grade, state, reporter) = match prior.filter(|p| p.at(change.deps())) {
        Some(prior) => (prior.grade, prior.state.clone(), prior.reporter),
        None => {
            let before = WorkOrder::from_automerge(doc.fork_at(change.deps())?)?;
            (before.grade()?, before.state()?, before.reporter()?)
        }
    };
    if closes && !who.closing.allows(grade, author.role) {
        return Ok(Some(RejectReason::ClosingAuthority));
    }
    for field in fields {
        if let Err(why) = permissions::check_field(field, &state, reporter, author.user, author.role) {
            return Ok(Some(RejectReason::Refused(why)));
        }
    }
    Ok(None)
}

/// The document as of some heads, read in place.
struct At<'a> {
    doc: &'a automerge::Automerge,
    heads: Vec<ChangeHash>,
}

impl At<'_> {
    fn get(&self, obj: &ObjId, key: &str) -> Option<(Value<'_>, ObjId)> {
        self.doc.get_at(obj, key, &self.heads).ok().flatten()
    }

    fn str(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.get(obj, key)? {
            (Value::Scalar(s), _) => s.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Whether a top-level field the change touched is still well formed.
    fn shape_ok(&self, key: &str) -> bool {
        match key {
            "grade" => self.str(&ROOT, key).is_some_and(|g| Grade::from_code(&g).is_ok()),
            "category" => self.str(&ROOT, key).is_some_and(|c| crate::Category::from_code(&c).is_ok()),
            "location" => match self.get(&ROOT, key) {
                Some((Value::Object(ObjType::Map), obj)) => {
                    let part = |k: &str| self.str(&obj, k);
                    // Its four parts, each text, and nothing else.
                    let parts_only = self.doc.keys_at(&obj, &self.heads).all(|k| {
                        matches!(k.as_str(), "project" | "building" | "unit" | "area")
                            && matches!(self.get(&obj, &k), Some((Value::Scalar(v), _)) if v.is_str())
                    });
                    if !parts_only {
                        return false;
                    }
                    let location = crate::Location {
                        project: part("project").unwrap_or_default(),
                        building: part("building"),
                        unit: part("unit"),
                        area: part("area"),
                    };
                    location.check().is_ok()
                }
                _ => false,
            },
            // Absent (removed) or an asset id.
            "asset" => match self.get(&ROOT, key) {
                None => true,
                Some((Value::Scalar(_), _)) => {
                    self.str(&ROOT, key).is_some_and(|id| crate::work_order::asset_id_ok(&id))
                }
                _ => false,
            },
            // Absent (removed) or a window `Appointment::new` accepts.
            "appointment" => match self.get(&ROOT, key) {
                None => true,
                Some((Value::Object(ObjType::Map), obj)) => {
                    let int = |k: &str| match self.get(&obj, k) {
                        Some((Value::Scalar(s), _)) => match s.as_ref() {
                            automerge::ScalarValue::Int(n) => Some(*n),
                            _ => None,
                        },
                        _ => None,
                    };
                    let only_window = self.doc.keys_at(&obj, &self.heads).all(|k| k == "from" || k == "to");
                    only_window
                        && matches!((int("from"), int("to")), (Some(from), Some(to)) if crate::work_order::Appointment::new(from, to).is_ok())
                }
                _ => false,
            },
            "description" => match self.get(&ROOT, key) {
                Some((Value::Object(ObjType::Text), obj)) => {
                    self.doc.text_at(&obj, &self.heads).is_ok_and(|text| text.chars().count() <= MAX_DESCRIPTION_CHARS)
                }
                _ => false,
            },
            list => match self.get(&ROOT, list) {
                Some((Value::Object(ObjType::List), obj)) => self.doc.length_at(&obj, &self.heads) <= MAX_LIST_ENTRIES,
                _ => false,
            },
        }
    }

    /// A list entry's fields, every value as text (objects as `<object>`).
    fn entry_fields(&self, entry: &ObjId) -> Vec<(String, String)> {
        self.doc
            .map_range_at(entry, .., &self.heads)
            .map(|item| {
                let value = match item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => s.to_string(),
                    automerge::ValueRef::Scalar(s) => s.to_string(),
                    automerge::ValueRef::Object(_) => "<object>".into(),
                };
                (item.key.to_string(), value)
            })
            .collect()
    }
}

/// Judges `changes` (new to the server, in causal order) written by the author's device and
/// compensates the invalid ones in one change of `server`'s. Changes of other actors are not
/// judged (the server's own; changes relayed during recovery were judged when first pushed).
/// Returns what was rejected. `prior`: the order as it stood before these changes, if the caller
/// has it (see [`Prior`]).
pub fn review(
    order: &mut WorkOrder,
    changes: &[Change],
    who: &Author,
    server: &Identity,
    prior: Option<&Prior>,
    now_ms: i64,
) -> Result<Vec<Rejection>, CoreError> {
    let author = &who.identity;
    let actor = author.device.actor();
    let already = earlier_rejections(order, changes, &actor);
    let mut rejected: Vec<(Rejection, &Change, Touched)> = Vec::new();
    for change in changes {
        if change.actor_id() != &actor || already.contains(&change.hash()) || change.deps().is_empty() {
            // The creating change is checked by the server's creation rules.
            continue;
        }
        let t = touched(order, change);
        if let Some(reason) = judge(order, change, who, &t, prior)? {
            let rejection = Rejection {
                change: change.hash(),
                by: author.user,
                role: author.role,
                device: author.device,
                reason,
                fields: t.keys().into_iter().collect(),
                at_ms: now_ms,
            };
            rejected.push((rejection, change, t));
        }
    }
    if rejected.is_empty() {
        return Ok(Vec::new());
    }
    // Every change ever rejected here, so that a restore never brings back an earlier one's value.
    let earlier: Vec<Change> = already.iter().filter_map(|h| order.automerge().get_change_by_hash(h)).collect();
    let rejected_changes: Vec<&Change> = rejected.iter().map(|(_, c, _)| *c).chain(earlier.iter()).collect();
    // This push's rejected changes and every change of the push built on one of them: the
    // document as it would stand without them is where a removed value is found again.
    let mut tainted: Vec<&Change> = Vec::new();
    for change in changes {
        let built_on = change.deps().iter().any(|d| tainted.iter().any(|t| t.hash() == *d));
        if built_on || rejected.iter().any(|(_, c, _)| c.hash() == change.hash()) {
            tainted.push(change);
        }
    }
    let undo = Undo { rejected: &rejected_changes, tainted: &tainted };
    order.set_device(server.device);
    order.raw_change(now_ms, "compensate", |tx| {
        // Newest first, so that an older change's restore sees what the newer ones left.
        for (rejection, change, t) in rejected.iter().rev() {
            compensate(tx, change, t, &undo)?;
            record(tx, rejection)?;
        }
        Ok(())
    })?;
    Ok(rejected.into_iter().map(|(r, _, _)| r).collect())
}

fn by_any(id: &ObjId, changes: &[&Change]) -> bool {
    changes.iter().any(|c| made_by(id, c))
}

/// Undoes what `change` did, on the document as it is now.
/// What a compensation undoes: every change ever rejected on the order (no value of theirs is
/// brought back), and this push's rejected changes with the push's changes built on them (a
/// removed value is read from the document without them).
struct Undo<'a> {
    rejected: &'a [&'a Change],
    tainted: &'a [&'a Change],
}

fn compensate(
    tx: &mut automerge::transaction::Transaction<'_>,
    change: &Change,
    t: &Touched,
    undo: &Undo<'_>,
) -> Result<(), automerge::AutomergeError> {
    let deps = change.deps();
    // Entries it added: removed (their bytes stay in the history).
    for (list, entry) in &t.inserted {
        if let Some((_, list_obj)) = tx.get(ROOT, list.as_str())? {
            let len = tx.length(&list_obj);
            for i in (0..len).rev() {
                if let Some((_, id)) = tx.get(&list_obj, i)?
                    && &id == entry
                {
                    tx.delete(&list_obj, i)?;
                }
            }
        }
    }
    // Fields it wrote in existing entries (checklist `done`): back to the value before it.
    for (_, entry, key) in &t.entry_puts {
        restore_key(tx, entry, key, undo)?;
    }
    // Top-level values it wrote: back to a valid concurrent value, or the value before it.
    for key in &t.roots {
        restore_key(tx, &ROOT, key, undo)?;
    }
    // Fields it wrote inside a top-level map (the location, the appointment, the server's
    // incident and rejection records): each back, two levels down (a rejection record is a map
    // of maps).
    for key in t.inner.iter().filter(|k| matches!(k.as_str(), "location" | "appointment" | "incident" | "rejections")) {
        if t.roots.contains(key) {
            continue;
        }
        if let Some((Value::Object(ObjType::Map), map)) = tx.get(ROOT, key.as_str())? {
            restore_map(tx, &map, deps, undo, 2)?;
        }
    }
    // Text it spliced into the description: the description as it was before.
    if t.inner.contains("description")
        && let Some((Value::Object(ObjType::Text), text)) = tx.get(ROOT, "description")?
    {
        let before = tx.text_at(&text, deps)?;
        tx.update_text(&text, &before)?;
    }
    // Entries it deleted from a history list: copied back in.
    for list in &t.deleted {
        let Some((_, list_obj)) = tx.get_at(ROOT, list.as_str(), deps)? else { continue };
        let present: BTreeSet<ObjId> =
            (0..tx.length(&list_obj)).filter_map(|i| tx.get(&list_obj, i).ok().flatten().map(|(_, id)| id)).collect();
        for i in 0..tx.length_at(&list_obj, deps) {
            if let Some((Value::Object(ObjType::Map), old)) = tx.get_at(&list_obj, i, deps)?
                && !present.contains(&old)
            {
                let at = tx.length(&list_obj);
                let copy = tx.insert_object(&list_obj, at, ObjType::Map)?;
                copy_object(tx, &old, &copy, ObjType::Map, Some(deps))?;
            }
        }
    }
    Ok(())
}

/// Every field of a map back (see [`restore_key`]), and `depth - 1` levels of the maps inside.
fn restore_map(
    tx: &mut automerge::transaction::Transaction<'_>,
    map: &ObjId,
    deps: &[ChangeHash],
    undo: &Undo<'_>,
    depth: u8,
) -> Result<(), automerge::AutomergeError> {
    let mut fields: BTreeSet<String> = tx.keys(map).collect();
    fields.extend(tx.keys_at(map, deps));
    for field in fields {
        restore_key(tx, map, &field, undo)?;
        if depth > 1
            && let Some((Value::Object(ObjType::Map), inner)) = tx.get(map, field.as_str())?
        {
            restore_map(tx, &inner, deps, undo, depth - 1)?;
        }
    }
    Ok(())
}

/// Puts `obj.key` back to a value no rejected change wrote: a concurrent valid value if there
/// is one, else the value before the rejected write (walking back past earlier rejected writes),
/// copying an object's content.
fn restore_key(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &ObjId,
    key: &str,
    undo: &Undo<'_>,
) -> Result<(), automerge::AutomergeError> {
    let rejected = undo.rejected;
    match tx.get(obj, key)? {
        Some((_, winner)) if !by_any(&winner, rejected) => return Ok(()),
        None => return restore_removed(tx, obj, key, undo),
        _ => {}
    }
    let mut at: Option<Vec<ChangeHash>> = None;
    let source = loop {
        let all = match &at {
            None => tx.get_all(obj, key)?,
            Some(heads) => tx.get_all_at(obj, key, heads)?,
        };
        if let Some(valid) = all.iter().find(|(_, id)| !by_any(id, rejected)) {
            break Some((valid.clone(), at));
        }
        let Some(writer) = all.first().and_then(|(_, id)| rejected.iter().find(|c| made_by(id, c))) else {
            break None;
        };
        at = Some(writer.deps().to_vec());
    };
    match source {
        None => tx.delete(obj, key),
        Some(((Value::Scalar(s), _), _)) => tx.put(obj, key, s.into_owned()),
        Some(((Value::Object(kind), old), at)) => {
            let copy = tx.put_object(obj, key, kind)?;
            copy_object(tx, &old, &copy, kind, at.as_deref())
        }
    }
}

/// A key a rejected change removed: its value as the document would hold it without this push's
/// rejected changes and the push's changes built on them (so that an honest concurrent removal
/// stands, and a harmless change made after the removal does not keep it). The document's heads,
/// each such change replaced by its dependencies.
fn restore_removed(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &ObjId,
    key: &str,
    undo: &Undo<'_>,
) -> Result<(), automerge::AutomergeError> {
    let mut stack: Vec<ChangeHash> = tx.get_heads();
    let mut heads: BTreeSet<ChangeHash> = BTreeSet::new();
    let mut seen: BTreeSet<ChangeHash> = BTreeSet::new();
    while let Some(hash) = stack.pop() {
        if !seen.insert(hash) {
            continue;
        }
        match undo.tainted.iter().chain(undo.rejected.iter()).find(|c| c.hash() == hash) {
            Some(change) => stack.extend(change.deps().iter().copied()),
            None => {
                heads.insert(hash);
            }
        }
    }
    let heads: Vec<ChangeHash> = heads.into_iter().collect();
    let found = tx.get_all_at(obj, key, &heads)?.into_iter().find(|(_, id)| !by_any(id, undo.rejected));
    let Some((value, old)) = found else { return Ok(()) };
    match value {
        Value::Scalar(s) => tx.put(obj, key, s.into_owned()),
        Value::Object(kind) => {
            let copy = tx.put_object(obj, key, kind)?;
            copy_object(tx, &old, &copy, kind, Some(&heads))
        }
    }
}

/// Copies an object's content (scalars, and maps and lists of scalars) as of `at` (or now).
fn copy_object(
    tx: &mut automerge::transaction::Transaction<'_>,
    from: &ObjId,
    to: &ObjId,
    kind: ObjType,
    at: Option<&[ChangeHash]>,
) -> Result<(), automerge::AutomergeError> {
    match kind {
        ObjType::Text => {
            let text = match at {
                Some(heads) => tx.text_at(from, heads)?,
                None => tx.text(from)?,
            };
            tx.splice_text(to, 0, 0, &text)
        }
        ObjType::Map | ObjType::Table => {
            let keys: Vec<String> = match at {
                Some(heads) => tx.keys_at(from, heads).collect(),
                None => tx.keys(from).collect(),
            };
            for key in keys {
                let value = match at {
                    Some(heads) => tx.get_at(from, key.as_str(), heads)?,
                    None => tx.get(from, key.as_str())?,
                };
                match value {
                    Some((Value::Scalar(s), _)) => tx.put(to, key.as_str(), s.into_owned())?,
                    Some((Value::Object(k), child)) => {
                        let copy = tx.put_object(to, key.as_str(), k)?;
                        copy_object(tx, &child, &copy, k, at)?;
                    }
                    None => {}
                }
            }
            Ok(())
        }
        ObjType::List => {
            let len = match at {
                Some(heads) => tx.length_at(from, heads),
                None => tx.length(from),
            };
            for i in 0..len {
                let value = match at {
                    Some(heads) => tx.get_at(from, i, heads)?,
                    None => tx.get(from, i)?,
                };
                match value {
                    Some((Value::Scalar(s), _)) => tx.insert(to, i, s.into_owned())?,
                    Some((Value::Object(k), child)) => {
                        let copy = tx.insert_object(to, i, k)?;
                        copy_object(tx, &child, &copy, k, at)?;
                    }
                    None => {}
                }
            }
            Ok(())
        }
    }
}

/// The rejection record, under `rejections.<change hash>`.
fn record(tx: &mut automerge::transaction::Transaction<'_>, r: &Rejection) -> Result<(), automerge::AutomergeError> {
    let map = match tx.get(ROOT, "rejections")? {
        Some((Value::Object(ObjType::Map), map)) => map,
        _ => tx.put_object(ROOT, "rejections", ObjType::Map)?,
    };
    let entry = tx.put_object(&map, r.change.to_string(), ObjType::Map)?;
    tx.put(&entry, "by", r.by.to_string())?;
    tx.put(&entry, "role", r.role.code())?;
    tx.put(&entry, "device", r.device.to_string())?;
    tx.put(&entry, "reason", r.reason.code())?;
    tx.put(&entry, "fields", r.fields.join(","))?;
    tx.put(&entry, "at", r.at_ms)?;
    Ok(())
}

/// Reads the rejection records of a document.
/// The changes the server's records say it rejected before. A record that the author's own
/// change in this push created is a forgery, not the server's: a device cannot mark its own
/// invalid change as judged already (the forged record is itself compensated as a server-only
/// write). Records made by changes of other actors that the push carries again (the server's
/// own compensations) still count.
fn earlier_rejections(order: &WorkOrder, changes: &[Change], author: &automerge::ActorId) -> BTreeSet<ChangeHash> {
    let doc = order.automerge();
    let Ok(Some((Value::Object(ObjType::Map), map))) = doc.get(ROOT, "rejections") else {
        return BTreeSet::new();
    };
    let forged = |id: &ObjId| match id {
        ObjId::Id(counter, actor, _) if actor == author => {
            changes.iter().any(|c| c.actor_id() == actor && (c.start_op().get()..=c.max_op()).contains(counter))
        }
        _ => false,
    };
    doc.map_range(&map, ..)
        .filter(|item| matches!(item.value, automerge::ValueRef::Object(_)) && !forged(&item.id()))
        .filter_map(|item| item.key.parse().ok())
        .collect()
}

pub(crate) fn read_rejections(doc: &automerge::Automerge) -> Vec<Rejection> {
    let Ok(Some((Value::Object(ObjType::Map), map))) = doc.get(ROOT, "rejections") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in doc.map_range(&map, ..) {
        let automerge::ValueRef::Object(_) = item.value else { continue };
        let entry = item.id();
        let get = |k: &str| match doc.get(&entry, k) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::Str(s) => Some(s.to_string()),
                automerge::ScalarValue::Int(i) => Some(i.to_string()),
                _ => None,
            },
            _ => None,
        };
        let parsed = (|| {
            Some(Rejection {
                change: item.key.parse().ok()?,
                by: get("by")?.parse().ok()?,
                role: Role::from_code(&get("role")?).ok()?,
                device: get("device")?.parse().ok()?,
                reason: RejectReason::from_code(&get("reason")?)?,
                fields: get("fields")?.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect(),
                at_ms: get("at")?.parse().ok()?,
            })
        })();
        out.extend(parsed);
    }
    out.sort_by_key(|r| r.at_ms);
    out
}
