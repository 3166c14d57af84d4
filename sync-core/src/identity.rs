//! Who is writing: a user, in a role, on a device. Every change a device makes carries its
//! device's actor id, and every transition records all three.

use crate::ids::{DeviceId, UserId};
use crate::role::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user: UserId,
    pub role: Role,
    pub device: DeviceId,
}

impl Identity {
    pub fn new(user: UserId, role: Role, device: DeviceId) -> Self {
        Identity { user, role, device }
    }

    /// A new user on a new device: handy in tests and the simulator.
    pub fn fresh(role: Role) -> Self {
        Identity { user: UserId::new(), role, device: DeviceId::new() }
    }
}
