CREATE TABLE IF NOT EXISTS notes (
    slug  text PRIMARY KEY,
    title text NOT NULL,
    body  text NOT NULL DEFAULT ''
);
TRUNCATE notes;
