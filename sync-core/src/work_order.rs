//! One work order as one Automerge document.
//!
//! The document holds ids and codes only: names and phone numbers of owners never enter it,
//! because a document's history cannot be erased. Every edit is one Automerge change made with
//! the editing device's actor id. Lists (transitions, notes, parts, time log, attachments) are
//! append-only; the description is Automerge text, so concurrent edits merge by character.
//!
//! Reading a document never panics: anything that is not a well-formed Loopwork work order is a
//! [`DocumentError`].

use std::fmt;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};

use crate::classification::{Category, Channel, Grade, Kind};
use crate::error::{CoreError, DocumentError};
use crate::identity::Identity;
use crate::ids::{DeviceId, OrderId, UserId};
use crate::lifecycle::{self, Action, HoldReason, OrderFacts, OrderState, Status, Transition};
use crate::location::Location;
use crate::role::Role;

/// The document schema this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Limits on free text, so one edit cannot bloat every replica's copy.
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;
pub const MAX_NOTE_CHARS: usize = 2_000;
pub const MAX_SHORT_TEXT_CHARS: usize = 200;

/// Whether `id` is an asset id as the register makes them and QR codes carry them: 1 to 64 ASCII
/// letters, digits, `-` or `_`.
pub fn asset_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is needed to register a new order.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub kind: Kind,
    pub category: Category,
    pub grade: Grade,
    pub channel: Channel,
    pub location: Location,
    pub description: String,
    /// The owner (业主) the order is for: their user id, never their name.
    pub reporter: UserId,
    /// When the problem happened, if the reporter said (device ms).
    pub occurred_at_ms: Option<i64>,
}

/// The incident (事件单) an order belongs to, as the server records it in the order's document
/// (`incident`: `{number, place, category}`), so that a technician's phone groups the orders of
/// one incident and works them together offline (docs/incidents.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRef {
    /// The organization's number for the incident (事件 #12).
    pub number: i64,
    /// Where, in Chinese (`5栋 2单元01立管`).
    pub place: String,
    /// A category code, or `*`.
    pub category: String,
}

/// When the caller would like someone to come (预约时间): a window, e.g. tomorrow 14:00–17:00.
/// Kept in the order's document (`appointment`: `{from, to}`, ms), so the technician's phone has
/// it offline; office staff, the reporting owner before acceptance and the assigned technician
/// (改约, agreed with the owner) may change it ([`crate::permissions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appointment {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Appointment {
    /// The widest window: a week.
    pub const MAX_SPAN_MS: i64 = 7 * 86_400_000;
    /// The earliest and latest instants a window may hold (2000-01-01 and 2100-01-01, UTC).
    const EARLIEST_MS: i64 = 946_684_800_000;
    const LATEST_MS: i64 = 4_102_444_800_000;

    /// A window that starts before it ends, spans at most [`Appointment::MAX_SPAN_MS`], and lies
    /// between the years 2000 and 2100.
    pub fn new(from_ms: i64, to_ms: i64) -> Result<Self, CoreError> {
        let within = |at: i64| (Self::EARLIEST_MS..=Self::LATEST_MS).contains(&at);
        if !within(from_ms) || !within(to_ms) || to_ms <= from_ms || to_ms - from_ms > Self::MAX_SPAN_MS {
            return Err(CoreError::InvalidInput(
                "an appointment is a window that starts before it ends, at most 7 days long, between 2000 and 2100"
                    .into(),
            ));
        }
        Ok(Appointment { from_ms, to_ms })
    }
}

/// A note appended by someone working the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub id: String,
    pub by: UserId,
    pub device: DeviceId,
    pub at_ms: i64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecklistItem {
    pub id: String,
    pub label: String,
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartUsed {
    pub name: String,
    pub quantity: i64,
    pub by: UserId,
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub by: UserId,
    pub device: DeviceId,
    pub start_ms: i64,
    pub end_ms: i64,
}

crate::classification::vocabulary!(
    /// What an attachment is.
    AttachmentKind {
        Photo => "photo", "照片", "photo";
        /// The owner's signature, named by the completion it confirms (see [`crate::signature`]).
        Signature => "signature", "业主签字", "owner's signature";
        File => "file", "文件", "file";
    }
);

/// Whether `text` names content: a SHA-256 as 64 lowercase hex digits (the one spelling every
/// reader and path on a phone takes).
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `text` reads as a MIME type an attachment may give (`image/jpeg`): ASCII, with a
/// `/`, at most 100 characters.
pub fn is_mime(text: &str) -> bool {
    text.len() <= 100 && text.contains('/') && text.is_ascii()
}

impl AttachmentKind {
    /// The kind of an entry written before attachments recorded one: pictures were photos.
    pub fn inferred(mime: &str) -> AttachmentKind {
        if mime.starts_with("image/") { AttachmentKind::Photo } else { AttachmentKind::File }
    }
}

/// A photo, signature or file, by content hash; the bytes travel separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentRef {
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub mime: String,
    pub kind: AttachmentKind,
    /// The content's length in bytes, as its author's device gave it.
    pub size: Option<i64>,
    pub caption: Option<String>,
    pub by: UserId,
    pub at_ms: i64,
}

/// An attachment to add: the content's hash and what its author says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttachment {
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub mime: String,
    pub kind: AttachmentKind,
    pub size: Option<i64>,
    pub caption: Option<String>,
}

impl NewAttachment {
    /// A picture or file by its hash and type, its kind inferred from the type.
    pub fn of(sha256_hex: &str, mime: &str) -> NewAttachment {
        NewAttachment {
            sha256: sha256_hex.to_owned(),
            mime: mime.to_owned(),
            kind: AttachmentKind::inferred(mime),
            size: None,
            caption: None,
        }
    }

