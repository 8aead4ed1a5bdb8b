{{ config(
    materialized='incremental',
    unique_key=['tenant_id', 'order_id', 'stage'],
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook="{{ reset_unless_live_incremental() }}",
    indexes=[
        {'columns': ['tenant_id', 'order_id', 'stage'], 'unique': True},
        {'columns': ['status']},
        {'columns': ['as_of']},
        {'columns': ['built_at']},
        {'columns': ['due_local_date']},
    ],
    tags=['sla'],
) }}
-- One row per (order, stage) whose clock has started, evaluated at as_of (DESIGN §5, §7).
-- Live incremental builds re-evaluate the stages recomputed upstream and every stage still running
-- (on_track / at_risk / overdue change with time alone); met, late and cancelled rows are final.
-- A rewritten row remembers the day and warehouse it was due in before (previous_*): a stage whose due date
-- moves leaves a compliance day that agg_sla_compliance_daily must count again.
{%- set as_of = as_of_timestamp() %}
{%- set live = is_live_incremental() %}

with
{%- if live %}
changed as (
    select tenant_id, order_id, stage
    from {{ ref('int_order_stages_scheduled') }}
    where built_at > {{ previous_build_literal('max(built_at)') }}
    union
    select tenant_id, order_id, stage
    from {{ this }}
    where status in ('on_track', 'at_risk', 'overdue')
),

stages as (
    select
        scheduled.*,
        previous.warehouse_id as previous_warehouse_id,
        previous.due_local_date as previous_due_local_date,
        previous.built_at as previous_built_at
    from changed
    cross join lateral (
        select *
        from {{ ref('int_order_stages_scheduled') }} as scheduled
        where scheduled.tenant_id = changed.tenant_id
          and scheduled.order_id = changed.order_id
          and scheduled.stage = changed.stage
        offset 0
    ) as scheduled
    -- the version this build replaces (one index probe)
    left join lateral (
        select warehouse_id, due_local_date, built_at
        from {{ this }} as evaluated
        where evaluated.tenant_id = changed.tenant_id
          and evaluated.order_id = changed.order_id
          and evaluated.stage = changed.stage
        offset 0
    ) as previous on true
),
{%- else %}
stages as (
    select
        scheduled.*,
        cast(null as text) as previous_warehouse_id,
        cast(null as date) as previous_due_local_date,
        cast(null as timestamptz) as previous_built_at
    from {{ ref('int_order_stages_scheduled') }} as scheduled
),
{%- endif %}

statused as (
    select
        stages.*,
        case
            when due_at is null then null
            when cancelled_at is not null and (ended_at is null or cancelled_at < ended_at) then 'cancelled'
            when ended_at is not null and ended_at <= due_at then 'met'
            when ended_at is not null then 'late'
            when {{ as_of }} > due_at then 'overdue'
            when {{ as_of }} >= {{ add_minutes('due_at', '-at_risk_minutes') }} then 'at_risk'
            else 'on_track'
        end as status
    from stages
),

measured as (
    select
        statused.*,
        case
            when status = 'late' then round(cast(extract(epoch from ended_at - due_at) / 60 as numeric), 2)
            when status = 'overdue' then round(cast(extract(epoch from {{ as_of }} - due_at) / 60 as numeric), 2)
        end as minutes_late
    from statused
)

select
    cast(tenant_id as text) as tenant_id,
    cast(order_id as text) as order_id,
    cast(stage as text) as stage,
    cast(warehouse_id as text) as warehouse_id,
    cast(carrier as text) as carrier,
    cast(service_level as text) as service_level,
    cast(policy_id as text) as policy_id,
    cast(policy_version as integer) as policy_version,
    cast(rule as text) as rule,
    cast(allowance_minutes as integer) as allowance_minutes,
    cast(transit_days as integer) as transit_days,
    cast(allowance_business_minutes as numeric(14, 4)) as allowance_business_minutes,
    cast(hold_minutes as numeric(14, 4)) as hold_minutes,
    cast(started_at as timestamptz) as started_at,
    cast(due_at as timestamptz) as due_at,
    cast(due_local_date as date) as due_local_date,
    cast(due_source as text) as due_source,
    cast({{ add_minutes('due_at', '-at_risk_minutes') }} as timestamptz) as at_risk_at,
    cast(ended_at as timestamptz) as ended_at,
    cast(cancelled_at as timestamptz) as cancelled_at,
    cast(status as text) as status,
    cast(minutes_late as numeric(14, 2)) as minutes_late,
    cast({{ sla_severity('minutes_late', 'major_after_minutes', 'critical_after_minutes') }} as text) as severity,
    cast(case
        when status is null
            or not (status in ('late', 'overdue', 'at_risk') or (status = 'cancelled' and cancelled_at > due_at))
            then null
        when stage = 'pick' then 'PICK_BACKLOG'
        when stage = 'pack' then 'PACK_DELAY'
        when stage = 'ship' and label_printed_at <= due_at then 'CARRIER_PICKUP_MISSED'
        when stage = 'ship' then 'MISSED_CUTOFF'
        when stage = 'deliver' and first_delivery_issue_at is not null then 'DELIVERY_EXCEPTION'
        when stage = 'deliver' then 'CARRIER_TRANSIT_DELAY'
        else 'UNKNOWN'
    end as text) as reason_code,
    cast(at_risk_minutes as integer) as at_risk_minutes,
    cast(major_after_minutes as integer) as major_after_minutes,
    cast(critical_after_minutes as integer) as critical_after_minutes,
    cast({{ as_of }} as timestamptz) as as_of,
    cast({{ as_of_is_pinned() }} as boolean) as as_of_is_pinned,
    {{ build_stamp() }} as built_at,
    cast(previous_warehouse_id as text) as previous_warehouse_id,
    cast(previous_due_local_date as date) as previous_due_local_date,
    cast(previous_built_at as timestamptz) as previous_built_at
from measured
