//! Orders on this device: reading them, and each edit and transition (one durable local change,
//! checked against sync-core's rules first).

use super::*;

#[uniffi::export]
impl Loopwork {
    // ----- orders -----

    /// Registers a new order on this device; it reaches the server at the next sync.
    pub fn create_order(&self, input: NewOrderInput) -> Result<String, LoopworkError> {
        let id = self.with_replica(|replica| {
            let me = *replica.identity();
            let reporter = match (&input.reporter_id, me.role) {
                (None, Role::Owner) => me.user,
                (Some(id), _) => parse_user(id)?,
                (None, _) => return Err(LoopworkError::invalid("staff registering an order give the owner's user id")),
            };
            let new = NewOrder {
                kind: input.kind,
                category: Category::from_code(&input.category).map_err(|e| LoopworkError::invalid(e.to_string()))?,
                grade: input.grade,
                channel: input.channel,
                location: input.location,
                description: input.description,
                reporter,
                occurred_at_ms: input.occurred_at_ms,
            };
            Ok(replica.create(&new)?.to_string())
        })?;
        self.notify(vec![id.clone()], false);
        Ok(id)
    }

    /// One order, with everything a detail screen shows.
    pub fn get_order(&self, order_id: String) -> Result<OrderDetail, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_open(|open| {
            let replica = &mut open.replica;
            let order = replica.order(id)?;
            let state = order.state().map_err(loopwork_sync_core::CoreError::from)?;
            let summary = loopwork_sync_core::OrderSummary::of(&order).map_err(loopwork_sync_core::CoreError::from)?;
            let c = open
                .sla
                .countdown(summary.kind, &summary.category, summary.grade, &state, order.created_at_ms())
                .ok_or_else(|| LoopworkError::storage("the SLA policies match no order"))?;
            let now = replica.now_ms();
            Ok(OrderDetail {
                signature_required: order.signature_required(),
                channel: order.channel().map_err(loopwork_sync_core::CoreError::from)?,
                description: order.description(),
                occurred_at_ms: order.occurred_at_ms(),
                appointment: order.appointment().map(|a| Appointment { from_ms: a.from_ms, to_ms: a.to_ms }),
                asset: order.asset(),
                hold_reason: state.hold_reason,
                reopen_count: state.reopen_count,
                rating: state.rating,
                rating_comment: state.rating_comment.clone(),
                auto_confirmed: state.auto_confirmed,
                return_visit_required: state.return_visit_required,
                notes: order
                    .notes()
                    .into_iter()
                    .map(|n| Note { id: n.id, by_user_id: n.by.to_string(), at_ms: n.at_ms, text: n.text })
                    .collect(),
                checklist: order
                    .checklist()
                    .into_iter()
                    .map(|i| ChecklistItem { id: i.id, label: i.label, done: i.done })
                    .collect(),
                parts: order
                    .parts()
                    .into_iter()
                    .map(|p| PartUsed {
                        name: p.name,
                        quantity: p.quantity,
                        by_user_id: p.by.to_string(),
                        at_ms: p.at_ms,
                    })
                    .collect(),
                time_log: order
                    .time_log()
                    .into_iter()
                    .map(|t| TimeEntry { by_user_id: t.by.to_string(), start_ms: t.start_ms, end_ms: t.end_ms })
                    .collect(),
                attachments: order
                    .attachments()
                    .into_iter()
                    .map(|a| Attachment {
                        sha256: a.sha256,
                        mime: a.mime,
                        by_user_id: a.by.to_string(),
                        at_ms: a.at_ms,
                    })
                    .collect(),
                countdown: Countdown {
                    policy: c.policy,
                    response_due_ms: c.response_due_ms,
                    responded_at_ms: c.responded_at_ms,
                    arrival_due_ms: c.arrival_due_ms,
                    arrived_at_ms: c.arrived_at_ms,
                    resolution_due_ms: c.resolution_due_ms,
                    resolved_at_ms: c.resolved_at_ms,
                    paused: c.paused,
                    next_due_ms: c.next_due_ms,
                    remaining_ms: c.next_due_ms.map(|due| due - now),
                },
                read_only_reason: replica.revocation(id)?,
                incident: order.incident().map(|i| IncidentInfo {
                    number: i.number,
                    place: i.place,
                    category: i.category,
                }),
                summary: summary.into(),
            })
        })
    }

    /// A list screen: orders from the local index, most urgent first. Never loads a document.
    pub fn list_orders(&self, filter: ListFilter) -> Result<Vec<OrderSummary>, LoopworkError> {
        self.with_replica(|replica| {
            let me = replica.identity().user;
            let query = OrderQuery {
                assignee: filter.assigned_to_me.then_some(me),
                reporter: filter.reported_by_me.then_some(me),
                statuses: filter.statuses.clone(),
                open_only: filter.open_only,
                project: filter.project.clone(),
                building: filter.building.clone(),
                incident: filter.incident,
                limit: if filter.limit == 0 { 50 } else { filter.limit.min(10_000) as usize },
            };
            Ok(replica.list(&query)?.into_iter().map(OrderSummary::from).collect())
        })
    }

    /// How many orders this device holds.
    pub fn order_count(&self) -> Result<u64, LoopworkError> {
        self.with_replica(|replica| Ok(replica.order_count()? as u64))
    }

    /// The order's countdown alone (cheaper than `get_order` for a ticking clock).
    pub fn countdown(&self, order_id: String) -> Result<Countdown, LoopworkError> {
        self.get_order(order_id).map(|d| d.countdown)
    }

    /// Every transition, note, part, time entry and attachment, oldest first.
    pub fn timeline(&self, order_id: String) -> Result<Vec<TimelineEntry>, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_replica(|replica| {
            let order = replica.order(id)?;
            let entries = timeline::timeline(&order).map_err(loopwork_sync_core::CoreError::from)?;
            Ok(entries.into_iter().map(TimelineEntry::from).collect())
        })
    }

    /// Edits on this order that did not take effect, with the reason to show each: actions the
    /// lifecycle superseded when offline work merged, and changes the server compensated
    /// (`action` is then the fields the change touched, e.g. `grade`).
    pub fn rejected_edits(&self, order_id: String) -> Result<Vec<RejectedEdit>, LoopworkError> {
        let id = parse_order(&order_id)?;
        self.with_replica(|replica| {
            let order = replica.order(id)?;
            let state = order.state().map_err(loopwork_sync_core::CoreError::from)?;
            Ok(loopwork_sync_core::timeline::rejected_edits(&order, &state)
                .into_iter()
                .map(|r| RejectedEdit {
                    action: r.what,
                    by_user_id: r.by.to_string(),
                    at_ms: r.at_ms,
                    reason_code: r.reason_code,
                    message_zh: r.message_zh,
                    message_en: r.message_en,
                })
                .collect())
        })
    }

    // ----- edits: each is one durable local change, checked against the rules first -----

    pub fn set_description(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_description(id, &text).map(drop))
    }

    /// Moves the preferred window (改约, agreed with the owner), or clears it with `None`.
    pub fn set_appointment(&self, order_id: String, appointment: Option<Appointment>) -> Result<(), LoopworkError> {
        let window = appointment
            .map(|a| loopwork_sync_core::Appointment::new(a.from_ms, a.to_ms))
            .transpose()
            .map_err(LoopworkError::from)?;
        self.edit(&order_id, |r, id| r.set_appointment(id, window).map(drop))
    }

    /// Names the asset the order is about (the id a scanned QR code carries), or none.
    pub fn set_asset(&self, order_id: String, asset: Option<String>) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_asset(id, asset.as_deref()).map(drop))
    }

    pub fn set_grade(&self, order_id: String, grade: Grade) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_grade(id, grade).map(drop))
    }

    pub fn set_category(&self, order_id: String, category: String) -> Result<(), LoopworkError> {
        let category = Category::from_code(&category).map_err(|e| LoopworkError::invalid(e.to_string()))?;
        self.edit(&order_id, |r, id| r.set_category(id, &category).map(drop))
    }

    pub fn set_location(&self, order_id: String, location: Location) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.set_location(id, &location).map(drop))
    }

    pub fn add_note(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.add_note(id, &text).map(drop))
    }

    /// Adds a checklist item; returns its id.
    pub fn add_checklist_item(&self, order_id: String, label: String) -> Result<String, LoopworkError> {
        self.edit(&order_id, |r, id| r.add_checklist_item(id, &label))
    }

    pub fn tick_checklist_item(&self, order_id: String, item_id: String, done: bool) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.tick_checklist_item(id, &item_id, done).map(drop))
    }

    pub fn add_part(&self, order_id: String, name: String, quantity: i64) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.add_part(id, &name, quantity).map(drop))
    }

    pub fn log_time(&self, order_id: String, start_ms: i64, end_ms: i64) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.log_time(id, start_ms, end_ms).map(drop))
    }

    /// Attaches a photo or file by its content hash alone (the bytes sent by other means);
    /// `attach_photo` keeps and sends the bytes too, `complete_signed` adds a signature.
    pub fn attach(&self, order_id: String, sha256_hex: String, mime: String) -> Result<(), LoopworkError> {
        self.edit(&order_id, |r, id| r.attach(id, &sha256_hex, &mime).map(drop))
    }

    // ----- transitions -----

    /// Dispatches (or reassigns) the order to a technician.
    pub fn assign(&self, order_id: String, technician_id: String) -> Result<(), LoopworkError> {
        let who = parse_user(&technician_id)?;
        self.transition(&order_id, Action::Assign(who), None)
    }

    /// One step of an incident (事件单) on every order of it assigned to the signed-in user that
    /// is still open: the technician fixing a burst riser accepts, arrives at and completes the
    /// forty households' orders at once, offline. Each owner still confirms their own.
    pub fn work_incident(
        &self,
        number: i64,
        step: IncidentStep,
        text: Option<String>,
    ) -> Result<IncidentWorkReport, LoopworkError> {
        let action = match step {
            IncidentStep::Accept => Action::Accept,
            IncidentStep::Arrive => Action::Arrive,
            IncidentStep::StartWork => Action::Start,
            IncidentStep::Complete => Action::Complete,
        };
        let work = self.with_replica(|replica| Ok(replica.work_incident(number, action, text.as_deref())?))?;
        let changed: Vec<String> = work.changed.iter().map(ToString::to_string).collect();
        if !changed.is_empty() {
            self.notify(changed.clone(), false);
        }
        Ok(IncidentWorkReport {
            changed,
            skipped: work
                .skipped
                .into_iter()
                .map(|(id, reason)| SkippedOrder { order_id: id.to_string(), reason })
                .collect(),
        })
    }

    /// 接单; from 待派单 a technician takes the order themselves (抢单).
    pub fn accept(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Accept, None)
    }

    pub fn arrive(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Arrive, None)
    }

    pub fn start_work(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Start, None)
    }

    pub fn hold(&self, order_id: String, reason: HoldReason, text: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Hold(reason), text)
    }

    pub fn resume(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Resume, None)
    }

    pub fn complete(&self, order_id: String, text: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Complete, text)
    }

    /// The owner confirms completion with a rating of 1 to 5 and an optional comment.
    pub fn confirm(&self, order_id: String, rating: u8, comment: Option<String>) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Confirm { rating }, comment)
    }

    /// The owner rejects completion: the order goes back for rework.
    pub fn reject(&self, order_id: String, reason: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Reject, Some(reason))
    }

    pub fn return_visit(&self, order_id: String, text: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::ReturnVisit, Some(text))
    }

    pub fn close(&self, order_id: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Close, None)
    }

    pub fn cancel(&self, order_id: String, reason: String) -> Result<(), LoopworkError> {
        self.transition(&order_id, Action::Cancel, Some(reason))
    }
}
