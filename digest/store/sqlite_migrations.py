"""The SQLite store's schema history: an ordered list of steps, the count applied kept in the file.

Append a step to change the schema; never edit one that has shipped, since stores out there
already applied it. ``PRAGMA user_version`` is the number of steps applied.
"""

from __future__ import annotations

APPLICATION_ID = 0x50444753  # "PDGS": marks the file as a paper-digest store

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: seen papers, runs, and the deliveries ledger.
    (
        """CREATE TABLE papers (
            key TEXT PRIMARY KEY,
            arxiv_id TEXT UNIQUE,
            title_key TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX papers_title ON papers (title_key)",
        "CREATE INDEX papers_first_seen ON papers (first_seen)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            finished TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            summary TEXT
        )""",
        """CREATE TABLE deliveries (
            email TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
            message_id TEXT,
            reason TEXT,
            updated TEXT NOT NULL,
            PRIMARY KEY (email, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_paper ON deliveries (paper_key, status)",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    # 2: remember every title a paper was seen under (a corrected title must still match the
    # saved text page that carried the old one); count delivery attempts; index the open rows so
    # the owed papers are found without walking a subscriber's whole history.
    (
        """CREATE TABLE paper_titles (
            title_key TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            PRIMARY KEY (title_key, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX paper_titles_paper ON paper_titles (paper_key)",
        "INSERT INTO paper_titles (title_key, paper_key) SELECT title_key, key FROM papers",
        "ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "UPDATE deliveries SET attempts = 1 WHERE status != 'pending'",
        "CREATE INDEX deliveries_open ON deliveries (email) WHERE status != 'sent'",
    ),
    # 3: papers a subscriber matched but that fell below their max_papers cut in a digest that
    # was sent: offered once, so they do not come back in tomorrow's email.
    (
        """CREATE TABLE passed_over (
            email TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
            updated TEXT NOT NULL,
            PRIMARY KEY (email, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX passed_over_paper ON passed_over (paper_key)",
    ),
)
