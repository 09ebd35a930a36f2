-- Learners, their platform identities, FSRS card state, review log and open attempts.
-- Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE learners (
    id            INTEGER PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    timezone      TEXT    NOT NULL DEFAULT 'UTC',
    new_per_day   INTEGER NOT NULL DEFAULT 10,
    created_at    INTEGER NOT NULL
);

CREATE TABLE identities (
    platform     TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    learner_id   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    PRIMARY KEY (platform, external_id)
) WITHOUT ROWID;
CREATE INDEX identities_learner ON identities(learner_id);

CREATE TABLE card_states (
    learner_id   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    card_id      TEXT    NOT NULL,
    state        INTEGER NOT NULL,
    step         INTEGER,
    stability    REAL,
    difficulty   REAL,
    due          INTEGER NOT NULL,
    last_review  INTEGER,
    reps         INTEGER NOT NULL DEFAULT 0,
    lapses       INTEGER NOT NULL DEFAULT 0,
    first_day    TEXT,
    PRIMARY KEY (learner_id, card_id)
) WITHOUT ROWID;
-- The next-card query: a learner's due cards, most overdue first.
CREATE INDEX card_states_due ON card_states(learner_id, due);
CREATE INDEX card_states_first_day ON card_states(learner_id, first_day);

CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY,
    learner_id    INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    card_id       TEXT    NOT NULL,
    rating        INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 4),
    reviewed_at   INTEGER NOT NULL,
    mode          TEXT    NOT NULL,
    local_day     TEXT    NOT NULL,
    was_new       INTEGER NOT NULL,
    state_before  INTEGER
);
CREATE INDEX reviews_learner_time ON reviews(learner_id, reviewed_at);
CREATE INDEX reviews_learner_day ON reviews(learner_id, local_day);

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    learner_id  INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    card_id     TEXT    NOT NULL,
    chat_key    TEXT    NOT NULL,
    topic       TEXT,
    status      TEXT    NOT NULL,
    options     TEXT    NOT NULL DEFAULT '[]',
    previews    TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX attempts_learner_chat ON attempts(learner_id, chat_key, status);
CREATE INDEX attempts_learner_closed ON attempts(learner_id, status, closed_at);
