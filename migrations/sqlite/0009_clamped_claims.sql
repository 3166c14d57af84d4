-- Device clocks are not trusted blindly: a transition's claimed time outside [the device's last
-- successful sync (or registration), the server's receipt] is clamped into it for every deadline
-- the server enforces, and flagged here. The document keeps the claim as the device made it.
CREATE TABLE clamped_claims (
    order_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, entry_id)
);
