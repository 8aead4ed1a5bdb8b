"""Tables that E²A's Python side owns (``raw``, ``ops``, ``actions``), as numbered migrations.

``migrate`` is idempotent: it applies the migrations a database has not seen yet, each in its own transaction,
under an advisory lock so concurrent processes do not race. Never edit a released migration: add a new one."""

from __future__ import annotations

import sqlalchemy as sa

# Schemas dbt builds into are created here too, so that grants and BI roles can refer to them up front.
SCHEMAS = ("raw", "ops", "actions", "reference", "staging", "intermediate", "marts")

_LOCK_KEY = 0xE2A  # pg_advisory_xact_lock key for migrations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "landing-zone events, rejected records, file ledger",
        [
            *[f"create schema if not exists {name}" for name in SCHEMAS],
            """
            create table if not exists raw.order_events (
                tenant_id       text        not null,
                source          text        not null,
                event_id        text        not null,
                event_type      text        not null,
                order_id        text        not null,
                occurred_at     timestamptz not null,
                warehouse_id    text,
                carrier         text,
                service_level   text,
                tracking_number text,
                units           integer,
                lines           integer,
                cartons         integer,
                postage         numeric,
                attributes      jsonb,
                payload         jsonb       not null,
                file_name       text,
                line_number     integer,
                ingested_at     timestamptz not null default now(),
                primary key (tenant_id, source, event_id)
            )
            """,
            "create index if not exists order_events_order_idx on raw.order_events (tenant_id, order_id)",
            "create index if not exists order_events_ingested_idx on raw.order_events (ingested_at)",
            """
            create table if not exists ops.ingested_files (
                content_hash  text primary key,
                source        text        not null,
                file_name     text        not null,
                size_bytes    bigint      not null,
                record_count  integer     not null,
                loaded_count  integer     not null,
                duplicate_count integer   not null,
                rejected_count integer    not null,
                ingested_at   timestamptz not null default now()
            )
            """,
            """
            create table if not exists ops.rejected_records (
                rejected_id    bigserial primary key,
                source         text        not null,
                location       text        not null,
                raw            text        not null,
                record_hash    text        not null,
                error_code     text        not null,
                error_message  text        not null,
                status         text        not null default 'open'
                               check (status in ('open', 'replayed', 'discarded', 'failed')),
                attempts       integer     not null default 1,
                first_seen_at  timestamptz not null default now(),
                last_attempt_at timestamptz not null default now(),
                resolved_at    timestamptz,
                unique (source, location, record_hash)
            )
            """,
            "create index if not exists rejected_records_status_idx on ops.rejected_records (status)",
        ],
    ),
    (
        2,
        "shopify order versions, source cursors",
        [
            """
            create table if not exists raw.shopify_orders (
                shop         text        not null,
                order_id     text        not null,
                updated_at   timestamptz not null,
                tenant_id    text        not null,
                order_name   text,
                page         text,
                payload      jsonb       not null,
                ingested_at  timestamptz not null default now(),
                primary key (shop, order_id, updated_at)
            )
            """,
            "create index if not exists shopify_orders_tenant_order_idx on raw.shopify_orders (tenant_id, order_id)",
            "create index if not exists shopify_orders_ingested_idx on raw.shopify_orders (ingested_at)",
            # One row per pulled source (e.g. one Shopify shop): the committed position. Written in the same
            # transaction as the rows it covers, so a crash can never move it past data that is not stored.
            """
            create table if not exists ops.source_cursors (
                source      text        not null,
                source_key  text        not null,
                tenant_id   text,
                state       jsonb       not null,
                updated_at  timestamptz not null default now(),
                primary key (source, source_key)
            )
            """,
        ],
    ),
    (
        3,
        "exception narratives, LLM token budget and circuit breaker",
        [
            """
            create table if not exists actions.exception_narratives (
                exception_id      text        not null,
                input_hash        text        not null,
                tenant_id         text        not null,
                order_id          text        not null,
                stage             text        not null,
                exception_status  text        not null,
                severity          text,
                label             text        not null,
                ops_note          text        not null,
                client_note       text        not null,
                confidence        numeric(4, 3) check (confidence between 0 and 1),
                generator         text        not null check (generator in ('llm', 'template')),
                status            text        not null,
                status_detail     text,
                model             text,
                prompt_version    text        not null,
                tokens            integer,
                prompt_tokens     integer,
                completion_tokens integer,
                cost_estimate     numeric(14, 6),
                facts             jsonb       not null,
                created_at        timestamptz not null default now(),
                primary key (exception_id, input_hash)
            )
            """,
            "create index if not exists exception_narratives_tenant_idx "
            "on actions.exception_narratives (tenant_id, created_at)",
            """
            create or replace view actions.exception_narratives_current as
            select distinct on (exception_id) *
            from actions.exception_narratives
            order by exception_id, created_at desc
            """,
            """
            create table if not exists ops.llm_budget (
                tenant_id     text    not null,
                budget_date   date    not null,
                tokens_limit  bigint  not null,
                tokens_used   bigint  not null default 0,
                calls         integer not null default 0,
                refused       integer not null default 0,
                updated_at    timestamptz not null default now(),
                primary key (tenant_id, budget_date)
            )
            """,
            """
            create table if not exists ops.llm_breaker (
                breaker_key          text primary key,
                state                text        not null default 'closed'
                                     check (state in ('closed', 'open', 'half_open')),
                consecutive_failures integer     not null default 0,
                opened_at            timestamptz,
                last_error           text,
                updated_at           timestamptz not null default now()
            )
            """,
        ],
    ),
    (
        4,
        "warehouse calendar (written by the calendar asset); occurred_at index for incremental SLA builds",
        [
            """
            create table if not exists reference.warehouse_calendar (
                warehouse_id            text        not null,
                local_date              date        not null,
                time_zone               text        not null,
                is_business_day         boolean     not null,
                open_at                 timestamptz,
                close_at                timestamptz,
                cutoff_at               timestamptz,
                day_start_at            timestamptz not null,
                day_end_at              timestamptz not null,
                is_public_holiday       boolean     not null,
                is_carrier_business_day boolean     not null,
                holiday_name            text,
                exception_reason        text,
                primary key (warehouse_id, local_date),
                check (is_business_day = (open_at is not null and close_at is not null and cutoff_at is not null)),
                check (open_at < close_at and open_at <= cutoff_at and cutoff_at <= close_at)
            )
            """,
            "create index if not exists order_events_occurred_idx on raw.order_events (occurred_at)",
        ],
    ),
    (
        5,
        "billed invoice lines (versioned by content hash); invoice adjustments",
        [
            # Every version of every billed line is kept: a re-sent identical line is a no-op (same content
            # hash), a changed one is a new row. staging picks the current version (highest line_version).
            """
            create table if not exists raw.invoice_lines (
                invoice_id    text          not null,
                line_id       text          not null,
                content_hash  text          not null,
                tenant_id     text          not null,
                invoice_date  date          not null,
                period_start  date          not null,
                period_end    date          not null,
                charge_code   text          not null,
                order_id      text,
                quantity      numeric(14,4),
                unit_rate     numeric(14,6),
                amount        numeric(12,2) not null,
                currency      text          not null,
                payload       jsonb         not null,
                file_name     text          not null,
                line_number   integer       not null,
                line_version  bigserial     not null,
                ingested_at   timestamptz   not null default now(),
                primary key (invoice_id, line_id, content_hash),
                check (period_start <= period_end)
            )
            """,
            "create index if not exists invoice_lines_tenant_period_idx on raw.invoice_lines (tenant_id, period_start)",
            "create index if not exists invoice_lines_ingested_idx on raw.invoice_lines (ingested_at)",
            """
            create table if not exists actions.invoice_adjustments (
                adjustment_id     text          primary key,
                tenant_id         text          not null,
                invoice_id        text          not null,
                charge_code       text          not null,
                order_id          text,
                discrepancy_type  text          not null,
                kind              text          not null check (kind in ('correction', 'sla_credit')),
                reason_code       text          not null,
                reason            text          not null,
                amount            numeric(12,2) not null,
                currency          text          not null,
                approval_status   text          not null
                                  check (approval_status in ('auto_approved', 'needs_review', 'approved',
                                                             'rejected')),
                status            text          not null default 'open'
                                  check (status in ('open', 'superseded')),
                evidence          jsonb         not null,
                content_hash      text          not null,
                created_at        timestamptz   not null default now(),
                updated_at        timestamptz   not null default now(),
                superseded_at     timestamptz
            )
            """,
            "create index if not exists invoice_adjustments_invoice_idx on actions.invoice_adjustments "
            "(tenant_id, invoice_id)",
            "create index if not exists invoice_adjustments_status_idx on actions.invoice_adjustments "
            "(status, approval_status)",
        ],
    ),
    (
        6,
        "notifications, quality-check watermarks, BI access function (grants + row-level security)",
        [
            # One row per (kind, subject): the bookkeeping that makes delivery exactly-once across re-runs.
            """
            create table if not exists actions.notifications (
                notification_id  bigserial   primary key,
                kind             text        not null
                                 check (kind in ('sla_exception_critical', 'invoice_adjustment_needs_review')),
                subject_id       text        not null,
                tenant_id        text        not null,
                title            text        not null,
                message          jsonb       not null,
                status           text        not null default 'pending'
                                 check (status in ('pending', 'sent', 'failed', 'skipped')),
                attempts         integer     not null default 0,
                last_error       text,
                response_status  integer,
                created_at       timestamptz not null default now(),
                last_attempt_at  timestamptz,
                sent_at          timestamptz,
                unique (kind, subject_id)
            )
            """,
            "create index if not exists notifications_status_idx on actions.notifications (status)",
            # High-water marks of incremental quality checks (a failing check does not move its mark).
            """
            create table if not exists ops.quality_watermarks (
                check_name      text        primary key,
                checked_through timestamptz not null,
                updated_at      timestamptz not null default now()
            )
            """,
            # Grants and row-level security of one marts/actions relation for the BI roles (DESIGN §7). Called
            # by the dbt post-hook of every mart (dbt recreates tables) and by Python for every relation. A
            # relation is visible to the per-tenant roles only once RLS limits it to their tenant.
            """
            create or replace function ops.apply_bi_access(rel regclass) returns void
            language plpgsql as $fn$
            declare
                kind "char";
                has_tenant boolean;
                bi boolean := exists (select 1 from pg_roles where rolname = 'e2a_bi');
                tenants boolean := exists (select 1 from pg_roles where rolname = 'e2a_bi_tenants');
            begin
                select c.relkind into kind from pg_class c where c.oid = rel;
                select exists (
                    select 1 from pg_attribute
                    where attrelid = rel and attname = 'tenant_id' and attnum > 0 and not attisdropped
                ) into has_tenant;
                if kind in ('r', 'p') then
                    execute format('alter table %s enable row level security', rel);
                    if bi then
                        execute format('grant select on %s to e2a_bi', rel);
                        execute format('drop policy if exists e2a_bi_all_rows on %s', rel);
                        execute format('create policy e2a_bi_all_rows on %s for select to e2a_bi using (true)', rel);
                    end if;
                    if tenants then
                        execute format('drop policy if exists e2a_bi_own_tenant on %s', rel);
                        if has_tenant then
                            execute format(
                                'create policy e2a_bi_own_tenant on %s for select to e2a_bi_tenants '
                                'using (tenant_id = substr(current_user, 8))', rel);
                            execute format('grant select on %s to e2a_bi_tenants', rel);
                        else
                            execute format('revoke all on %s from e2a_bi_tenants', rel);
                        end if;
                    end if;
                elsif kind in ('v', 'm') then
                    if kind = 'v' then
                        -- the view reads its tables as the querying role, so their RLS applies
                        execute format('alter view %s set (security_invoker = true)', rel);
                    end if;
                    if bi then
                        execute format('grant select on %s to e2a_bi', rel);
                    end if;
                    if tenants then
                        if kind = 'v' and has_tenant then
                            execute format('grant select on %s to e2a_bi_tenants', rel);
                        else
                            execute format('revoke all on %s from e2a_bi_tenants', rel);
                        end if;
                    end if;
                end if;
            end
            $fn$
            """,
        ],
    ),
    (
        7,
        "billable activity refreshes (the daily billing partitions, by tenant-local day)",
        [
            # One row per (tenant, local day) of int_billable_activities_metered last rebuilt: when (database
            # clock) and the newest marts.fct_orders as_of it read. An invoice received, or an order rewritten,
            # after that makes the day stale (lib/billing_periods).
            """
            create table if not exists ops.billable_activity_refreshes (
                tenant_id     text        not null,
                activity_date date        not null,
                refreshed_at  timestamptz not null,
                orders_as_of  timestamptz,
                run_id        text,
                primary key (tenant_id, activity_date)
            )
            """,
        ],
    ),
    (
        8,
        "billable activity refreshes remember fct_orders' build stamp, not its as_of",
        [
            # marts.fct_orders rows carry built_at (the build that wrote them); as_of no longer tells builds apart
            # when the live clock is pinned (E2A_NOW). Marks taken before hold an as_of, which is never later than
            # the build that wrote it, so at worst a day is refreshed once more.
            """
            do $$
            begin
                if exists (
                    select 1 from information_schema.columns
                    where table_schema = 'ops' and table_name = 'billable_activity_refreshes'
                      and column_name = 'orders_as_of'
                ) then
                    alter table ops.billable_activity_refreshes rename column orders_as_of to orders_built_at;
                end if;
            end
            $$
            """,
        ],
    ),
    (
        9,
        "invoice adjustments keyed by the reconciliation period (tenant, month, charge, order), approval reasons, "
        "the run guard's notifications",
        [
            "alter table actions.invoice_adjustments add column if not exists period_start date",
            "alter table actions.invoice_adjustments add column if not exists approval_reason text",
            # The period of the rows written before: the expected line's month, else the invoice's first month.
            """
            update actions.invoice_adjustments
               set period_start = coalesce(
                       cast(evidence -> 'expected' ->> 'period_start' as date),
                       cast(date_trunc('month', cast(evidence -> 'invoice_period' ->> 0 as date)) as date))
             where period_start is null
            """,
            # Re-key them on the new grain (lib/invoicing.adjustment_id), so approvals and notifications follow.
            # Rows that now share a key (one discrepancy once reported per invoice of its month) keep their old
            # id and are superseded, but for the one that stays: the open, most recently updated one.
            """
            create temporary table adjustment_rekey on commit drop as
            select adjustment_id as old_id,
                   left(encode(sha256(convert_to(concat_ws(chr(31), tenant_id, to_char(period_start, 'YYYY-MM-DD'),
                   charge_code, coalesce(order_id, ''), discrepancy_type), 'UTF8')), 'hex'), 32) as new_id,
                   row_number() over (
                       partition by tenant_id, period_start, charge_code, coalesce(order_id, ''), discrepancy_type
                       order by (status = 'open') desc, updated_at desc, adjustment_id
                   ) as key_rank
            from actions.invoice_adjustments
            """,
            """
            update actions.invoice_adjustments as a
               set status = 'superseded', superseded_at = coalesce(a.superseded_at, now()), updated_at = now()
              from adjustment_rekey as k
             where a.adjustment_id = k.old_id and k.key_rank > 1 and a.status = 'open'
            """,
            """
            update actions.notifications as n
               set subject_id = k.new_id
              from adjustment_rekey as k
             where n.kind = 'invoice_adjustment_needs_review' and n.subject_id = k.old_id and k.key_rank = 1
               and k.new_id <> k.old_id
            """,
            """
            update actions.invoice_adjustments as a
               set adjustment_id = k.new_id
              from adjustment_rekey as k
             where a.adjustment_id = k.old_id and k.key_rank = 1 and k.new_id <> k.old_id
            """,
            "create index if not exists invoice_adjustments_period_idx on actions.invoice_adjustments "
            "(tenant_id, period_start)",
            # One notification per tenant and batch the run guard held back.
            """
            do $$
            declare c text;
            begin
                for c in
                    select conname from pg_constraint
                    where conrelid = 'actions.notifications'::regclass and contype = 'c'
                      and pg_get_constraintdef(oid) like '%kind%'
                loop
                    execute format('alter table actions.notifications drop constraint %I', c);
                end loop;
            end
            $$
            """,
            """
            alter table actions.notifications add constraint notifications_kind_check
                check (kind in ('sla_exception_critical', 'invoice_adjustment_needs_review',
                                'invoice_approval_guard'))
            """,
        ],
    ),
    (
        10,
        "rejected records keep their exact bytes and the CSV header they are read with",
        [
            # raw stays readable text (control characters and bytes that are not UTF-8 as \xNN escapes);
            # raw_bytes holds the record exactly when raw is not it (invalid UTF-8, NUL, control characters, a
            # record cut to its first 64 KiB). csv_header: the header line of the CSV file the record came from,
            # so a replay can read the row after the file is gone or its header was fixed.
            "alter table ops.rejected_records add column if not exists raw_bytes bytea",
            "alter table ops.rejected_records add column if not exists csv_header text",
        ],
    ),
    (
        11,
        "a narrative follows its exception: is_current, retired_at",
        [
            # History stays (one row per exception × input version); is_current marks the narrative of the
            # exception as it is now: the version matching its current facts, and none once the exception is
            # gone from marts.fct_sla_exceptions (retired_at says since when). "The latest row" was not that:
            # it kept narratives of vanished exceptions, and of facts that had changed back.
            "alter table actions.exception_narratives add column if not exists is_current boolean not null "
            "default false",
            "alter table actions.exception_narratives add column if not exists retired_at timestamptz",
            """
            update actions.exception_narratives n set is_current = true
            where not exists (
                select 1 from actions.exception_narratives later
                where later.exception_id = n.exception_id and later.created_at > n.created_at
            )
            and n.ctid = (
                select ctid from actions.exception_narratives same
                where same.exception_id = n.exception_id and same.created_at = n.created_at limit 1
            )
            """,
            "create unique index if not exists exception_narratives_current_idx "
            "on actions.exception_narratives (exception_id) where is_current",
            """
            create or replace view actions.exception_narratives_current as
            select * from actions.exception_narratives where is_current
            """,
        ],
    ),
    (
        12,
        "order-level promises on order events: promised_ship_by, promised_deliver_by",
        [
            # Text, as validated by lib/events: an instant in UTC (ISO-8601 with offset) or a date YYYY-MM-DD,
            # which means 24:00 at the end of that day in the warehouse's time zone (resolved in dbt, where the
            # order's warehouse is known). Rows loaded before have none: their stages keep the policy's due time.
            "alter table raw.order_events add column if not exists promised_ship_by text",
            "alter table raw.order_events add column if not exists promised_deliver_by text",
        ],
    ),
    (
        13,
        "warehouse calendar: is_working_weekday (the narratives' weekends come from the calendar)",
        [
            # Null on the rows written before; the calendar asset (code version bumped with it) rewrites them.
            "alter table reference.warehouse_calendar add column if not exists is_working_weekday boolean",
        ],
    ),
]


def migrate(engine: sa.Engine) -> list[int]:
    """Bring the database up to the latest migration; returns the versions applied now."""
    applied_now: list[int] = []
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        conn.execute(sa.text("create schema if not exists ops"))
        conn.execute(
            sa.text(
                """
                create table if not exists ops.schema_migrations (
                    version integer primary key,
                    description text not null,
                    applied_at timestamptz not null default now()
                )
                """
            )
        )
        done = {row[0] for row in conn.execute(sa.text("select version from ops.schema_migrations"))}
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(sa.text(statement))
            conn.execute(
                sa.text("insert into ops.schema_migrations (version, description) values (:v, :d)"),
                {"v": version, "d": description},
            )
            applied_now.append(version)
    return applied_now


def latest_version() -> int:
    return MIGRATIONS[-1][0]
