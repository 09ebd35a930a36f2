-- Chats the bot can no longer reach (blocked, kicked, DMs closed).
CREATE TABLE chats (
    chat_key          TEXT PRIMARY KEY,
    unreachable_since BIGINT,
    reason            TEXT
);
