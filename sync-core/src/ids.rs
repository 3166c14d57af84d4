//! Identifiers. Documents hold ids only: names and phone numbers live on the server.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::DocumentError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DocumentError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| DocumentError::InvalidField { field: stringify!($name), value: s.chars().take(64).collect() })
            }
        }
    };
}

id_type!(
    /// A work order's id, a UUID v7 chosen by the device that creates it.
    OrderId
);
id_type!(
    /// A user's id (owner, technician, dispatcher, ...); the person behind it is known only to
    /// the server.
    UserId
);
id_type!(
    /// A registered device (one phone, one browser session).
    DeviceId
);

impl DeviceId {
    /// The Automerge actor id of this device: its changes are attributable to it.
    pub fn actor(&self) -> automerge::ActorId {
        automerge::ActorId::from(self.0.as_bytes().as_slice())
    }

    /// The device whose actor id this is, if it is a device's (16 bytes).
    pub fn from_actor(actor: &automerge::ActorId) -> Option<DeviceId> {
        uuid::Uuid::from_slice(actor.to_bytes()).ok().map(DeviceId)
    }
}
