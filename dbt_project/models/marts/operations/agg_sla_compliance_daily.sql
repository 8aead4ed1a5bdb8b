{{ config(
    materialized='incremental',
    unique_key=['tenant_id', 'warehouse_id', 'stage', 'due_local_date'],
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook="{{ sla_compliance_prepare() }}",
    indexes=[{'columns': ['tenant_id', 'warehouse_id', 'stage', 'due_local_date'], 'unique': True}],
    tags=['sla'],
) }}
-- SLA compliance per tenant, warehouse, stage and local due date (warehouse time zone). A stage counts once
-- it is due (due_at <= as_of) and not cancelled: met, or late/overdue. Live incremental builds recount the days
-- of re-evaluated stages, the days those stages moved away from, and the days around as_of (a day's stages
-- become due as time passes): macros sla_compliance_affected_days, sla_compliance_prepare. The result depends
-- only on fct_sla_evaluations and as_of, never on how many builds it took to get there.
{%- set as_of = as_of_timestamp() %}

with
{%- if sla_compliance_is_live() %}
affected_days as (
    {{ sla_compliance_affected_days() }}
),

evaluations as (
    select evaluations.*
    from affected_days
    cross join lateral (
        select *
        from {{ ref('fct_sla_evaluations') }} as evaluations
        where evaluations.tenant_id = affected_days.tenant_id
          and evaluations.warehouse_id = affected_days.warehouse_id
          and evaluations.stage = affected_days.stage
          and evaluations.due_local_date = affected_days.due_local_date
        offset 0
    ) as evaluations
),
{%- else %}
evaluations as (
    select * from {{ ref('fct_sla_evaluations') }}
),
{%- endif %}

counted as (
    select
        tenant_id,
        warehouse_id,
        stage,
        due_local_date,
        {{ sla_compliance_counts() }}
    from (
        select
            evaluations.*,
            {{ sla_is_due(as_of) }} as is_due
        from evaluations
        where due_local_date is not null
    ) as flagged
    group by tenant_id, warehouse_id, stage, due_local_date
)

select
    cast(tenant_id as text) as tenant_id,
    cast(warehouse_id as text) as warehouse_id,
    cast(stage as text) as stage,
    cast(due_local_date as date) as due_local_date,
    cast(due_count as integer) as due_count,
    cast(met_count as integer) as met_count,
    cast(late_count as integer) as late_count,
    cast(overdue_count as integer) as overdue_count,
    cast(cancelled_count as integer) as cancelled_count,
    {{ sla_compliance_pct() }} as compliance_pct,
    cast({{ as_of }} as timestamptz) as as_of,
    cast({{ as_of_is_pinned() }} as boolean) as as_of_is_pinned,
    {{ build_stamp() }} as built_at
from counted
