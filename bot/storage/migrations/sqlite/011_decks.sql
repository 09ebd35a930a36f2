-- Your own decks (issue 19): decks imported from CSV, Anki or YAML files live in the database.
-- A deck belongs to the chat that imported it (owner = its chat key), or to every chat when the
-- operator imported it with `studybot deck import` (owner = ''); its name is unique per owner.
-- Each card is stored whole as JSON; its id is "<deck id>:<seq>", which no shipped card id (a slug)
-- can be. A card matched again by a re-import keeps its id (and so its review history); a card no
-- longer in the file is retired: kept for the history, never asked.
-- chat_decks holds the decks a chat draws /question, /quiz and /daily from (no row: the shipped bank).
CREATE TABLE decks (
    id           INTEGER PRIMARY KEY,
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    source       TEXT    NOT NULL,   -- csv | apkg | yaml
    imported_by  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (owner, name)
);

CREATE TABLE deck_cards (
    card_id      TEXT    PRIMARY KEY,
    deck_id      INTEGER NOT NULL REFERENCES decks(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    match_key    TEXT    NOT NULL,   -- "id:<the file's id>" or "q:<the question, normalised>"
    position     INTEGER NOT NULL,   -- order in the file last imported
    retired      INTEGER NOT NULL DEFAULT 0,
    body         TEXT    NOT NULL,   -- the card as JSON
    UNIQUE (deck_id, match_key)
) WITHOUT ROWID;
CREATE INDEX deck_cards_deck ON deck_cards(deck_id, position);

CREATE TABLE chat_decks (
    chat_key     TEXT    PRIMARY KEY,
    decks        TEXT    NOT NULL,   -- JSON list of deck names
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
