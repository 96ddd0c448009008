import EdgyModel
import GRDB

/// The database's tables, as migrations. A migration, once shipped, is never edited: changes
/// are new migrations appended below, so every existing file upgrades in order.
///
/// Times are microseconds since the epoch (INTEGER), so ordering and cursors are exact.
/// Task ids are upper-case UUID strings, the order `InMemoryTaskStore` uses for ties.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: tasks, attempts, files, events, tokens") { db in
            try db.execute(sql: """
                CREATE TABLE tasks (
                    id TEXT PRIMARY KEY NOT NULL,
                    tenant TEXT NOT NULL,
                    name TEXT NOT NULL,
                    policy TEXT NOT NULL,
                    status TEXT NOT NULL,
                    command TEXT,                 -- JSON array, NULL when the policy's command runs
                    stdin BLOB NOT NULL,
                    env TEXT NOT NULL,            -- JSON object
                    limits TEXT NOT NULL,         -- JSON LimitOverrides
                    max_attempts INTEGER NOT NULL,
                    attempt_count INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    not_before INTEGER NOT NULL,
                    cancel_requested INTEGER NOT NULL DEFAULT 0,
                    lease_owner TEXT,             -- the lease: all three set, or all NULL
                    lease_attempt INTEGER,
                    lease_expires_at INTEGER
                );
                -- list: newest first, alone or by one filter
                CREATE INDEX tasks_by_created ON tasks (created_at, id);
                CREATE INDEX tasks_by_tenant ON tasks (tenant, created_at, id);
                CREATE INDEX tasks_by_status ON tasks (status, created_at, id);
                CREATE INDEX tasks_by_policy ON tasks (policy, created_at, id);
                CREATE INDEX tasks_by_name ON tasks (name, created_at, id);
                -- queue limits and activeCounts per tenant
                CREATE INDEX tasks_by_tenant_status ON tasks (tenant, status);
                -- claim: the oldest claimable queued task
                CREATE INDEX tasks_claimable ON tasks (not_before, created_at, id) WHERE status = 'queued';
                -- reclaim: leases by expiry or owner
                CREATE INDEX tasks_leased ON tasks (lease_expires_at, lease_owner) WHERE lease_owner IS NOT NULL;

                CREATE TABLE attempts (
                    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                    number INTEGER NOT NULL,
                    worker TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    outcome TEXT,
                    report TEXT,                  -- JSON AttemptReport
                    PRIMARY KEY (task_id, number)
                );

                CREATE TABLE task_files (
                    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    path TEXT NOT NULL,
                    mode INTEGER NOT NULL,
                    contents BLOB NOT NULL,
                    PRIMARY KEY (task_id, position)
                );

                CREATE TABLE events (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    attempt INTEGER,
                    data TEXT NOT NULL,
                    at INTEGER NOT NULL
                );
                CREATE INDEX events_by_task ON events (task_id, sequence);

                CREATE TABLE tokens (
                    hash TEXT PRIMARY KEY NOT NULL,
                    id TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    policies TEXT,                -- JSON array, NULL for any
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER
                );
                CREATE INDEX tokens_by_tenant ON tokens (tenant, created_at);
                """)
        }
        migrator.registerMigration("v2: tenant turns for fair claiming") { db in
            // The claim turn at which each tenant was last served: claims go to the tenant served
            // least recently.
            try db.execute(sql: """
                CREATE TABLE tenant_turns (
                    tenant TEXT PRIMARY KEY NOT NULL,
                    last_served INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3: bytes stored per task, for tenant quotas") { db in
            // File contents, stdin, reports' output and output events; existing rows are counted
            // once here (their reports' output is left out: it is inside JSON).
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
                UPDATE tasks SET stored_bytes = length(stdin)
                    + (SELECT COALESCE(SUM(length(contents)), 0) FROM task_files WHERE task_id = tasks.id)
                    + (SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM events WHERE task_id = tasks.id AND kind != 'status');
                """)
        }
        migrator.registerMigration("v4: blobs and their references, tasks' output patterns") { db in
            // A small blob's bytes are in its row, a large one's in a file beside the database
            // (`BlobDirectory`); the other tables say who refers to a blob. A blob with neither an
            // upload nor a task referring to it is garbage.
            try db.execute(sql: """
                ALTER TABLE task_files ADD COLUMN blob TEXT;   -- sha256 hex when the file is a blob
                ALTER TABLE tasks ADD COLUMN outputs TEXT;     -- JSON array of output patterns, or NULL
                CREATE TABLE blobs (
                    sha256 TEXT PRIMARY KEY NOT NULL,
                    size INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    data BLOB                     -- the bytes of a small blob; NULL: a file
                );
                CREATE TABLE blob_uploads (
                    tenant TEXT NOT NULL,
                    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, sha256)
                ) WITHOUT ROWID;
                CREATE INDEX blob_uploads_by_sha ON blob_uploads (sha256);
                CREATE INDEX blob_uploads_by_created ON blob_uploads (created_at);
                -- WITHOUT ROWID: small rows found by their key, one B-tree fewer to write per reference.
                CREATE TABLE task_blobs (
                    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
                    tenant TEXT NOT NULL,
                    PRIMARY KEY (task_id, sha256)
                ) WITHOUT ROWID;
                CREATE INDEX task_blobs_by_sha ON task_blobs (sha256);
                CREATE INDEX task_blobs_by_tenant ON task_blobs (tenant, sha256);
                """)
        }
        migrator.registerMigration("v5: multi-step tasks") { db in
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN steps TEXT;  -- JSON array of steps, or NULL")
        }
        migrator.registerMigration("v6: webhook deliveries") { db in
            try db.execute(sql: """
                CREATE TABLE deliveries (
                    task_id TEXT PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
                    tenant TEXT NOT NULL,
                    url TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    state TEXT NOT NULL,              -- pending | delivered | failed
                    attempts TEXT NOT NULL,           -- JSON array of tries
                    next_at INTEGER,                  -- microseconds; NULL: when the task finishes
                    lease_until INTEGER
                );
                CREATE INDEX deliveries_pending ON deliveries (state, next_at);
                ALTER TABLE tokens ADD COLUMN callback_url TEXT;  -- the token's default webhook, or NULL
                """)
        }
        migrator.registerMigration("v7: small blobs' bytes in the attached database") { db in
            // `blobdata` is attached by the store on every connection, with 64 KiB pages.
            try db.execute(sql: """
                CREATE TABLE blobdata.blob_bytes (
                    sha256 TEXT PRIMARY KEY NOT NULL,
                    data BLOB NOT NULL
                );
                INSERT INTO blobdata.blob_bytes (sha256, data) SELECT sha256, data FROM blobs WHERE data IS NOT NULL;
                ALTER TABLE blobs ADD COLUMN inline INTEGER NOT NULL DEFAULT 0;  -- 1: bytes in blob_bytes; 0: a file
                UPDATE blobs SET inline = 1 WHERE data IS NOT NULL;
                ALTER TABLE blobs DROP COLUMN data;
                """)
        }
        migrator.registerMigration("v8: small blobs' bytes keyed by integer") { db in
            // Keyed by sha256, every insert landed at a random place in a text index of 64 KiB
            // pages, so each attempt rewrote most of that index into the WAL: its cost grew with
            // the number of blobs stored. Keyed by an increasing integer, new bytes are appended.
            try db.execute(sql: """
                ALTER TABLE blobs ADD COLUMN bytes_id INTEGER;  -- the blob_bytes row of an inline blob
                CREATE TABLE blobdata.blob_bytes_by_id (
                    id INTEGER PRIMARY KEY,
                    data BLOB NOT NULL
                );
                INSERT INTO blobdata.blob_bytes_by_id (id, data)
                    SELECT b.rowid, d.data FROM blobs b JOIN blobdata.blob_bytes d ON d.sha256 = b.sha256 WHERE b.inline = 1;
                UPDATE blobs SET bytes_id = rowid WHERE inline = 1 AND rowid IN (SELECT id FROM blobdata.blob_bytes_by_id);
                DROP TABLE blobdata.blob_bytes;
                ALTER TABLE blobdata.blob_bytes_by_id RENAME TO blob_bytes;
                """)
        }
        migrator.registerMigration("v9: per-tenant task counters") { db in
            // A create checks the tenant's quotas. Counting its tasks on every create cost time
            // in proportion to what it had stored (1.2 ms at 4,000 tasks); triggers keep the
            // counts as tasks come, change status and go, in the same transactions.
            try db.execute(sql: """
                CREATE TABLE tenant_usage (
                    tenant TEXT PRIMARY KEY NOT NULL,
                    queued INTEGER NOT NULL,
                    stored INTEGER NOT NULL,
                    bytes INTEGER NOT NULL              -- tasks' stored_bytes; blobs are summed apart
                ) WITHOUT ROWID;
                INSERT INTO tenant_usage (tenant, queued, stored, bytes)
                    SELECT tenant, SUM(status = 'queued'), COUNT(*), SUM(stored_bytes) FROM tasks GROUP BY tenant;
                CREATE TRIGGER tenant_usage_on_insert AFTER INSERT ON tasks BEGIN
                    INSERT INTO tenant_usage (tenant, queued, stored, bytes) VALUES (NEW.tenant, NEW.status = 'queued', 1, NEW.stored_bytes)
                    ON CONFLICT (tenant) DO UPDATE SET
                        queued = queued + (NEW.status = 'queued'), stored = stored + 1, bytes = bytes + NEW.stored_bytes;
                END;
                CREATE TRIGGER tenant_usage_on_delete AFTER DELETE ON tasks BEGIN
                    UPDATE tenant_usage SET
                        queued = queued - (OLD.status = 'queued'), stored = stored - 1, bytes = bytes - OLD.stored_bytes
                    WHERE tenant = OLD.tenant;
                END;
                CREATE TRIGGER tenant_usage_on_update AFTER UPDATE OF tenant, status, stored_bytes ON tasks BEGIN
                    UPDATE tenant_usage SET
                        queued = queued - (OLD.status = 'queued'), stored = stored - 1, bytes = bytes - OLD.stored_bytes
                    WHERE tenant = OLD.tenant;
                    INSERT INTO tenant_usage (tenant, queued, stored, bytes) VALUES (NEW.tenant, NEW.status = 'queued', 1, NEW.stored_bytes)
                    ON CONFLICT (tenant) DO UPDATE SET
                        queued = queued + (NEW.status = 'queued'), stored = stored + 1, bytes = bytes + NEW.stored_bytes;
                END;
                """)
        }
        return migrator
    }
}
