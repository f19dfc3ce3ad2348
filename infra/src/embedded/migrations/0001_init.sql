-- openwa embedded schema, version 1.
-- Entities are stored as JSON (`body`) plus the columns that are filtered, sorted or enforced.
-- Times are integer nanoseconds since the Unix epoch (`*_ns`); JSON keeps the exact values.

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    created_ns      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    desired         TEXT NOT NULL,
    lease_owner     TEXT,
    lease_epoch     INTEGER NOT NULL DEFAULT 0,
    lease_until_ns  INTEGER,
    version         INTEGER NOT NULL,
    body            TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_created ON sessions (created_ns, id);
CREATE INDEX sessions_by_lease ON sessions (desired, lease_until_ns);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    session_id          TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    direction           TEXT NOT NULL,
    status              TEXT NOT NULL,
    wa_id               TEXT,
    idempotency_key     TEXT,
    -- `Message.request_fingerprint` is not serialised; it lives here.
    request_fingerprint TEXT,
    created_ns          INTEGER NOT NULL,
    body                TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_by_created ON messages (session_id, created_ns, id);
CREATE INDEX messages_by_chat ON messages (session_id, chat_id, created_ns, id);
CREATE INDEX messages_by_wa_id ON messages (session_id, wa_id, created_ns) WHERE wa_id IS NOT NULL;

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    -- `ApiKey.secret_hash` is not serialised; it lives here.
    secret_hash TEXT NOT NULL UNIQUE,
    created_ns  INTEGER NOT NULL,
    body        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX api_keys_by_created ON api_keys (created_ns, id);

CREATE TABLE audit (
    id          TEXT PRIMARY KEY,
    at_ns       INTEGER NOT NULL,
    action      TEXT NOT NULL,
    key_id      TEXT,
    session_id  TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit (at_ns, id);
CREATE INDEX audit_by_action ON audit (action, at_ns, id);
CREATE INDEX audit_by_key ON audit (key_id, at_ns, id) WHERE key_id IS NOT NULL;
CREATE INDEX audit_by_session ON audit (session_id, at_ns, id) WHERE session_id IS NOT NULL;

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    session_id      TEXT,
    active          INTEGER NOT NULL,
    created_ns      INTEGER NOT NULL,
    -- `Webhook.secret` / `previous_secret` are not serialised; they live here.
    secret          TEXT,
    previous_secret TEXT,
    body            TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhooks_by_created ON webhooks (created_ns, id);
CREATE INDEX webhooks_by_session ON webhooks (session_id);

CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_ns  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_by_created ON deliveries (webhook_id, created_ns, id);
CREATE INDEX deliveries_by_status ON deliveries (webhook_id, status, created_ns, id);

CREATE TABLE delivery_attempts (
    seq         INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt, seq);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    session_id  TEXT,
    occurred_ns INTEGER NOT NULL,
    body        TEXT NOT NULL
) WITHOUT ROWID;

-- The job queue. A job is visible when `visible_ns <= now`; it is in flight while it has a
-- `receipt` and is not yet visible again.
CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    fifo        INTEGER NOT NULL,
    created_ns  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    body          BLOB NOT NULL,
    grp           TEXT,
    enqueued_ns   INTEGER NOT NULL,
    visible_ns    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX jobs_by_visibility ON jobs (queue, visible_ns, seq);
-- Only jobs in flight have a receipt; a partial index keeps inserts from touching it.
CREATE UNIQUE INDEX jobs_by_receipt ON jobs (receipt) WHERE receipt IS NOT NULL;
CREATE INDEX jobs_by_group ON jobs (queue, grp, seq) WHERE grp IS NOT NULL;
-- Jobs without a group on FIFO queues, found without walking the grouped ones.
CREATE INDEX jobs_ungrouped_by_visibility ON jobs (queue, visible_ns, seq) WHERE grp IS NULL;

-- FIFO order: the oldest remaining job of each group (its head) and when that job is visible.
-- Only heads are handed out, so while a head is in flight or delayed its group waits; this
-- table lets `receive` find the visible heads without scanning the jobs behind them.
CREATE TABLE job_groups (
    queue           TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    grp             TEXT NOT NULL,
    head_seq        INTEGER NOT NULL,
    head_visible_ns INTEGER NOT NULL,
    PRIMARY KEY (queue, grp)
) WITHOUT ROWID;
CREATE INDEX job_groups_by_visibility ON job_groups (queue, head_visible_ns, head_seq);

CREATE TABLE job_dedup (
    queue       TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    dedup_id    TEXT NOT NULL,
    expires_ns  INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
CREATE INDEX job_dedup_by_expiry ON job_dedup (expires_ns);

CREATE TABLE dead_jobs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    body          BLOB NOT NULL,
    grp           TEXT,
    receive_count INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    dead_ns       INTEGER NOT NULL
);
CREATE INDEX dead_jobs_by_queue ON dead_jobs (queue, seq);
