-- The trades (工种) a technician works in, as category codes (water_electric, elevator, …): the
-- assignment picker puts technicians of the order's category first. Kept by the admin console.
CREATE TABLE user_trades (
    user_id TEXT NOT NULL REFERENCES users (id),
    trade TEXT NOT NULL,
    PRIMARY KEY (user_id, trade)
);
