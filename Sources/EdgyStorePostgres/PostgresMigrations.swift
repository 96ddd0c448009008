import PostgresNIO

/// One step of the schema, applied once per database and recorded in `edgy_migrations`.
struct PostgresMigration: Sendable {
    var version: Int
    var name: String
    var statements: [PostgresQuery]
}

/// The schema, as an ordered list of migrations. Append; never edit an applied one.
///
/// Times are `bigint` microseconds since 1970. A task's spec and attempts are JSONB (they are
/// read and written whole); the columns the queue filters and sorts on are their own.
enum PostgresMigrations {
    /// The advisory lock key that serializes migrations across hosts ("edgy" in ASCII).
    static let lockKey: Int64 = 0x6564_6779

    static let createTable: PostgresQuery = """
        CREATE TABLE IF NOT EXISTS edgy_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at bigint NOT NULL
        )
        """

    static let all: [PostgresMigration] = [
        PostgresMigration(version: 1, name: "tasks, leases, events, tokens", statements: [
            """
            CREATE TABLE tasks (
                id uuid PRIMARY KEY,
                tenant text NOT NULL,
                name text NOT NULL,
                policy text NOT NULL,
                spec jsonb NOT NULL,
                status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
                created_at bigint NOT NULL,
                updated_at bigint NOT NULL,
                finished_at bigint,
                not_before bigint NOT NULL,
                cancel_requested boolean NOT NULL DEFAULT false,
                max_attempts integer NOT NULL,
                attempts jsonb NOT NULL DEFAULT '[]'
            )
            """,
            "CREATE INDEX tasks_claimable ON tasks (not_before, created_at, id) WHERE status = 'queued'",
            "CREATE INDEX tasks_newest ON tasks (created_at DESC, id DESC)",
            "CREATE INDEX tasks_tenant_status ON tasks (tenant, status)",
            "CREATE INDEX tasks_finished ON tasks (finished_at) WHERE status IN ('succeeded', 'failed', 'cancelled')",
            """
            CREATE TABLE leases (
                task_id uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
                worker text NOT NULL,
                attempt integer NOT NULL,
                expires_at bigint NOT NULL
            )
            """,
            "CREATE INDEX leases_expiry ON leases (expires_at)",
            "CREATE INDEX leases_worker ON leases (worker)",
            """
            CREATE TABLE events (
                sequence bigserial PRIMARY KEY,
                task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                kind text NOT NULL,
                attempt integer,
                data text NOT NULL,
                at bigint NOT NULL
            )
            """,
            "CREATE INDEX events_task ON events (task_id, sequence)",
            """
            CREATE TABLE tokens (
                id uuid PRIMARY KEY,
                token_hash text NOT NULL UNIQUE,
                name text NOT NULL,
                role text NOT NULL,
                tenant text NOT NULL,
                policies jsonb,
                created_at bigint NOT NULL,
                expires_at bigint,
                revoked_at bigint
            )
            """,
        ]),
        PostgresMigration(version: 2, name: "workers", statements: [
            """
            CREATE TABLE workers (
                id text PRIMARY KEY,
                host text NOT NULL,
                slots integer NOT NULL,
                kernel text NOT NULL,
                cgroup_version integer,
                started_at bigint NOT NULL,
                last_heartbeat bigint NOT NULL
            )
            """,
        ]),
        PostgresMigration(version: 3, name: "tenant turns for fair claiming", statements: [
            "CREATE SEQUENCE tenant_turn_seq",
            "CREATE TABLE tenant_turns (tenant text PRIMARY KEY, last_served bigint NOT NULL)",
        ]),
        // Bytes kept per task for tenant quotas: the record's (files, stdin, reports' output) and
        // its output events'. Existing rows are counted from their JSON once.
        PostgresMigration(version: 4, name: "bytes stored per task", statements: [
            "ALTER TABLE tasks ADD COLUMN record_bytes bigint NOT NULL DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN output_bytes bigint NOT NULL DEFAULT 0",
            "UPDATE tasks SET record_bytes = octet_length(spec::text) + octet_length(attempts::text)",
            """
            UPDATE tasks SET output_bytes = (SELECT COALESCE(sum(octet_length(data)), 0) FROM events
                                             WHERE events.task_id = tasks.id AND kind <> 'status')
            """,
        ]),
        // Each tenant's running attempts, kept beside its turn so that a claim checks the tenant's
        // limit in the same statement that takes the task (one round trip). Claims add one; the
        // trigger takes one off whenever a task leaves `running` (finished, retried, reclaimed,
        // deleted), whichever statement does it.
        PostgresMigration(version: 5, name: "running attempts per tenant", statements: [
            "ALTER TABLE tenant_turns ADD COLUMN running bigint NOT NULL DEFAULT 0",
            "INSERT INTO tenant_turns (tenant, last_served) SELECT DISTINCT tenant, 0 FROM tasks ON CONFLICT DO NOTHING",
            "UPDATE tenant_turns s SET running = (SELECT count(*) FROM tasks t WHERE t.tenant = s.tenant AND t.status = 'running')",
            """
            CREATE FUNCTION edgy_task_left_running() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE tenant_turns SET running = running - 1 WHERE tenant = OLD.tenant;
                RETURN NULL;
            END $$
            """,
            """
            CREATE TRIGGER tasks_left_running AFTER UPDATE OF status ON tasks FOR EACH ROW
            WHEN (OLD.status = 'running' AND NEW.status <> 'running') EXECUTE FUNCTION edgy_task_left_running()
            """,
            """
            CREATE TRIGGER tasks_deleted_running AFTER DELETE ON tasks FOR EACH ROW
            WHEN (OLD.status = 'running') EXECUTE FUNCTION edgy_task_left_running()
            """,
        ]),
        // Dependency layers one host built, for the others (docs/dependencies.md): a zip archive of
        // the sealed layer and its sha256, checked when read.
        PostgresMigration(version: 6, name: "shared dependency layers", statements: [
            """
            CREATE TABLE dependency_layers (
                key text PRIMARY KEY,
                archive bytea NOT NULL,
                sha256 text NOT NULL,
                bytes bigint NOT NULL,
                created_at bigint NOT NULL
            )
            """,
        ]),
        // Blobs (docs/storage.md): bytes in chunks of 1 MiB, so no row nears bytea's limits and a
        // read streams; uploads and tasks refer to them, and a blob nothing refers to is garbage.
        PostgresMigration(version: 7, name: "blobs", statements: [
            "CREATE TABLE blobs (sha256 text PRIMARY KEY, size bigint NOT NULL, created_at bigint NOT NULL)",
            """
            CREATE TABLE blob_chunks (
                sha256 text NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
                seq integer NOT NULL,
                data bytea NOT NULL,
                PRIMARY KEY (sha256, seq)
            )
            """,
            """
            CREATE TABLE blob_uploads (
                tenant text NOT NULL,
                sha256 text NOT NULL REFERENCES blobs (sha256),
                created_at bigint NOT NULL,
                PRIMARY KEY (tenant, sha256)
            )
            """,
            "CREATE INDEX blob_uploads_sha ON blob_uploads (sha256)",
            "CREATE INDEX blob_uploads_created ON blob_uploads (created_at)",
            """
            CREATE TABLE task_blobs (
                task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                sha256 text NOT NULL REFERENCES blobs (sha256),
                tenant text NOT NULL,
                PRIMARY KEY (task_id, sha256)
            )
            """,
            "CREATE INDEX task_blobs_sha ON task_blobs (sha256)",
            "CREATE INDEX task_blobs_tenant ON task_blobs (tenant, sha256)",
        ]),
        // Webhook deliveries (docs/webhooks.md): one per task with a callback, inserted with it.
        PostgresMigration(version: 8, name: "webhook deliveries", statements: [
            """
            CREATE TABLE deliveries (
                task_id uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
                tenant text NOT NULL,
                url text NOT NULL,
                secret text NOT NULL,
                state text NOT NULL,
                attempts jsonb NOT NULL,
                next_at bigint,
                lease_until bigint
            )
            """,
            "CREATE INDEX deliveries_pending ON deliveries (state, next_at)",
            "ALTER TABLE tokens ADD COLUMN callback_url text",
        ]),
        // Each tenant's queued and stored tasks and their bytes, for the quota check of every
        // create, which counted all of the tenant's tasks before. Kept by a trigger in the
        // transaction that changes a task. The output of running tasks is left out (and summed
        // over the few running tasks at each check): an output event would otherwise update the
        // tenant's row, and every running task of a tenant would wait on the others' events.
        PostgresMigration(version: 9, name: "per-tenant task counters", statements: [
            """
            CREATE TABLE tenant_usage (
                tenant text PRIMARY KEY,
                queued bigint NOT NULL,
                stored bigint NOT NULL,
                bytes bigint NOT NULL
            )
            """,
            """
            INSERT INTO tenant_usage (tenant, queued, stored, bytes)
            SELECT tenant, count(*) FILTER (WHERE status = 'queued'), count(*),
                   COALESCE(sum(record_bytes + CASE WHEN status = 'running' THEN 0 ELSE output_bytes END), 0)
            FROM tasks GROUP BY tenant
            """,
            """
            CREATE FUNCTION edgy_tenant_usage() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN
                    UPDATE tenant_usage SET
                        queued = queued - (OLD.status = 'queued')::int, stored = stored - 1,
                        bytes = bytes - OLD.record_bytes - CASE WHEN OLD.status = 'running' THEN 0 ELSE OLD.output_bytes END
                    WHERE tenant = OLD.tenant;
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    INSERT INTO tenant_usage AS u (tenant, queued, stored, bytes)
                    VALUES (NEW.tenant, (NEW.status = 'queued')::int, 1,
                            NEW.record_bytes + CASE WHEN NEW.status = 'running' THEN 0 ELSE NEW.output_bytes END)
                    ON CONFLICT (tenant) DO UPDATE SET
                        queued = u.queued + EXCLUDED.queued, stored = u.stored + 1, bytes = u.bytes + EXCLUDED.bytes;
                END IF;
                RETURN NULL;
            END $$
            """,
            "CREATE TRIGGER tasks_tenant_usage AFTER INSERT OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION edgy_tenant_usage()",
            """
            CREATE TRIGGER tasks_tenant_usage_changed AFTER UPDATE OF tenant, status, record_bytes, output_bytes ON tasks FOR EACH ROW
            WHEN (OLD.tenant IS DISTINCT FROM NEW.tenant OR OLD.status IS DISTINCT FROM NEW.status
                  OR OLD.record_bytes <> NEW.record_bytes OR (NEW.status <> 'running' AND OLD.output_bytes <> NEW.output_bytes))
            EXECUTE FUNCTION edgy_tenant_usage()
            """,
        ]),
    ]
}