    fn check(&self) -> Result<(), CoreError> {
        if !is_sha256(&self.sha256) {
            return Err(CoreError::InvalidInput("an attachment is named by its lowercase hex SHA-256".into()));
        }
        if !is_mime(&self.mime) {
            return Err(CoreError::InvalidInput("an attachment needs a MIME type such as image/jpeg".into()));
        }
        if self.size.is_some_and(|n| n < 0) {
            return Err(CoreError::InvalidInput("an attachment's size is not negative".into()));
        }
        if self.kind == AttachmentKind::Signature && !self.mime.starts_with("image/") {
            return Err(CoreError::InvalidInput("a signature is a picture (image/png or image/jpeg)".into()));
        }
        if let Some(caption) = &self.caption {
            check_text("caption", caption, MAX_SHORT_TEXT_CHARS)?;
        }
        Ok(())
    }
}

/// The longest message a change may carry (sync-core's are a word: `create`, `note`, an action).
pub const MAX_MESSAGE_BYTES: usize = 64;

/// Parses one Automerge change and checks its checksum. Automerge's own parser does not: a
/// change with a flipped byte would otherwise parse as a different, valid-looking change under
/// the same actor and sequence number, which no replica could ever reconcile.
pub fn parse_change(bytes: &[u8]) -> Result<automerge::Change, DocumentError> {
    crate::change_bounds::check(bytes)?;
    let change =
        contained(|| automerge::Change::try_from(bytes))?.map_err(|e| DocumentError::Corrupt(e.to_string()))?;
    let stored_checksum = bytes.get(4..8).ok_or_else(|| DocumentError::Corrupt("truncated change".into()))?;
    if stored_checksum != &change.hash().0[..4] {
        return Err(DocumentError::Corrupt("the change's checksum does not match its content".into()));
    }
    // Nothing beyond the order's content: no bytes after the columns (Automerge keeps them, and
    // they would carry data no rule reads into every replica for good), and a short message.
    if !change.extra_bytes().is_empty() {
        return Err(DocumentError::Corrupt("a change may not carry extra bytes after its columns".into()));
    }
    if change.message().is_some_and(|m| m.len() > MAX_MESSAGE_BYTES) {
        return Err(DocumentError::Corrupt(format!("a change's message is at most {MAX_MESSAGE_BYTES} bytes")));
    }
    // Automerge keeps a change's content, not its bytes: a document saved and loaded again
    // re-encodes it. Bytes that Automerge would encode otherwise would then have another hash.
    if contained(|| automerge::Change::from(change.decode()).hash())? != change.hash() {
        return Err(DocumentError::NonCanonical(change.hash().to_string()));
    }
    Ok(change)
}

/// Runs one of Automerge's decoders on bytes from elsewhere. Some of them panic on malformed
/// input (fuzzing found a change chunk that does: a bug of the decoder, reported upstream): a
/// panic is turned into a `Corrupt` error, so that no input can bring down a request or a sync.
fn contained<T>(decode: impl FnOnce() -> T) -> Result<T, DocumentError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .map_err(|_| DocumentError::Corrupt("Automerge's decoder failed on these bytes".into()))
}

/// A work-order document.
#[derive(Debug, Clone)]
pub struct WorkOrder {
    doc: Automerge,
    id: OrderId,
}

impl WorkOrder {
    /// Registers a new order; the first change of its document.
    pub fn create(new: &NewOrder, by: &Identity, at_ms: i64) -> Result<Self, CoreError> {
        let id = OrderId::new();
        Self::create_with_id(id, new, by, at_ms)
    }

    /// As [`WorkOrder::create`], with a chosen id (for the server's demo data and tests).
    pub fn create_with_id(id: OrderId, new: &NewOrder, by: &Identity, at_ms: i64) -> Result<Self, CoreError> {
        check_text("description", &new.description, MAX_DESCRIPTION_CHARS)?;
        check_location(&new.location)?;
        let mut doc = Automerge::new().with_actor(by.device.actor());
        doc.transact_with(
            |_| CommitOptions::default().with_time(at_ms / 1000).with_message("create"),
            |tx| -> Result<(), automerge::AutomergeError> {
                tx.put(ROOT, "schema", SCHEMA_VERSION)?;
                tx.put(ROOT, "id", id.to_string())?;
                tx.put(ROOT, "created_at", at_ms)?;
                tx.put(ROOT, "created_by", by.user.to_string())?;
                tx.put(ROOT, "created_role", by.role.code())?;
                tx.put(ROOT, "reporter", new.reporter.to_string())?;
                tx.put(ROOT, "kind", new.kind.code())?;
                tx.put(ROOT, "category", new.category.code())?;
                tx.put(ROOT, "grade", new.grade.code())?;
                tx.put(ROOT, "channel", new.channel.code())?;
                if let Some(at) = new.occurred_at_ms {
                    tx.put(ROOT, "occurred_at", at)?;
                }
                write_location(tx, &new.location)?;
                let text = tx.put_object(ROOT, "description", ObjType::Text)?;
                tx.splice_text(&text, 0, 0, &new.description)?;
                for list in ["transitions", "notes", "checklist", "parts", "time_log", "attachments"] {
                    tx.put_object(ROOT, list, ObjType::List)?;
                }
                Ok(())
            },
        )
        .map_err(|f| CoreError::from(f.error))?;
        Ok(WorkOrder { doc, id })
    }

    /// Reads a saved document (a full save, or any concatenation of chunks Automerge accepts).
    pub fn load(bytes: &[u8]) -> Result<Self, DocumentError> {
        crate::change_bounds::check_chunks(bytes)?;
        let doc = contained(|| Automerge::load(bytes))?.map_err(|e| DocumentError::Corrupt(e.to_string()))?;
        Self::from_automerge(doc)
    }

    /// Reads a document from a snapshot followed by incremental chunks, in order.
    pub fn load_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, DocumentError> {
        let mut doc = Automerge::new();
        for chunk in chunks {
            crate::change_bounds::check_chunks(chunk)?;
            contained(|| doc.load_incremental(chunk))?.map_err(|e| DocumentError::Corrupt(e.to_string()))?;
        }
        Self::from_automerge(doc)
    }

