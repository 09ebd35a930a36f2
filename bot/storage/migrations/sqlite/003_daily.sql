-- Daily pushes: one subscription per chat, its next push as a UTC instant, and one delivery row per
-- subscription and local day (the UNIQUE constraint is what makes a push happen at most once a day).

CREATE TABLE subscriptions (
    id             INTEGER PRIMARY KEY,
    chat_key       TEXT    NOT NULL UNIQUE,
    platform       TEXT    NOT NULL,
    chat_id        TEXT    NOT NULL,
    is_group       INTEGER NOT NULL,
    learner_id     INTEGER REFERENCES learners(id) ON DELETE CASCADE,
    local_time     TEXT    NOT NULL,
    timezone       TEXT    NOT NULL,
    next_push_at   INTEGER NOT NULL,
    paused_reason  TEXT,
    created_by     INTEGER REFERENCES learners(id) ON DELETE SET NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX subscriptions_due ON subscriptions(next_push_at) WHERE paused_reason IS NULL;
CREATE INDEX subscriptions_learner ON subscriptions(learner_id);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    local_day        TEXT    NOT NULL,
    status           TEXT    NOT NULL,  -- claimed | retry | sent | unreachable | rejected | gave_up
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT    NOT NULL,
    claimed_at       INTEGER NOT NULL,
    retry_at         INTEGER,
    finished_at      INTEGER,
    message_id       TEXT,
    detail           TEXT,
    UNIQUE (subscription_id, local_day)
);
CREATE INDEX deliveries_open ON deliveries(status, retry_at) WHERE status IN ('claimed', 'retry');

CREATE TABLE heartbeats (
    name  TEXT PRIMARY KEY,
    at    INTEGER NOT NULL
) WITHOUT ROWID;
