-- Group quiz competitions: matches, their rounds (also used for a group's daily quiz poll, with no
-- match), and one answer per player per round (the primary key is the one-answer rule).

CREATE TABLE matches (
    id             INTEGER PRIMARY KEY,
    chat_key       TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    chat_id        TEXT    NOT NULL,
    starter_id     INTEGER REFERENCES learners(id) ON DELETE SET NULL,
    topic          TEXT,
    questions      INTEGER NOT NULL,
    seconds        INTEGER NOT NULL,
    solo           INTEGER NOT NULL DEFAULT 0,
    status         TEXT    NOT NULL,          -- running | finished | stopped
    end_reason     TEXT,
    card_ids       TEXT    NOT NULL,          -- JSON list, chosen at the start
    rounds_played  INTEGER NOT NULL DEFAULT 0,
    idle_rounds    INTEGER NOT NULL DEFAULT 0,
    winner_id      INTEGER REFERENCES learners(id) ON DELETE SET NULL,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER
);
CREATE UNIQUE INDEX matches_one_running ON matches(chat_key) WHERE status = 'running';

CREATE TABLE rounds (
    id             INTEGER PRIMARY KEY,
    match_id       INTEGER REFERENCES matches(id) ON DELETE CASCADE,
    chat_key       TEXT    NOT NULL,
    number         INTEGER NOT NULL,
    card_id        TEXT    NOT NULL,
    options        TEXT    NOT NULL,          -- JSON: order of the card's quiz options as shown
    correct_index  INTEGER NOT NULL,
    speed_bonus    INTEGER NOT NULL,
    opened_at      INTEGER NOT NULL,
    closes_at      INTEGER NOT NULL,
    closed         INTEGER NOT NULL DEFAULT 0,
    poll_id        TEXT,
    message_id     TEXT
);
CREATE INDEX rounds_match ON rounds(match_id, number);
CREATE INDEX rounds_poll ON rounds(poll_id) WHERE poll_id IS NOT NULL;
CREATE INDEX rounds_chat ON rounds(chat_key, opened_at);

CREATE TABLE round_answers (
    round_id      INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
    learner_id    INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    option_index  INTEGER NOT NULL,
    correct       INTEGER NOT NULL,
    points        INTEGER NOT NULL,
    elapsed_ms    INTEGER NOT NULL,
    answered_at   INTEGER NOT NULL,
    PRIMARY KEY (round_id, learner_id)
) WITHOUT ROWID;
CREATE INDEX round_answers_learner ON round_answers(learner_id);
