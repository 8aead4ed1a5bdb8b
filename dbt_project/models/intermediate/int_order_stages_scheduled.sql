{{ config(
    materialized='incremental',
    unique_key=['tenant_id', 'order_id', 'stage'],
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook="{{ reset_unless_live_incremental(sla_reference_fingerprint()) }}",
    indexes=[
        {'columns': ['tenant_id', 'order_id', 'stage'], 'unique': True},
        {'columns': ['as_of']},
        {'columns': ['built_at']},
        {'columns': ['has_open_hold']},
    ],
    tags=['sla'],
) }}
-- One row per (order, stage) whose clock has started (DESIGN §5): the policy that applies, and the due time
-- computed on the warehouse's business calendar (int_warehouse_days_accumulated), set-based:
--   duration      due = position(start) + allowance (+ business minutes on hold), mapped back to an instant
--   cutoff        due = close of the start day if it is a business day and start <= cutoff, else the close of
--                 the next business day (+ business minutes on hold)
--   transit_days  due = 24:00 local of the N-th carrier business day after the pickup date
-- Holds (hold_placed -> hold_released, or as_of while unreleased) pause the pick and ship clocks.
-- An order's own promise (promised_ship_by / promised_deliver_by on its latest order event carrying one,
-- int_orders_milestoned) replaces the policy's due time of the ship / deliver stage: an instant as it is, a
-- date-only promise is 24:00 at the end of that day in the warehouse's time zone (due_source = 'promise'). The
-- policy still gives the at-risk and severity thresholds.
-- Status (which depends on as_of alone) is decided downstream, in fct_sla_evaluations.
{%- set fingerprint = sla_reference_fingerprint() %}
{%- set live = is_live_incremental(fingerprint) %}
{%- set as_of = as_of_timestamp() %}

with
{%- if live %}
-- Live incremental build: orders recomputed upstream since the last build, and orders on an open hold
-- (their due time moves with as_of).
changed_orders as (
    select tenant_id, order_id
    from {{ ref('int_orders_milestoned') }}
    where built_at > {{ previous_build_literal('max(built_at)') }}
    union
    select tenant_id, order_id
    from {{ this }}
    where has_open_hold
),

orders as (
    select milestones.*
    from changed_orders
    cross join lateral (
        select *
        from {{ ref('int_orders_milestoned') }} as milestones
        where milestones.tenant_id = changed_orders.tenant_id and milestones.order_id = changed_orders.order_id
        offset 0
    ) as milestones
),
{%- else %}
orders as (
    select * from {{ ref('int_orders_milestoned') }}
),
{%- endif %}

warehouses as (
    select warehouse_id, time_zone from {{ ref('warehouses') }}
),

-- The clock of each stage: (stage, started_at, ended_at); only started clocks are evaluated.
ready as (
    select
        orders.*,
        case when released_at > paid_at then released_at else paid_at end as ready_at
    from orders
),