    /// Builds an order from changes received from elsewhere, each checked by [`parse_change`].
    pub fn from_changes<'a>(changes: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, DocumentError> {
        let parsed = changes.into_iter().map(parse_change).collect::<Result<Vec<_>, _>>()?;
        Self::from_parsed_changes(parsed)
    }

    /// Builds an order from already parsed (and checked) changes.
    pub fn from_parsed_changes(changes: Vec<automerge::Change>) -> Result<Self, DocumentError> {
        let mut doc = Automerge::new();
        doc.apply_changes(changes).map_err(|e| DocumentError::Corrupt(e.to_string()))?;
        Self::from_automerge(doc)
    }

    /// Wraps an Automerge document after checking that it is a work order.
    pub fn from_automerge(doc: Automerge) -> Result<Self, DocumentError> {
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(DocumentError::Corrupt("changes are missing their dependencies".into()));
        }
        let schema = match doc.get(ROOT, "schema") {
            Ok(Some((v, _))) => v.as_i64().ok_or(DocumentError::Foreign("schema"))?,
            _ => return Err(DocumentError::Foreign("schema")),
        };
        if schema > SCHEMA_VERSION {
            return Err(DocumentError::UnsupportedSchema(schema));
        }
        let id: OrderId = read_str(&doc, &ROOT, "id").ok_or(DocumentError::Foreign("id"))?.parse()?;
        let order = WorkOrder { doc, id };
        order.validate()?;
        Ok(order)
    }

    /// Every field a summary needs must parse (the rest is read leniently).
    pub fn validate(&self) -> Result<(), DocumentError> {
        self.kind()?;
        self.category()?;
        self.grade()?;
        self.reporter()?;
        for list in ["transitions", "notes", "checklist", "parts", "time_log", "attachments"] {
            self.list_obj(list)?;
        }
        Ok(())
    }

    /// Continues as `device`: its later edits carry that device's actor id.
    pub fn with_device(mut self, device: DeviceId) -> Self {
        self.doc.set_actor(device.actor());
        self
    }

    pub fn set_device(&mut self, device: DeviceId) {
        self.doc.set_actor(device.actor());
    }

    pub fn id(&self) -> OrderId {
        self.id
    }

    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The whole document, compressed.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The whole document without column compression: larger, and several times cheaper to
    /// write. For a store that compresses on its own way out (the server's sync frames do).
    pub fn save_uncompressed(&self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// The changes made since `heads`, as raw change bytes (each a loadable chunk).
    pub fn changes_since(&self, heads: &[ChangeHash]) -> Vec<(ChangeHash, Vec<u8>)> {
        self.doc.get_changes(heads).into_iter().map(|c| (c.hash(), c.raw_bytes().to_vec())).collect()
    }

    /// Merges another replica of the same order.
    pub fn merge(&mut self, other: &mut WorkOrder) -> Result<Vec<ChangeHash>, CoreError> {
        if other.id != self.id {
            return Err(DocumentError::WrongOrder(other.id.to_string()).into());
        }
        Ok(self.doc.merge(&mut other.doc)?)
    }

    /// Applies changes received from elsewhere (raw change bytes). A chunk that is not a valid
    /// change is refused before anything is applied.
    pub fn apply_changes<'a>(&mut self, changes: impl IntoIterator<Item = &'a [u8]>) -> Result<(), CoreError> {
        let mut parsed = Vec::new();
        for bytes in changes {
            parsed.push(parse_change(bytes)?);
        }
        let mut candidate = self.doc.fork();
        candidate.apply_changes(parsed)?;
        let checked = WorkOrder::from_automerge(candidate)?;
        if checked.id != self.id {
            return Err(DocumentError::WrongOrder(checked.id.to_string()).into());
        }
        let actor = self.doc.get_actor().clone();
        self.doc = checked.doc.with_actor(actor);
        Ok(())
    }

    /// Applies parsed changes and checks the result, consuming the order: on error nothing is
    /// left half-applied because nothing is left. The server's path (it loads a fresh copy for
    /// every push), cheaper than [`WorkOrder::apply_changes`], which keeps the original on error.
    pub fn with_changes(self, changes: Vec<automerge::Change>) -> Result<WorkOrder, CoreError> {
        let order = self.with_changes_unvalidated(changes)?;
        order.validate()?;
        Ok(order)
    }

    /// As [`WorkOrder::with_changes`], without validating the fields: the server applies a push
    /// this way, judges it, compensates what is invalid, and validates after.
    pub fn with_changes_unvalidated(self, changes: Vec<automerge::Change>) -> Result<WorkOrder, CoreError> {
        let id = self.id;
        let actor = self.doc.get_actor().clone();
        let mut doc = self.doc;
        doc.apply_changes(changes)?;
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(DocumentError::Corrupt("changes are missing their dependencies".into()).into());
        }
        let id_now: Option<String> = read_str(&doc, &ROOT, "id");
        if id_now.as_deref() != Some(id.to_string().as_str()) {
            return Err(DocumentError::WrongOrder(id_now.unwrap_or_default()).into());
        }
        Ok(WorkOrder { doc: doc.with_actor(actor), id })
    }

    // ----- reading -----

    pub fn kind(&self) -> Result<Kind, DocumentError> {
        Kind::from_code(&self.required_str("kind")?)
    }

    pub fn category(&self) -> Result<Category, DocumentError> {
        Category::from_code(&self.required_str("category")?)
    }

    pub fn grade(&self) -> Result<Grade, DocumentError> {
        Grade::from_code(&self.required_str("grade")?)
    }

    pub fn channel(&self) -> Result<Channel, DocumentError> {
        Channel::from_code(&self.required_str("channel")?)
    }

    /// Whether the reporting owner registered the order themselves (in the app): the creator is
    /// the reporter, in the owner's role.
    pub fn reported_by_owner(&self) -> bool {
        let creator = read_str(&self.doc, &ROOT, "created_by");
        read_str(&self.doc, &ROOT, "created_role").as_deref() == Some(Role::Owner.code())
            && creator.is_some()
            && creator == read_str(&self.doc, &ROOT, "reporter")
    }

    pub fn reporter(&self) -> Result<UserId, DocumentError> {
        self.required_str("reporter")?.parse()
    }

    pub fn created_at_ms(&self) -> i64 {
        read_i64(&self.doc, &ROOT, "created_at").unwrap_or(0)
    }

    pub fn occurred_at_ms(&self) -> Option<i64> {
        read_i64(&self.doc, &ROOT, "occurred_at")
    }

    /// The caller's preferred window, if one is set (and well formed).
    pub fn appointment(&self) -> Option<Appointment> {
        let Ok(Some((automerge::Value::Object(ObjType::Map), obj))) = self.doc.get(ROOT, "appointment") else {
            return None;
        };
        let f = Fields::of(&self.doc, &obj);
        Appointment::new(f.i64("from")?, f.i64("to")?).ok()
    }

    /// The asset the order is about (its id in the asset register), if one is named.
    pub fn asset(&self) -> Option<String> {
        read_str(&self.doc, &ROOT, "asset").filter(|id| asset_id_ok(id))
    }

    /// The incident (事件单) the server put the order in, as phones show and group it: its
    /// number, place and category. Absent until the order joins one; only the server writes it
    /// (docs/incidents.md).
    pub fn incident(&self) -> Option<IncidentRef> {
        let Ok(Some((automerge::Value::Object(ObjType::Map), obj))) = self.doc.get(ROOT, "incident") else {
            return None;
        };
        let f = Fields::of(&self.doc, &obj);
        Some(IncidentRef { number: f.i64("number")?, place: f.str("place")?, category: f.str("category")? })
    }

    /// The server's record of the order's incident (only the server writes it: a device's
    /// change is compensated as `server_only_field`).
    pub fn set_incident(&mut self, incident: &IncidentRef, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_text("incident place", &incident.place, MAX_SHORT_TEXT_CHARS)?;
        check_text("incident category", &incident.category, MAX_SHORT_TEXT_CHARS)?;
        self.change(at_ms, "incident", |tx| {
            let obj = tx.put_object(ROOT, "incident", ObjType::Map)?;
            tx.put(&obj, "number", incident.number)?;
            tx.put(&obj, "place", incident.place.as_str())?;
            tx.put(&obj, "category", incident.category.as_str())
        })
    }

    /// The number the server assigned, once the order has reached it.
    pub fn official_number(&self) -> Option<String> {
        read_str(&self.doc, &ROOT, "official_no")
    }

    /// The official number with the device whose change wrote it, when the document holds
    /// exactly one (two concurrent values are no number to trust).
    pub fn official_number_and_writer(&self) -> Option<(String, DeviceId)> {
        let values = self.doc.get_all(ROOT, "official_no").ok()?;
        let [(automerge::Value::Scalar(value), automerge::ObjId::Id(_, actor, _))] = values.as_slice() else {
            return None;
        };
        let automerge::ScalarValue::Str(text) = value.as_ref() else { return None };
        Some((text.to_string(), DeviceId::from_actor(actor)?))
    }

    /// What a device shows until the server has numbered the order: `临-` and the id's last
    /// eight hex digits (the random part of a UUID v7).
    pub fn provisional_number(&self) -> String {
        let hex = self.id.as_uuid().simple().to_string();
        format!("临-{}", hex[hex.len() - 8..].to_uppercase())
    }

    /// The official number if there is one, else the provisional one.
    pub fn display_number(&self) -> String {
        self.official_number().unwrap_or_else(|| self.provisional_number())
    }

    pub fn location(&self) -> Location {
        let Ok(Some((_, obj))) = self.doc.get(ROOT, "location") else {
            return Location::default();
        };
        let f = Fields::of(&self.doc, &obj);
        Location {
            project: f.str("project").unwrap_or_default(),
            building: f.str("building"),
            unit: f.str("unit"),
            area: f.str("area"),
        }
    }

    pub fn description(&self) -> String {
        match self.doc.get(ROOT, "description") {
            Ok(Some((_, obj))) => self.doc.text(&obj).unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The transition log in merged order; entries that cannot be parsed are skipped (they can
    /// only come from a foreign writer, and the fold must not stall on them).
    pub fn transitions(&self) -> Vec<Transition> {
        self.list_maps("transitions").filter_map(|obj| self.read_transition(&obj)).collect()
    }

    /// What the lifecycle's rules read of the order besides its log.
    pub fn facts(&self) -> Result<OrderFacts, DocumentError> {
        Ok(OrderFacts { reporter: self.reporter()?, kind: self.kind()?, signature_required: self.signature_required() })
    }

    /// Whether the server recorded that completing the order needs the owner's signature
    /// (`signature_required`; see [`crate::signature`]).
    pub fn signature_required(&self) -> bool {
        matches!(self.doc.get(ROOT, "signature_required"), Ok(Some((automerge::Value::Scalar(v), _))) if v.as_bool() == Some(true))
    }

    /// The effective state: the fold of the transition log.
    pub fn state(&self) -> Result<OrderState, DocumentError> {
        Ok(lifecycle::fold(&self.facts()?, self.transitions()))
    }

    /// The effective state with some entries' device times replaced (the server's clamped
    /// claims, see docs/deadlines.md): what the server enforces deadlines with.
    pub fn state_with_times(
        &self,
        times: &std::collections::HashMap<String, i64>,
    ) -> Result<OrderState, DocumentError> {
        let facts = self.facts()?;
        let mut log = self.transitions();
        for t in &mut log {
            if let Some(at) = times.get(&t.id) {
                t.at_ms = *at;
            }
        }
        Ok(lifecycle::fold(&facts, log))
    }

    pub fn notes(&self) -> Vec<Note> {
        self.list_maps("notes")
            .filter_map(|obj| {
                let f = Fields::of(&self.doc, &obj);
                Some(Note {
                    id: f.str("id")?,
                    by: f.str("by")?.parse().ok()?,
                    device: f.str("device")?.parse().ok()?,
                    at_ms: f.i64("at")?,
                    text: f.str("text")?,
                })
            })
            .collect()
    }

    pub fn checklist(&self) -> Vec<ChecklistItem> {
        self.list_maps("checklist")
            .filter_map(|obj| {
                let f = Fields::of(&self.doc, &obj);
                Some(ChecklistItem { id: f.str("id")?, label: f.str("label")?, done: f.bool("done").unwrap_or(false) })
            })
            .collect()
    }

    pub fn parts(&self) -> Vec<PartUsed> {
        self.list_maps("parts")
            .filter_map(|obj| {
                let f = Fields::of(&self.doc, &obj);
                Some(PartUsed {
                    name: f.str("name")?,
                    quantity: f.i64("qty")?,
                    by: f.str("by")?.parse().ok()?,
                    at_ms: f.i64("at")?,
                })
            })
            .collect()
    }

    pub fn time_log(&self) -> Vec<TimeEntry> {
        self.list_maps("time_log")
            .filter_map(|obj| {
                let f = Fields::of(&self.doc, &obj);
                Some(TimeEntry {
                    by: f.str("by")?.parse().ok()?,
                    device: f.str("device")?.parse().ok()?,
                    start_ms: f.i64("start")?,
                    end_ms: f.i64("end")?,
                })
            })
            .collect()
    }

    pub fn attachments(&self) -> Vec<AttachmentRef> {
        self.list_maps("attachments").filter_map(|obj| read_attachment(&Fields::of(&self.doc, &obj))).collect()
    }

    /// Each attachment with the order's status as its author's device saw it when attaching
    /// (the document at the change that added it; `None` if that cannot be read): what the
    /// attachment was taken at, whatever the devices' clocks said.
    pub fn attachments_seen(&self) -> Vec<(AttachmentRef, Option<Status>)> {
        self.list_maps("attachments")
            .filter_map(|obj| {
                let attachment = read_attachment(&Fields::of(&self.doc, &obj))?;
                let seen = self
                    .doc
                    .hash_for_opid(&obj)
                    .and_then(|change| self.doc.fork_at(&[change]).ok())
                    .and_then(|then| WorkOrder::from_automerge(then).ok())
                    .and_then(|then| then.state().ok())
                    .map(|state| state.status);
                Some((attachment, seen))
            })
            .collect()
    }

    /// The server's rejections of changes made to this order (see [`crate::authority`]).
    pub fn rejections(&self) -> Vec<crate::authority::Rejection> {
        crate::authority::read_rejections(&self.doc)
    }

    // ----- writing: each call is one change -----

    /// Appends a transition after checking it against the rules as this replica sees the order
    /// now. A concurrent edit elsewhere can still supersede it when the replicas merge.
    pub fn transition(
        &mut self,
        by: &Identity,
        action: Action,
        text: Option<&str>,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        if let Some(text) = text {
            check_text("text", text, MAX_NOTE_CHARS)?;
        }
        let state = self.state()?;
        let to = lifecycle::check_entry(&state, &self.facts()?, &action, by.user, by.role, false)
            .map_err(CoreError::Refused)?;
        if action.requires_text() && text.is_none_or(|t| t.trim().is_empty()) {
            return Err(CoreError::InvalidInput(format!("{} needs a text (its reason or result)", action.code())));
        }
        self.append_transition(by, action, state.status, to, text, None, at_ms)
    }

    /// Completes the order with the owner's signature (业主签字确认): the signature picture as an
    /// attachment of kind `signature` and the completion naming it, in one change.
    pub fn complete_signed(
        &mut self,
        by: &Identity,
        signature: &NewAttachment,
        text: Option<&str>,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        if signature.kind != AttachmentKind::Signature {
            return Err(CoreError::InvalidInput("a completion is signed with an attachment of kind signature".into()));
        }
        signature.check()?;
        if let Some(text) = text {
            check_text("text", text, MAX_NOTE_CHARS)?;
        }
        let state = self.state()?;
        let to = lifecycle::check_entry(&state, &self.facts()?, &Action::Complete, by.user, by.role, true)
            .map_err(CoreError::Refused)?;
        crate::permissions::check_field(
            crate::permissions::Field::Attachments,
            &state,
            self.reporter()?,
            by.user,
            by.role,
        )
        .map_err(CoreError::Refused)?;
        let attachments = self.append_list("attachments")?;
        let transitions = self.append_list("transitions")?;
        let after = lifecycle::frontier(&self.transitions()).join(",");
        let entry = TransitionEntry {
            action: Action::Complete,
            from: state.status,
            to,
            text,
            signature: Some(&signature.sha256),
            after: &after,
        };
        self.change(at_ms, Action::Complete.code(), |tx| {
            write_attachment(tx, &attachments, by, signature, at_ms)?;
            write_transition(tx, &transitions, by, &entry, at_ms)
        })
    }

    /// Appends a transition without checking it first, as a device with a stale or dishonest
    /// view would. The fold decides what it means. For tests and the simulator.
    pub fn append_transition_unchecked(
        &mut self,
        by: &Identity,
        action: Action,
        text: Option<&str>,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        let from = self.state()?.status;
        self.append_transition(by, action, from, from, text, None, at_ms)
    }

    /// As [`WorkOrder::append_transition_unchecked`], a completion naming a signature that may
    /// not exist: for tests that play a dishonest device.
    pub fn append_signed_unchecked(
        &mut self,
        by: &Identity,
        signature: &str,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        let from = self.state()?.status;
        self.append_transition(by, Action::Complete, from, from, None, Some(signature), at_ms)
    }

    #[allow(clippy::too_many_arguments)]
    fn append_transition(
        &mut self,
        by: &Identity,
        action: Action,
        from: Status,
        to: Status,
        text: Option<&str>,
        signature: Option<&str>,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        let list = self.append_list("transitions")?;
        let after = lifecycle::frontier(&self.transitions()).join(",");
        let entry = TransitionEntry { action, from, to, text, signature, after: &after };
        self.change(at_ms, action.code(), |tx| write_transition(tx, &list, by, &entry, at_ms))
    }

    /// Appends a note (append-only; notes are never edited).
    pub fn add_note(&mut self, by: &Identity, text: &str, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_text("note", text, MAX_NOTE_CHARS)?;
        if text.trim().is_empty() {
            return Err(CoreError::InvalidInput("a note cannot be empty".into()));
        }
        let list = self.append_list("notes")?;
        self.change(at_ms, "note", |tx| {
            let entry = tx.insert_object(&list, tx.length(&list), ObjType::Map)?;
            tx.put(&entry, "id", uuid::Uuid::now_v7().to_string())?;
            tx.put(&entry, "by", by.user.to_string())?;
            tx.put(&entry, "device", by.device.to_string())?;
            tx.put(&entry, "at", at_ms)?;
            tx.put(&entry, "text", text)?;
            Ok(())
        })
    }

    /// Replaces the description; Automerge diffs it so concurrent edits merge by character.
    pub fn set_description(&mut self, text: &str, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_text("description", text, MAX_DESCRIPTION_CHARS)?;
        let obj = match self.doc.get(ROOT, "description")? {
            Some((_, obj)) => obj,
            None => return Err(DocumentError::Foreign("description").into()),
        };
        self.change(at_ms, "description", |tx| tx.update_text(&obj, text))
    }

    pub fn add_checklist_item(&mut self, label: &str, at_ms: i64) -> Result<(String, ChangeHash), CoreError> {
        check_text("checklist item", label, MAX_SHORT_TEXT_CHARS)?;
        let list = self.append_list("checklist")?;
        let id = uuid::Uuid::now_v7().to_string();
        let hash = self.change(at_ms, "checklist", |tx| {
            let entry = tx.insert_object(&list, tx.length(&list), ObjType::Map)?;
            tx.put(&entry, "id", id.as_str())?;
            tx.put(&entry, "label", label)?;
            tx.put(&entry, "done", false)?;
            Ok(())
        })?;
        Ok((id, hash))
    }

    /// Adds `items` (id, label), in order, in one change: the server's copy of a maintenance
    /// plan's checklist, whose ids it derives from the occurrence so that every replica writes
    /// the same change.
    pub fn add_checklist_items(&mut self, items: &[(String, String)], at_ms: i64) -> Result<ChangeHash, CoreError> {
        for (id, label) in items {
            check_text("checklist item", label, MAX_SHORT_TEXT_CHARS)?;
            check_text("checklist item id", id, MAX_SHORT_TEXT_CHARS)?;
        }
        let list = self.append_list("checklist")?;
        self.change(at_ms, "checklist", |tx| {
            for (id, label) in items {
                let entry = tx.insert_object(&list, tx.length(&list), ObjType::Map)?;
                tx.put(&entry, "id", id.as_str())?;
                tx.put(&entry, "label", label.as_str())?;
                tx.put(&entry, "done", false)?;
            }
            Ok(())
        })
    }

    pub fn tick_checklist_item(&mut self, item_id: &str, done: bool, at_ms: i64) -> Result<ChangeHash, CoreError> {
        let item = self
            .list_maps("checklist")
            .find(|obj| read_str(&self.doc, obj, "id").as_deref() == Some(item_id))
            .ok_or_else(|| CoreError::InvalidInput(format!("no checklist item {item_id}")))?;
        self.change(at_ms, "checklist", |tx| tx.put(&item, "done", done))
    }

    pub fn add_part(&mut self, by: &Identity, name: &str, quantity: i64, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_text("part", name, MAX_SHORT_TEXT_CHARS)?;
        if !(1..=10_000).contains(&quantity) {
            return Err(CoreError::InvalidInput("a part quantity is 1 to 10000".into()));
        }
        let list = self.append_list("parts")?;
        self.change(at_ms, "part", |tx| {
            let entry = tx.insert_object(&list, tx.length(&list), ObjType::Map)?;
            tx.put(&entry, "name", name)?;
            tx.put(&entry, "qty", quantity)?;
            tx.put(&entry, "by", by.user.to_string())?;
            tx.put(&entry, "at", at_ms)?;
            Ok(())
        })
    }

    pub fn log_time(&mut self, by: &Identity, start_ms: i64, end_ms: i64, at_ms: i64) -> Result<ChangeHash, CoreError> {
        if end_ms <= start_ms || end_ms - start_ms > 24 * 3_600_000 {
            return Err(CoreError::InvalidInput("a time entry ends after it starts and lasts at most 24 hours".into()));
        }
        let list = self.append_list("time_log")?;
        self.change(at_ms, "time", |tx| {
            let entry = tx.insert_object(&list, tx.length(&list), ObjType::Map)?;
            tx.put(&entry, "by", by.user.to_string())?;
            tx.put(&entry, "device", by.device.to_string())?;
            tx.put(&entry, "start", start_ms)?;
            tx.put(&entry, "end", end_ms)?;
            Ok(())
        })
    }

    /// Attaches a picture or file by its hash and type (its kind inferred from the type).
    pub fn attach(&mut self, by: &Identity, sha256_hex: &str, mime: &str, at_ms: i64) -> Result<ChangeHash, CoreError> {
        self.attach_with(by, &NewAttachment::of(sha256_hex, mime), at_ms)
    }

    /// Attaches a photo or file (a signature comes with the completion it confirms:
    /// [`WorkOrder::complete_signed`]).
    pub fn attach_with(
        &mut self,
        by: &Identity,
        attachment: &NewAttachment,
        at_ms: i64,
    ) -> Result<ChangeHash, CoreError> {
        attachment.check()?;
        if attachment.kind == AttachmentKind::Signature {
            return Err(CoreError::InvalidInput("a signature is added with the completion it confirms".into()));
        }
        let list = self.append_list("attachments")?;
        self.change(at_ms, "attachment", |tx| write_attachment(tx, &list, by, attachment, at_ms))
    }

    /// The server's record of whether completing the order needs the owner's signature (only the
    /// server writes it: a device's change is compensated as `server_only_field`).
    pub fn set_signature_required(&mut self, required: bool, at_ms: i64) -> Result<ChangeHash, CoreError> {
        self.change(at_ms, "signature_required", |tx| tx.put(ROOT, "signature_required", required))
    }

    pub fn set_grade(&mut self, grade: Grade, at_ms: i64) -> Result<ChangeHash, CoreError> {
        self.change(at_ms, "grade", |tx| tx.put(ROOT, "grade", grade.code()))
    }

    pub fn set_category(&mut self, category: &Category, at_ms: i64) -> Result<ChangeHash, CoreError> {
        self.change(at_ms, "category", |tx| tx.put(ROOT, "category", category.code()))
    }

    /// Sets the preferred window, or (`None`) removes it.
    pub fn set_appointment(&mut self, appointment: Option<Appointment>, at_ms: i64) -> Result<ChangeHash, CoreError> {
        if let Some(a) = appointment {
            Appointment::new(a.from_ms, a.to_ms)?;
        }
        self.change(at_ms, "appointment", |tx| match appointment {
            Some(a) => {
                let obj = tx.put_object(ROOT, "appointment", ObjType::Map)?;
                tx.put(&obj, "from", a.from_ms)?;
                tx.put(&obj, "to", a.to_ms)
            }
            None => tx.delete(ROOT, "appointment"),
        })
    }

    /// Names the asset the order is about (its id, as on its QR code), or (`None`) none.
    pub fn set_asset(&mut self, asset: Option<&str>, at_ms: i64) -> Result<ChangeHash, CoreError> {
        if let Some(id) = asset
            && !asset_id_ok(id)
        {
            return Err(CoreError::InvalidInput("an asset id is 1 to 64 ASCII letters, digits, - or _".into()));
        }
        self.change(at_ms, "asset", |tx| match asset {
            Some(id) => tx.put(ROOT, "asset", id),
            None => tx.delete(ROOT, "asset"),
        })
    }

    pub fn set_location(&mut self, location: &Location, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_location(location)?;
        self.change(at_ms, "location", |tx| write_location(tx, location))
    }

    /// The server's official number (only the server writes it).
    pub fn set_official_number(&mut self, number: &str, at_ms: i64) -> Result<ChangeHash, CoreError> {
        check_text("official number", number, 64)?;
        self.change(at_ms, "official_no", |tx| tx.put(ROOT, "official_no", number))
    }

    /// One change made of raw document operations, outside every rule: the server's
    /// compensations, and tests that play a dishonest device.
    pub fn raw_change(
        &mut self,
        at_ms: i64,
        message: &str,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<(), automerge::AutomergeError>,
    ) -> Result<ChangeHash, CoreError> {
        self.change(at_ms, message, edit)
    }

    fn change(
        &mut self,
        at_ms: i64,
        message: &str,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<(), automerge::AutomergeError>,
    ) -> Result<ChangeHash, CoreError> {
        let done = self
            .doc
            .transact_with(|_| CommitOptions::default().with_time(at_ms / 1000).with_message(message), edit)
            .map_err(|f| CoreError::from(f.error))?;
        done.hash.ok_or_else(|| CoreError::InvalidInput("the edit changed nothing".into()))
    }

    // ----- helpers -----

    fn required_str(&self, key: &'static str) -> Result<String, DocumentError> {
        read_str(&self.doc, &ROOT, key).ok_or(DocumentError::Foreign(key))
    }

    fn list_obj(&self, key: &'static str) -> Result<ObjId, DocumentError> {
        match self.doc.get(ROOT, key) {
            Ok(Some((automerge::Value::Object(ObjType::List), obj))) => Ok(obj),
            _ => Err(DocumentError::Foreign(key)),
        }
    }

    /// A list to append one entry to, if it has room: the server's review refuses a list longer
    /// than `authority::MAX_LIST_ENTRIES`, so a device refuses to make one (the edit would be
    /// compensated after the sync, long after the user made it).
    fn append_list(&self, key: &'static str) -> Result<ObjId, CoreError> {
        let list = self.list_obj(key)?;
        if self.doc.length(&list) >= crate::authority::MAX_LIST_ENTRIES {
            return Err(CoreError::InvalidInput(format!(
                "the order holds {} {key} entries, the most it may",
                crate::authority::MAX_LIST_ENTRIES
            )));
        }
        Ok(list)
    }

    fn list_maps(&self, key: &'static str) -> impl Iterator<Item = ObjId> + '_ {
        let list = self.list_obj(key).ok();
        let len = list.as_ref().map(|l| self.doc.length(l)).unwrap_or(0);
        (0..len).filter_map(move |i| match self.doc.get(list.as_ref()?, i) {
            Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => Some(obj),
            _ => None,
        })
    }

    fn read_transition(&self, obj: &ObjId) -> Option<Transition> {
        let f = Fields::of(&self.doc, obj);
        let action = match f.str("action")?.as_str() {
            "assign" => Action::Assign(f.str("assignee")?.parse().ok()?),
            "accept" => Action::Accept,
            "arrive" => Action::Arrive,
            "start" => Action::Start,
            "hold" => Action::Hold(HoldReason::from_code(&f.str("hold_reason")?).ok()?),
            "resume" => Action::Resume,
            "complete" => Action::Complete,
            "confirm" => Action::Confirm { rating: u8::try_from(f.i64("rating")?).unwrap_or(0) },
            "reject" => Action::Reject,
            "auto_confirm" => Action::AutoConfirm,
            "return_visit" => Action::ReturnVisit,
            "close" => Action::Close,
            "cancel" => Action::Cancel,
            _ => return None,
        };
        Some(Transition {
            id: f.str("id")?,
            action,
            by: f.str("by")?.parse().ok()?,
            role: Role::from_code(&f.str("role")?).ok()?,
            device: f.str("device")?.parse().ok()?,
            at_ms: f.i64("at")?,
            from: Status::from_code(&f.str("from")?).ok()?,
            to: Status::from_code(&f.str("to")?).ok()?,
            text: f.str("text"),
            // A signature that names no content counts as none.
            signature: f.str("signature").filter(|s| is_sha256(s)),
            after: f
                .str("after")
                .map(|a| a.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }
}

/// A transition entry's content, as written.
struct TransitionEntry<'a> {
    action: Action,
    from: Status,
    to: Status,
    text: Option<&'a str>,
    signature: Option<&'a str>,
    after: &'a str,
}

fn write_transition(
    tx: &mut Transaction<'_>,
    list: &ObjId,
    by: &Identity,
    t: &TransitionEntry<'_>,
    at_ms: i64,
) -> Result<(), automerge::AutomergeError> {
    let entry = tx.insert_object(list, tx.length(list), ObjType::Map)?;
    tx.put(&entry, "id", uuid::Uuid::now_v7().to_string())?;
    tx.put(&entry, "action", t.action.code())?;
    match t.action {
        Action::Assign(who) => tx.put(&entry, "assignee", who.to_string())?,
        Action::Hold(reason) => tx.put(&entry, "hold_reason", reason.code())?,
        Action::Confirm { rating } => tx.put(&entry, "rating", i64::from(rating))?,
        _ => {}
    }
    tx.put(&entry, "by", by.user.to_string())?;
    tx.put(&entry, "role", by.role.code())?;
    tx.put(&entry, "device", by.device.to_string())?;
    tx.put(&entry, "at", at_ms)?;
    tx.put(&entry, "from", t.from.code())?;
    tx.put(&entry, "to", t.to.code())?;
    tx.put(&entry, "after", t.after)?;
    if let Some(text) = t.text {
        tx.put(&entry, "text", text)?;
    }
    if let Some(signature) = t.signature {
        tx.put(&entry, "signature", signature)?;
    }
    Ok(())
}

fn write_attachment(
    tx: &mut Transaction<'_>,
    list: &ObjId,
    by: &Identity,
    a: &NewAttachment,
    at_ms: i64,
) -> Result<(), automerge::AutomergeError> {
    let entry = tx.insert_object(list, tx.length(list), ObjType::Map)?;
    tx.put(&entry, "sha256", a.sha256.as_str())?;
    tx.put(&entry, "mime", a.mime.as_str())?;
    // A photo or file written as before keeps the shape older readers know; only what
    // differs from the inferred kind, and what is given, is written.
    if a.kind != AttachmentKind::inferred(&a.mime) {
        tx.put(&entry, "kind", a.kind.code())?;
    }
    if let Some(size) = a.size {
        tx.put(&entry, "size", size)?;
    }
    if let Some(caption) = &a.caption {
        tx.put(&entry, "caption", caption.as_str())?;
    }
    tx.put(&entry, "by", by.user.to_string())?;
    tx.put(&entry, "at", at_ms)?;
    Ok(())
}

fn read_attachment(f: &Fields<'_>) -> Option<AttachmentRef> {
    let mime = f.str("mime")?;
    let kind = match f.str("kind") {
        Some(code) => AttachmentKind::from_code(&code).ok()?,
        None => AttachmentKind::inferred(&mime),
    };
    Some(AttachmentRef {
        sha256: f.str("sha256").filter(|s| is_sha256(s))?,
        kind,
        size: f.i64("size"),
        caption: f.str("caption"),
        mime,
        by: f.str("by")?.parse().ok()?,
        at_ms: f.i64("at")?,
    })
}

fn check_text(field: &str, text: &str, max_chars: usize) -> Result<(), CoreError> {
    if text.chars().count() > max_chars {
        return Err(CoreError::InvalidInput(format!("{field} is longer than {max_chars} characters")));
    }
    Ok(())
}

fn check_location(location: &Location) -> Result<(), CoreError> {
    location.check().map_err(|fault| CoreError::InvalidInput(fault.to_string()))
}

fn write_location(tx: &mut Transaction<'_>, location: &Location) -> Result<(), automerge::AutomergeError> {
    let obj = tx.put_object(ROOT, "location", ObjType::Map)?;
    tx.put(&obj, "project", location.project.as_str())?;
    for (key, value) in [("building", &location.building), ("unit", &location.unit), ("area", &location.area)] {
        if let Some(value) = value {
            tx.put(&obj, key, value.as_str())?;
        }
    }
    Ok(())
}

/// A map object's scalar fields, read in one pass (one seek per map instead of one per key:
/// the fold reads every transition, so this is the hot path of every summary).
struct Fields<'a>(Vec<(std::borrow::Cow<'a, str>, automerge::ScalarValueRef<'a>)>);

impl<'a> Fields<'a> {
    fn of(doc: &'a Automerge, obj: &ObjId) -> Fields<'a> {
        Fields(
            doc.map_range(obj, ..)
                .filter_map(|item| match item.value {
                    automerge::ValueRef::Scalar(value) => Some((item.key, value)),
                    automerge::ValueRef::Object(_) => None,
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&automerge::ScalarValueRef<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            automerge::ScalarValueRef::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn i64(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            automerge::ScalarValueRef::Int(i) | automerge::ScalarValueRef::Timestamp(i) => Some(*i),
            automerge::ScalarValueRef::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            automerge::ScalarValueRef::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

fn read_str(doc: &Automerge, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_str().map(str::to_owned),
        _ => None,
    }
}

fn read_i64(doc: &Automerge, obj: &ObjId, key: &str) -> Option<i64> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_i64(),
        _ => None,
    }
}
