-- Mock interviews: one running interview per learner, its questions in order, and one row per answer
-- (the main question and its follow-up). Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE interviews (
    id           INTEGER PRIMARY KEY,
    learner_id   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    chat_key     TEXT    NOT NULL,
    mode         TEXT    NOT NULL,               -- coach | real
    topic        TEXT,                           -- NULL: mixed
    card_ids     TEXT    NOT NULL,               -- JSON list, in the order asked
    status       TEXT    NOT NULL,               -- running | finished | ended | expired
    position     INTEGER NOT NULL DEFAULT 0,     -- index into card_ids of the open question
    phase        TEXT    NOT NULL DEFAULT 'main', -- main | follow_up
    follow_up    TEXT,                           -- the open follow-up question
    asked_at     INTEGER NOT NULL,               -- when the open prompt was sent
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    score        REAL
);
CREATE UNIQUE INDEX interviews_one_running ON interviews(learner_id) WHERE status = 'running';
CREATE INDEX interviews_learner_started ON interviews(learner_id, started_at);

CREATE TABLE interview_answers (
    interview_id  INTEGER NOT NULL REFERENCES interviews(id) ON DELETE CASCADE,
    learner_id    INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    part          TEXT    NOT NULL,              -- main | follow_up
    card_id       TEXT    NOT NULL,
    prompt        TEXT,                          -- the follow-up question asked
    score         REAL    NOT NULL,
    missed        TEXT    NOT NULL DEFAULT '[]', -- JSON list of the key points missed
    elapsed_ms    INTEGER NOT NULL,
    late          INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    rating        INTEGER,                       -- the FSRS rating recorded for the question (main row)
    answered_at   INTEGER NOT NULL,
    PRIMARY KEY (interview_id, position, part)
);
CREATE INDEX interview_answers_learner ON interview_answers(learner_id);
