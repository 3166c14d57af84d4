-- The knowledge base and the owner bot's conversations (docs/triage.md, "The owner bot").
-- An organization's articles (物业费缴纳, 停水停电通知, …); `keywords` is a JSON array of
-- strings. Only published articles answer owners.
CREATE TABLE kb_articles (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    keywords TEXT NOT NULL,
    body TEXT NOT NULL,
    published BOOLEAN NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (org_id, id)
);
-- Bumped by every change of an organization's articles: each process rebuilds its search
-- index when the number moves.
CREATE TABLE kb_versions (
    org_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
-- An owner's conversation with the assistant: `bot` (the bot answers), `waiting` (handed over
-- to a person, since `waiting_since`), `answered` (a person replied), `closed`. `project` is
-- the owner's project when it began (whom a dispatcher bound to projects serves); `order_id`
-- the order it created.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    project TEXT,
    state TEXT NOT NULL,
    order_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    waiting_since INTEGER
);
CREATE INDEX conversations_owner ON conversations (owner_id, updated_at);
CREATE INDEX conversations_state ON conversations (org_id, state, updated_at);
CREATE UNIQUE INDEX conversations_order ON conversations (order_id) WHERE order_id IS NOT NULL;
-- Its messages in order: the owner's, the bot's (`turn`: what it did, JSON) and staff's.
CREATE TABLE conversation_messages (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    author TEXT NOT NULL,
    user_id TEXT,
    text TEXT NOT NULL,
    turn TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
