-- Chats the bot can no longer reach (blocked, kicked, DMs closed): nothing is sent there until
-- the user or group talks to the bot again.
CREATE TABLE chats (
    chat_key          TEXT PRIMARY KEY,
    unreachable_since INTEGER,
    reason            TEXT
) WITHOUT ROWID;
