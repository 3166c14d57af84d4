//! The server's judgement of the change that creates an order. Later changes are judged field by
//! field and compensated ([`crate::authority::review`]); a creation cannot be compensated (there
//! is no valid order to restore), so a creating change that writes more, or other, than
//! registering an order writes is refused whole.
//!
//! What registering writes is [`WorkOrder::create_with_id`]: the order's registration fields,
//! the creator's identity and six empty lists. The creating change must hold exactly that, as
//! its author would have written it: its content is read back into a [`NewOrder`], registered
//! again under the author's identity, and both documents must read the same, value for value.
//! So a creating change cannot carry transitions, notes, parts, rejections, an official number
//! or any other field, nor name another creator than the device's own user and role.

use std::collections::BTreeMap;

use automerge::{Automerge, Change, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use crate::classification::{Channel, Kind};
use crate::identity::Identity;
use crate::role::Role;
use crate::work_order::{NewOrder, WorkOrder};

/// Why a creating change is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CreationRefused(pub String);

fn refused(why: impl Into<String>) -> CreationRefused {
    CreationRefused(why.into())
}

/// Whether a user of `role` may register an order received through `channel`: owners report
/// through the app only; staff register what reaches them by any channel but a maintenance
/// plan's, which is the server's alone, and the server registers through nothing else.
pub fn channel_allowed(role: Role, channel: Channel) -> bool {
    match role {
        Role::System => channel == Channel::Plan,
        Role::Owner => channel == Channel::App,
        _ => channel != Channel::Plan,
    }
}

/// Whether a user of `role` may register an order of `kind`: planned maintenance is the
/// office's and the server's, never an owner's report; the server registers nothing else.
pub fn kind_allowed(role: Role, kind: Kind) -> bool {
    match role {
        Role::System => kind == Kind::Maintenance,
        Role::Owner => kind != Kind::Maintenance,
        _ => true,
    }
}

/// Judges `creating`, the first change of a new order (no dependencies), made by `author`'s
/// device. Owners register through the app only (channel `app`).
pub fn review_creation(creating: &Change, author: &Identity) -> Result<(), CreationRefused> {
    if !creating.deps().is_empty() {
        return Err(refused("a creating change has no dependencies"));
    }
    if creating.actor_id() != &author.device.actor() {
        return Err(refused("the creating change was made by another device"));
    }
    let alone = WorkOrder::from_parsed_changes(vec![creating.clone()])
        .map_err(|e| refused(format!("the creating change is not a work order: {e}")))?;
    let doc = alone.automerge();
    let text = |key: &str| match doc.get(ROOT, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    };
    if text("created_by").as_deref() != Some(author.user.to_string().as_str())
        || text("created_role").as_deref() != Some(author.role.code())
    {
        return Err(refused("created_by and created_role must name the creating device's user and role"));
    }
    let field = |e: crate::error::DocumentError| refused(format!("the creating change's fields do not read: {e}"));
    let new = NewOrder {
        kind: alone.kind().map_err(field)?,
        category: alone.category().map_err(field)?,
        grade: alone.grade().map_err(field)?,
        channel: alone.channel().map_err(field)?,
        location: alone.location(),
        description: alone.description(),
        reporter: alone.reporter().map_err(field)?,
        occurred_at_ms: alone.occurred_at_ms(),
    };
    if !channel_allowed(author.role, new.channel) {
        return Err(refused(match author.role {
            Role::System => "the server registers only through a maintenance plan (channel plan)",
            Role::Owner => "owners report through the app (channel app)",
            _ => "only the server registers through a maintenance plan (channel plan)",
        }));
    }
    if !kind_allowed(author.role, new.kind) {
        return Err(refused(if author.role == Role::System {
            "the server registers only planned maintenance (kind maintenance)"
        } else {
            "owners do not register planned maintenance (kind maintenance)"
        }));
    }
    let registered = WorkOrder::create_with_id(alone.id(), &new, author, alone.created_at_ms())
        .map_err(|e| refused(format!("the order could not be registered: {e}")))?;
    if content(doc, &ROOT) != content(registered.automerge(), &ROOT) {
        return Err(refused(
            "the creating change holds more or other than registering an order writes (docs/document.md, 6.1)",
        ));
    }
    Ok(())
}

/// A document's visible content, objects by value (their ids differ between two documents).
#[derive(Debug, PartialEq)]
enum Content {
    Scalar(ScalarValue),
    Map(BTreeMap<String, Content>),
    List(Vec<Content>),
    Text(String),
    Other,
}

fn content(doc: &Automerge, obj: &ObjId) -> Content {
    let value = |v: automerge::ValueRef<'_>, id: ObjId| match v.into_value() {
        Value::Scalar(s) => Content::Scalar(s.into_owned()),
        Value::Object(_) => content(doc, &id),
    };
    match doc.object_type(obj) {
        Ok(ObjType::Map) | Ok(ObjType::Table) => Content::Map(
            doc.map_range(obj, ..)
                .map(|item| {
                    (item.key.to_string(), {
                        let id = item.id();
                        value(item.value, id)
                    })
                })
                .collect(),
        ),
        Ok(ObjType::List) => Content::List(
            doc.list_range(obj, ..)
                .map(|item| {
                    let id = item.id();
                    value(item.value, id)
                })
                .collect(),
        ),
        Ok(ObjType::Text) => Content::Text(doc.text(obj).unwrap_or_default()),
        Err(_) => Content::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classification::{Category, Grade, Kind};
    use crate::ids::{DeviceId, UserId};
    use crate::location::Location;

    fn owner() -> Identity {
        Identity::new(UserId::new(), Role::Owner, DeviceId::new())
    }

    fn report(reporter: UserId, channel: Channel) -> NewOrder {
        NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Serious,
            channel,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "卫生间天花板渗水".into(),
            reporter,
            occurred_at_ms: Some(1_700_000_000_000),
        }
    }

    fn creating(order: &WorkOrder) -> Change {
        order.automerge().get_changes(&[]).into_iter().next().expect("creating change").clone()
    }

    #[test]
    fn what_registering_writes_is_accepted() {
        let me = owner();
        let order = WorkOrder::create(&report(me.user, Channel::App), &me, 1_700_000_100_000).expect("create");
        assert_eq!(review_creation(&creating(&order), &me), Ok(()));
    }

    #[test]
    fn another_creator_another_device_or_channel_is_refused() {
        let me = owner();
        let order = WorkOrder::create(&report(me.user, Channel::App), &me, 1).expect("create");
        let mut impostor = me;
        impostor.user = UserId::new();
        // The device is the pusher's, but the change names another user as its creator.
        impostor.device = me.device;
        assert!(review_creation(&creating(&order), &impostor).is_err());
        let other_device = Identity::new(me.user, Role::Owner, DeviceId::new());
        assert!(review_creation(&creating(&order), &other_device).is_err());
        let hotline = WorkOrder::create(&report(me.user, Channel::Hotline), &me, 1).expect("create");
        assert!(review_creation(&creating(&hotline), &me).is_err());
    }
}
