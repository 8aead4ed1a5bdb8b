{{ config(
    materialized='incremental',
    unique_key=['tenant_id', 'order_id', 'charge_code'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ delete_billing_window() }}",
    indexes=[
        {'columns': ['tenant_id', 'order_id', 'charge_code'], 'unique': True},
        {'columns': ['tenant_id', 'activity_date']},
    ],
    tags=['invoice', 'billable_daily'],
) }}
-- One row per billable activity: (tenant, order, charge code) with its quantity, the instant that puts it in
-- a billing period, and the event it was measured from (DESIGN §6):
--   ORDER_FEE, PICK_UNIT, PACK_CARTON, SHIPPING  the order charges int_billable_order_charges implies (the
--                rule is written there once), measured from the earliest carrier_pickup / picked_up, the
--                pick_completed (else the order's line items), the pack_completed and the label_printed
--   RETURN_FEE   1 per returned order, at its earliest return_received
-- Order charges fall in the month of handed_to_carrier_at, returns in the month of the return, both in the
-- tenant's time zone. Cancelled orders are not billed. Only events at or before as_of count.
--
-- Daily partitions (Dagster `intermediate/int_billable_activities_metered`, macros/billing_window.sql): a
-- build with vars billing_from / billing_to / billing_tenants recomputes those tenant-local days only; the
-- inputs are narrowed to orders handed over, or returns received, near the window (by index), then to the
-- exact local dates. Without vars every day is rebuilt.
{%- set as_of = as_of_timestamp() %}
{%- set order_event_types = "'order_created', 'order_paid', 'order_released', 'order_cancelled', 'hold_placed', 'hold_released'" %}

with returns_near_window as (
    select distinct tenant_id, order_id
    from {{ ref('stg_landing__order_events') }}
    where event_type = 'return_received'
      and occurred_at <= {{ as_of }}
      and {{ near_billing_window('occurred_at') }}
      and {{ in_billing_tenants('tenant_id') }}
),

orders as (
    select tenant_id, order_id, is_cancelled
    from {{ ref('fct_orders') }}
    where {{ in_billing_tenants('tenant_id') }}
      and (
          {{ near_billing_window('handed_to_carrier_at') }}
          or (tenant_id, order_id) in (select r.tenant_id, r.order_id from returns_near_window as r)
      )
),

events as (
    select e.tenant_id, e.order_id, e.source, e.event_id, e.event_type, e.occurred_at, e.units, e.cartons, e.postage
    from {{ ref('stg_landing__order_events') }} as e
    inner join orders on e.tenant_id = orders.tenant_id and e.order_id = orders.order_id
    where e.occurred_at <= {{ as_of }}
      and e.event_type in (
          'carrier_pickup', 'picked_up', 'pick_completed', 'pack_completed', 'label_printed',
          'return_received', {{ order_event_types }}
      )
),

-- The event each charge is measured from, chosen as int_orders_milestoned chooses the value.
candidate_events as (
    select events.*, 'ORDER_FEE' as charge_code, 1 as priority, 0 as value_rank
    from events where event_type in ('carrier_pickup', 'picked_up')
    union all
    select events.*, 'PICK_UNIT', case when event_type = 'pick_completed' then 1 else 2 end,
           case when event_type = 'pick_completed' then 0 else -units end
    from events
    where units is not null and (event_type = 'pick_completed' or event_type in ({{ order_event_types }}))
    union all
    select events.*, 'PACK_CARTON', 1, 0 from events where event_type = 'pack_completed' and cartons is not null
    union all
    select events.*, 'SHIPPING', 1, 0 from events where event_type = 'label_printed' and postage is not null
    union all
    select events.*, 'RETURN_FEE', 1, 0 from events where event_type = 'return_received'
),

source_events as (
    select
        tenant_id, order_id, charge_code, source, event_id, event_type, occurred_at,
        row_number() over (
            partition by tenant_id, order_id, charge_code
            order by priority, value_rank, occurred_at, source, event_id
        ) as event_rank
    from candidate_events
),

-- The order charges of the orders handed over near the window (by index through the view), exact days below.
order_charges as (
    select tenant_id, order_id, charge_code, quantity, activity_at, activity_date
    from {{ ref('int_billable_order_charges') }}
    where {{ in_billing_tenants('tenant_id') }}
      and {{ near_billing_window('activity_at') }}
),

tenants as (
    select tenant_id, time_zone, currency from {{ ref('tenants') }}
),

returns as (
    select
        orders.tenant_id,
        orders.order_id,
        'RETURN_FEE' as charge_code,
        cast(1 as numeric) as quantity,
        source_events.occurred_at as activity_at,
        {{ local_date('source_events.occurred_at', 'tenants.time_zone') }} as activity_date
    from orders
    inner join source_events
        on orders.tenant_id = source_events.tenant_id
        and orders.order_id = source_events.order_id
        and source_events.charge_code = 'RETURN_FEE'
        and source_events.event_rank = 1
    inner join tenants on orders.tenant_id = tenants.tenant_id
    where not orders.is_cancelled
),

activities as (
    select * from order_charges
    union all
    select * from returns
),

dated as (
    select activities.*, tenants.currency
    from activities
    inner join tenants on activities.tenant_id = tenants.tenant_id
),

-- Each activity with the event it was measured from, for the orders near the window. Materialized: the exact-day
-- test below must not be pushed under the join (its selectivity on a computed local date is guessed tiny, and
-- the planner would then scan source_events once per activity).
measured as materialized (
    select
        dated.tenant_id,
        dated.order_id,
        dated.charge_code,
        cast(dated.quantity as numeric(14, 4)) as quantity,
        dated.activity_at,
        dated.activity_date,
        cast({{ dbt.date_trunc('month', 'dated.activity_date') }} as date) as period_start,
        {{ month_end(dbt.date_trunc('month', 'dated.activity_date')) }} as period_end,
        dated.currency,
        case when source_events.event_id is not null then
            jsonb_build_array(jsonb_build_object(
                'source', source_events.source,
                'event_id', source_events.event_id,
                'event_type', source_events.event_type,
                'occurred_at', source_events.occurred_at
            ))
            else cast('[]' as jsonb)
        end as source_event_ids
    from dated
    left join source_events
        on dated.tenant_id = source_events.tenant_id
        and dated.order_id = source_events.order_id
        and dated.charge_code = source_events.charge_code
        and source_events.event_rank = 1
)

select * from measured
where {{ in_billing_window('activity_date', 'tenant_id') }}
