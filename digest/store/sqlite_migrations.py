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
    # 4: one ledger row per digest instead of one per (subscriber, paper), subscribers with
    # their state and totals, a per-paper sent count. Existing rows are converted: each sent
    # message becomes a sent digest, papers passed over a sent digest of their own run, what was
    # owed one open digest per subscriber; nothing a later run needs is lost.
    (
        """CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            digest_id TEXT NOT NULL,
            day TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            papers TEXT NOT NULL DEFAULT '',
            passed_over TEXT NOT NULL DEFAULT '',
            run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
            message_id TEXT,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            lease_until TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (email, digest_id)
        )""",
        "CREATE INDEX digests_open ON digests (email) WHERE status IN ('pending', 'failed')",
        "CREATE INDEX digests_sent ON digests (updated) WHERE status = 'sent'",
        "CREATE INDEX digests_day ON digests (day)",
        """CREATE TABLE subscribers (
            email TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'unsubscribed', 'suspended')),
            changed TEXT,
            how TEXT,
            bounces INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_sent TEXT,
            digests_sent INTEGER NOT NULL DEFAULT 0,
            papers_received INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        "ALTER TABLE papers ADD COLUMN sent_to INTEGER NOT NULL DEFAULT 0",
        """UPDATE papers SET sent_to = (
            SELECT COUNT(*) FROM deliveries AS d
            WHERE d.paper_key = papers.key AND d.status = 'sent'
        )""",
        """INSERT INTO digests (email, digest_id, day, status, papers, run_id, message_id,
                               attempts, created, updated)
           SELECT email, 'migrated.' || COALESCE(run_id, 0) || '.' || COALESCE(message_id, ''),
                  substr(MIN(updated), 1, 10), 'sent', group_concat(paper_key, ' '), run_id,
                  message_id, MAX(attempts), MIN(updated), MAX(updated)
           FROM deliveries WHERE status = 'sent' GROUP BY email, run_id, message_id""",
        """INSERT INTO digests (email, digest_id, day, status, passed_over, run_id, attempts,
                               created, updated)
           SELECT email, 'migrated-passed.' || COALESCE(run_id, 0), substr(MIN(updated), 1, 10),
                  'sent', group_concat(paper_key, ' '), run_id, 0, MIN(updated), MAX(updated)
           FROM passed_over GROUP BY email, run_id""",
        """INSERT INTO digests (email, digest_id, day, status, papers, run_id, reason, attempts,
                               created, updated)
           SELECT email, 'migrated-open', substr(MIN(updated), 1, 10),
                  CASE WHEN SUM(status = 'failed') > 0 THEN 'failed' ELSE 'pending' END,
                  group_concat(paper_key, ' '), MAX(run_id), MAX(reason), MAX(attempts),
                  MIN(updated), MAX(updated)
           FROM deliveries WHERE status != 'sent' GROUP BY email""",
        """INSERT INTO subscribers (email, last_sent, digests_sent, papers_received)
           SELECT email, MAX(updated), COUNT(DISTINCT COALESCE(run_id, 0) || message_id),
                  COUNT(*)
           FROM deliveries WHERE status = 'sent' GROUP BY email""",
        "DROP TABLE deliveries",
        "DROP TABLE passed_over",
    ),
    # 5: what a digest's email says of the run that planned it (how many papers matched, how
    # many were new), so any worker can send a digest another one planned; open digests found
    # by the day they were planned for.
    (
        "ALTER TABLE digests ADD COLUMN matched INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE digests ADD COLUMN new_count INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX digests_pending ON digests (day) WHERE status = 'pending'",
        "CREATE INDEX digests_claims ON digests (claimed_by) WHERE status = 'pending'",
    ),
    # 6: what interests in plain words need (digest.store.vectors): paper embeddings, and the
    # papers subscribers liked that were fetched for them.
    (
        """CREATE TABLE paper_vectors (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            vector TEXT NOT NULL
        )""",
        """CREATE TABLE liked_papers (
            arxiv_id TEXT PRIMARY KEY,
            record TEXT NOT NULL,
            fetched TEXT NOT NULL
        )""",
    ),
    # 7: what readers change on their own preferences page (`digest serve`): overrides of their
    # TOML entry, kept as JSON (digest.preferences says which keys).
    (
        """CREATE TABLE preferences (
            email TEXT PRIMARY KEY,
            settings TEXT NOT NULL,
            changed TEXT NOT NULL
        )""",
    ),
    # 8: readers' verdicts on papers ("more like this" +1, "fewer like this" -1), from the
    # links in their email or `digest feedback` (digest.store.verdicts); a paper with one keeps
    # its record and vector when older papers are pruned. The profile fitted from a reader's
    # verdicts, kept until they change (its tag says what it was fitted from).
    (
        """CREATE TABLE verdicts (
            email TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            verdict INTEGER NOT NULL CHECK (verdict IN (-1, 1)),
            changed TEXT NOT NULL,
            PRIMARY KEY (email, paper_key)
        )""",
        "CREATE INDEX verdicts_paper ON verdicts (paper_key)",
        """CREATE TABLE reader_profiles (
            email TEXT PRIMARY KEY,
            tag TEXT NOT NULL,
            weights TEXT NOT NULL
        )""",
    ),
)