clocks as (
    {%- for stage, started, ended in [
        ('pick', 'ready_at', 'pick_completed_at'),
        ('pack', 'pick_completed_at', 'pack_completed_at'),
        ('ship', 'ready_at', 'handed_to_carrier_at'),
        ('deliver', 'handed_to_carrier_at', 'delivered_at'),
    ] %}
    select
        ready.tenant_id,
        ready.order_id,
        cast('{{ stage }}' as text) as stage,
        ready.warehouse_id,
        ready.carrier,
        ready.service_level,
        ready.{{ started }} as started_at,
        ready.{{ ended }} as ended_at,
        ready.cancelled_at,
        ready.label_printed_at,
        {%- if stage == 'ship' %}
        ready.promised_ship_by as promise
        {%- elif stage == 'deliver' %}
        ready.promised_deliver_by as promise
        {%- else %}
        cast(null as text) as promise
        {%- endif %}
    from ready
    where ready.{{ started }} is not null
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

-- The most specific policy effective at clock start: tenant, then warehouse, then carrier, then service level.
policy_matches as (
    select
        clocks.tenant_id,
        clocks.order_id,
        clocks.stage,
        policies.policy_id,
        policies.policy_version,
        policies.rule,
        policies.allowance_minutes,
        policies.at_risk_minutes,
        policies.major_after_minutes,
        policies.critical_after_minutes,
        row_number() over (
            partition by clocks.tenant_id, clocks.order_id, clocks.stage
            order by
                case when policies.tenant_id = '*' then 1 else 0 end,
                case when policies.warehouse_id = '*' then 1 else 0 end,
                case when policies.carrier = '*' then 1 else 0 end,
                case when policies.service_level = '*' then 1 else 0 end,
                policies.effective_from desc,
                policies.policy_version desc
        ) as specificity_rank
    from clocks
    inner join {{ ref('sla_policies') }} as policies
        on policies.stage = clocks.stage
        and policies.tenant_id in (clocks.tenant_id, '*')
        and policies.warehouse_id in (clocks.warehouse_id, '*')
        and policies.carrier in (clocks.carrier, '*')
        and policies.service_level in (clocks.service_level, '*')
        and policies.effective_from <= clocks.started_at
        and clocks.started_at < policies.effective_to
),

transit as (
    select
        clocks.tenant_id,
        clocks.order_id,
        coalesce(specific.transit_days, any_carrier.transit_days) as transit_days
    from clocks
    left join {{ ref('carrier_services') }} as specific
        on specific.carrier = clocks.carrier and specific.service_level = clocks.service_level
    left join {{ ref('carrier_services') }} as any_carrier
        on any_carrier.carrier = '*' and any_carrier.service_level = clocks.service_level
    where clocks.stage = 'deliver'
),

located as (
    select
        clocks.*,
        warehouses.time_zone,
        policy.policy_id,
        policy.policy_version,
        policy.rule,
        policy.allowance_minutes,
        policy.at_risk_minutes,
        policy.major_after_minutes,
        policy.critical_after_minutes,
        transit.transit_days,
        start_calendar_day.carrier_day_number as start_carrier_day_number,
        {{ business_minute_position('clocks.started_at', 'start_calendar_day') }} as start_position,
        case
            when start_calendar_day.is_business_day and clocks.started_at <= start_calendar_day.cutoff_at
                then start_calendar_day.cum_minutes_after
            else start_calendar_day.next_business_cum_minutes_after
        end as cutoff_due_position
    from clocks
    inner join warehouses
        on warehouses.warehouse_id = clocks.warehouse_id
    left join policy_matches as policy
        on policy.tenant_id = clocks.tenant_id
        and policy.order_id = clocks.order_id
        and policy.stage = clocks.stage
        and policy.specificity_rank = 1
    left join transit
        on transit.tenant_id = clocks.tenant_id
        and transit.order_id = clocks.order_id
        and clocks.stage = 'deliver'
    left join {{ ref('int_warehouse_days_accumulated') }} as start_calendar_day
        on start_calendar_day.warehouse_id = clocks.warehouse_id
        and start_calendar_day.local_date = {{ local_date('clocks.started_at', 'warehouses.time_zone') }}
),

allowances as (
    select
        located.*,
        case
            when rule = 'duration' then cast(allowance_minutes as numeric)
            when rule = 'cutoff' then cutoff_due_position - start_position
        end as allowance_business_minutes
    from located
),

-- Holds: each hold_placed ends at the first hold_released at or after it, or is still open at as_of.
-- Placements before one release share it and merge into one span.
order_events as (
    select events.tenant_id, events.order_id, events.event_type, events.occurred_at
    from orders
    cross join lateral (
        -- one index probe per order (OFFSET 0: never a scan of the whole event history)
        select tenant_id, order_id, event_type, occurred_at
        from {{ ref('stg_landing__order_events') }} as order_events
        where order_events.tenant_id = orders.tenant_id
          and order_events.order_id = orders.order_id
          and order_events.event_type in ('hold_placed', 'hold_released', 'delivery_exception', 'delivery_attempted')
          and order_events.occurred_at <= {{ as_of }}
        offset 0
    ) as events
),

hold_spans as (
    select
        placed.tenant_id,
        placed.order_id,
        placed.occurred_at as placed_at,
        min(released.occurred_at) as released_at
    from order_events as placed
    left join order_events as released
        on released.tenant_id = placed.tenant_id
        and released.order_id = placed.order_id
        and released.event_type = 'hold_released'
        and released.occurred_at >= placed.occurred_at
    where placed.event_type = 'hold_placed'
    group by placed.tenant_id, placed.order_id, placed.occurred_at
),

holds as (
    select
        tenant_id,
        order_id,
        min(placed_at) as placed_at,
        coalesce(released_at, {{ as_of }}) as hold_end_at,
        released_at is null as is_open
    from hold_spans
    group by tenant_id, order_id, released_at
),

order_flags as (
    select
        orders.tenant_id,
        orders.order_id,
        coalesce(bool_or(holds.is_open), false) as has_open_hold,
        min(case when order_events.event_type in ('delivery_exception', 'delivery_attempted')
            then order_events.occurred_at end) as first_delivery_issue_at
    from orders
    left join holds
        on holds.tenant_id = orders.tenant_id and holds.order_id = orders.order_id
    left join order_events
        on order_events.tenant_id = orders.tenant_id
        and order_events.order_id = orders.order_id
        and order_events.event_type in ('delivery_exception', 'delivery_attempted')
    group by orders.tenant_id, orders.order_id
),

-- The part of each hold that falls inside a pick/ship clock (start .. end, or as_of while running),
-- measured in business minutes.
stage_holds as (
    select
        allowances.tenant_id,
        allowances.order_id,
        allowances.stage,
        allowances.start_position,
        allowances.allowance_business_minutes,
        {{ business_minute_position('greatest(holds.placed_at, allowances.started_at)', 'from_calendar_day') }}
            as from_position,
        {{ business_minute_position('least(holds.hold_end_at, coalesce(allowances.ended_at, ' ~ as_of ~ '))', 'to_calendar_day') }}
            as to_position,
        greatest(holds.placed_at, allowances.started_at) as hold_from
    from allowances
    inner join holds
        on holds.tenant_id = allowances.tenant_id
        and holds.order_id = allowances.order_id
        and holds.placed_at < coalesce(allowances.ended_at, {{ as_of }})
        and holds.hold_end_at > allowances.started_at
    left join {{ ref('int_warehouse_days_accumulated') }} as from_calendar_day
        on from_calendar_day.warehouse_id = allowances.warehouse_id
        and from_calendar_day.local_date = {{ local_date('greatest(holds.placed_at, allowances.started_at)', 'allowances.time_zone') }}
    left join {{ ref('int_warehouse_days_accumulated') }} as to_calendar_day
        on to_calendar_day.warehouse_id = allowances.warehouse_id
        and to_calendar_day.local_date = {{ local_date('least(holds.hold_end_at, coalesce(allowances.ended_at, ' ~ as_of ~ '))', 'allowances.time_zone') }}
    where allowances.stage in ('pick', 'ship')
),

-- A hold counts when it begins before the (paused) allowance is used up: the work done before it is the
-- business time since clock start minus the earlier holds.
stage_hold_work as (
    select
        stage_holds.*,
        to_position - from_position as held_minutes,
        from_position - start_position - coalesce(sum(to_position - from_position) over (
            partition by tenant_id, order_id, stage
            order by hold_from
            rows between unbounded preceding and 1 preceding
        ), 0) as work_before_hold
    from stage_holds
),

hold_totals as (
    select
        tenant_id,
        order_id,
        stage,
        sum(case when work_before_hold < allowance_business_minutes then held_minutes else 0 end) as hold_minutes
    from stage_hold_work
    group by tenant_id, order_id, stage
),

due_positions as (
    select
        allowances.*,
        coalesce(hold_totals.hold_minutes, 0) as hold_minutes,
        allowances.start_position + allowances.allowance_business_minutes
            + coalesce(hold_totals.hold_minutes, 0) as due_position
    from allowances
    left join hold_totals
        on hold_totals.tenant_id = allowances.tenant_id
        and hold_totals.order_id = allowances.order_id
        and hold_totals.stage = allowances.stage
)

select
    due_positions.tenant_id,
    due_positions.order_id,
    due_positions.stage,
    due_positions.warehouse_id,
    due_positions.time_zone,
    due_positions.carrier,
    due_positions.service_level,
    due_positions.policy_id,
    due_positions.policy_version,
    due_positions.rule,
    due_positions.allowance_minutes,
    due_positions.transit_days,
    due_positions.at_risk_minutes,
    due_positions.major_after_minutes,
    due_positions.critical_after_minutes,
    cast(due_positions.allowance_business_minutes as numeric(14, 4)) as allowance_business_minutes,
    cast(due_positions.hold_minutes as numeric(14, 4)) as hold_minutes,
    due_positions.started_at,
    due_positions.ended_at,
    due_positions.cancelled_at,
    due_positions.label_printed_at,
    order_flags.first_delivery_issue_at,
    order_flags.has_open_hold,
    case
        when due_positions.promise is not null then {{ promise_instant('due_positions.promise', 'due_positions.time_zone') }}
        when due_positions.rule = 'transit_days' then transit_calendar_day.day_end_at
        else due_calendar_day.due_at
    end as due_at,
    case
        when due_positions.promise is not null then {{ local_date(promise_instant('due_positions.promise', 'due_positions.time_zone') ~ " - interval '1 microsecond'", 'due_positions.time_zone') }}
        when due_positions.rule = 'transit_days' then transit_calendar_day.local_date
        else due_calendar_day.local_date
    end as due_local_date,
    cast(case when due_positions.promise is not null then 'promise' else 'policy' end as text) as due_source,
    {{ as_of }} as as_of,
    {{ as_of_is_pinned() }} as as_of_is_pinned,
    {{ build_stamp() }} as built_at,
    {{ fingerprint }} as reference_fingerprint
from due_positions
inner join order_flags
    on order_flags.tenant_id = due_positions.tenant_id and order_flags.order_id = due_positions.order_id
-- position -> instant: the first business day whose running total reaches the due position (one index probe)
left join lateral (
    select
        {{ add_minutes('calendar_day.open_at', 'due_positions.due_position - calendar_day.cum_minutes_before') }} as due_at,
        calendar_day.local_date
    from {{ ref('int_warehouse_days_accumulated') }} as calendar_day
    where calendar_day.warehouse_id = due_positions.warehouse_id
      and calendar_day.cum_minutes_after >= due_positions.due_position
      and calendar_day.is_business_day
    order by calendar_day.cum_minutes_after, calendar_day.local_date
    limit 1
) as due_calendar_day on due_positions.rule in ('duration', 'cutoff')
left join {{ ref('int_warehouse_days_accumulated') }} as transit_calendar_day
    on due_positions.rule = 'transit_days'
    and transit_calendar_day.warehouse_id = due_positions.warehouse_id
    and transit_calendar_day.is_carrier_business_day
    and transit_calendar_day.carrier_day_number = due_positions.start_carrier_day_number + due_positions.transit_days
