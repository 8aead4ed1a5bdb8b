{{ config(
    materialized='incremental',
    unique_key=['tenant_id', 'order_id'],
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    pre_hook="{{ reset_unless_live_incremental() }}",
    indexes=[
        {'columns': ['tenant_id', 'order_id'], 'unique': True},
        {'columns': ['as_of']},
        {'columns': ['built_at']},
        {'columns': ['ingested_watermark']},
    ],
    tags=['sla'],
) }}
-- One row per (tenant_id, order_id): the earliest occurrence of every milestone (DESIGN §4.1)
-- among the events that occurred at or before as_of, plus the order's attributes chosen
-- deterministically from those events. Results depend only on the set of events: every
-- choice is ordered by (priority, occurred_at, source, event_id), which is unique per tenant,
-- and ingested_at is never used.

{%- set milestones = {
    'created_at': ['order_created'],
    'paid_at': ['order_paid'],
    'released_at': ['order_released'],
    'pick_started_at': ['pick_started'],
    'pick_completed_at': ['pick_completed'],
    'pack_completed_at': ['pack_completed'],
    'label_printed_at': ['label_printed'],
    'handed_to_carrier_at': ['carrier_pickup', 'picked_up'],
    'out_for_delivery_at': ['out_for_delivery'],
    'delivered_at': ['delivered'],
    'cancelled_at': ['order_cancelled'],
    'first_hold_placed_at': ['hold_placed'],
    'return_received_at': ['return_received'],
} %}
{%- set order_event_types = "'order_created', 'order_paid', 'order_released', 'order_cancelled', 'hold_placed', 'hold_released'" %}
{%- set warehouse_event_types = "'pick_started', 'pick_completed', 'pack_completed', 'label_printed', 'carrier_pickup', 'return_received'" %}
{%- set carrier_event_types = "'carrier_pickup', 'picked_up', 'in_transit', 'out_for_delivery', 'delivery_attempted', 'delivered', 'delivery_exception', 'returned_to_sender'" %}
{%- set tie_break = 'occurred_at, source, event_id' %}
{%- set promise_event_types = "'order_created', 'order_paid', 'order_released'" %}

{%- set event_columns = 'tenant_id, source, event_id, event_type, order_id, occurred_at, warehouse_id, carrier, service_level, tracking_number, units, lines, cartons, postage, promised_ship_by, promised_deliver_by' %}
{%- set live = is_live_incremental() %}
{#- Shopify events come per order version, valid over [valid_from, valid_to): those of the version current at as_of. -#}
{%- set shopify_current = "valid_from <= " ~ as_of_timestamp() ~ " and (valid_to is null or valid_to > " ~ as_of_timestamp() ~ ")" %}

with
{%- if live %}
-- Live incremental build: only orders with events ingested since the last build's watermark (from any
-- source), or whose events became visible because as_of moved past their occurred_at, are recomputed. The
-- previous build's bounds are inlined as literals so the planner uses the indexes.
changed_orders as (
    select tenant_id, order_id
    from {{ ref('stg_landing__order_events') }}
    where ingested_at > {{ previous_build_literal('max(ingested_watermark)') }}
       or (occurred_at > {{ previous_build_literal('max(as_of)') }} and occurred_at <= {{ as_of_timestamp() }})

    union

    select tenant_id, order_id
    from {{ ref('stg_shopify__orders') }}
    where ingested_at > {{ previous_build_literal('max(ingested_watermark)') }}
       or (updated_at > {{ previous_build_literal('max(as_of)') }} and updated_at <= {{ as_of_timestamp() }})

    union

    select tenant_id, order_id
    from {{ ref('int_shopify_order_events_versioned') }}
    where occurred_at > {{ previous_build_literal('max(as_of)') }} and occurred_at <= {{ as_of_timestamp() }}
      and {{ shopify_current }}
),
{%- endif %}

-- Every source's events in the canonical shape: the landing zone and Shopify orders (read by the full build
-- below; the live build reads the changed orders' events by index).
source_events as (  -- noqa: ST03
    select {{ event_columns }}
    from {{ ref('stg_landing__order_events') }}

    union all

    select {{ event_columns }}
    from {{ ref('int_shopify_order_events_versioned') }}
    where {{ shopify_current }}
),

events as (
    {%- if live %}
    -- one index probe per changed order (OFFSET 0 keeps the planner from turning this into a scan of
    -- the whole history)
    select events.*
    from changed_orders
    cross join lateral (
        select {{ event_columns }}
        from {{ ref('stg_landing__order_events') }} as order_events
        where order_events.tenant_id = changed_orders.tenant_id
          and order_events.order_id = changed_orders.order_id
          and order_events.occurred_at <= {{ as_of_timestamp() }}
        offset 0
    ) as events

    union all

    select {{ event_columns }}
    from {{ ref('int_shopify_order_events_versioned') }}
    where (tenant_id, order_id) in (select c.tenant_id, c.order_id from changed_orders as c)
      and occurred_at <= {{ as_of_timestamp() }}
      and {{ shopify_current }}
    {%- else %}
    select {{ event_columns }}
    from source_events
    where occurred_at <= {{ as_of_timestamp() }}
    {%- endif %}
),

tenants as (
    select tenant_id, default_warehouse_id
    from {{ ref('tenants') }}
),

-- Shipping attributes (carrier, service level, tracking number) are taken from the most
-- authoritative event carrying them: the label, then carrier-side events, then other
-- warehouse events, then order events; the earliest within a rank.
ranked as (
    select
        events.*,
        case
            when event_type = 'label_printed' then 1
            when event_type in ({{ carrier_event_types }}) then 2
            when event_type in ({{ warehouse_event_types }}) then 3
            else 4
        end as shipping_priority
    from events
),

chosen as (
    select
        tenant_id,
        order_id,
        event_type,
        occurred_at,
        units,

        -- warehouse: earliest warehouse event naming one, else earliest event naming one
        first_value(warehouse_id) over (
            partition by tenant_id, order_id
            order by
                case when warehouse_id is null then 1 else 0 end,
                case when event_type in ({{ warehouse_event_types }}) then 0 else 1 end,
                {{ tie_break }}
        ) as event_warehouse_id,

        {%- for attribute in ['carrier', 'service_level', 'tracking_number'] %}

        first_value({{ attribute }}) over (
            partition by tenant_id, order_id
            order by
                case when {{ attribute }} is null then 1 else 0 end,
                shipping_priority,
                {{ tie_break }}
        ) as chosen_{{ attribute }},
        {%- endfor %}

        -- quantities: the earliest event of the type that carries the value
        {%- for column, attribute, event_type in [
            ('picked_units', 'units', 'pick_completed'),
            ('packed_cartons', 'cartons', 'pack_completed'),
            ('label_postage', 'postage', 'label_printed'),
        ] %}

        first_value(case when event_type = '{{ event_type }}' then {{ attribute }} end) over (
            partition by tenant_id, order_id
            order by
                case when event_type = '{{ event_type }}' and {{ attribute }} is not null then 0 else 1 end,
                {{ tie_break }}
        ) as {{ column }},
        {%- endfor %}

        -- promises: the order's own, from the latest-occurring order event carrying one (a re-promise wins)
        {%- for promise in ['promised_ship_by', 'promised_deliver_by'] %}

        first_value(case when event_type in ({{ promise_event_types }}) then {{ promise }} end) over (
            partition by tenant_id, order_id
            order by
                case when event_type in ({{ promise_event_types }}) and {{ promise }} is not null then 0 else 1 end,
                occurred_at desc, source desc, event_id desc
        ) as chosen_{{ promise }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from ranked
),

orders as (
    select
        tenant_id,
        order_id,
        {%- for column, event_types in milestones.items() %}
        min(case when event_type in ('{{ event_types | join("', '") }}') then occurred_at end) as {{ column }},
        {%- endfor %}
        max(event_warehouse_id) as event_warehouse_id,
        max(chosen_carrier) as carrier,
        max(chosen_service_level) as service_level,
        max(chosen_tracking_number) as tracking_number,
        max(case when event_type in ({{ order_event_types }}) then units end) as ordered_units,
        max(picked_units) as picked_units,
        max(packed_cartons) as cartons,
        max(label_postage) as postage,
        max(chosen_promised_ship_by) as promised_ship_by,
        max(chosen_promised_deliver_by) as promised_deliver_by,
        count(*) as event_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from chosen
    group by tenant_id, order_id
)

select
    orders.tenant_id,
    orders.order_id,
    cast(coalesce(orders.event_warehouse_id, tenants.default_warehouse_id) as text) as warehouse_id,
    orders.event_warehouse_id is null as is_default_warehouse,
    orders.carrier,
    cast(coalesce(orders.service_level, 'ground') as text) as service_level,
    orders.tracking_number,
    {%- for column in milestones %}
    orders.{{ column }},
    {%- endfor %}
    orders.ordered_units,
    orders.picked_units,
    cast(coalesce(orders.picked_units, orders.ordered_units) as integer) as units,
    orders.cartons,
    orders.postage,
    orders.promised_ship_by,
    orders.promised_deliver_by,
    orders.event_count,
    orders.first_event_at,
    orders.last_event_at,
    {{ as_of_timestamp() }} as as_of,
    {{ as_of_is_pinned() }} as as_of_is_pinned,
    {{ build_stamp() }} as built_at,
    -- Every event ingested before this instant is reflected in the table (the next live build picks up
    -- events ingested from here on). Transactions still writing when the build started may commit rows
    -- stamped earlier, so the watermark stops at the oldest of them.
    (select least(
        (select greatest(
            (select max(ingested_at) from {{ source('landing', 'order_events') }}),
            (select max(ingested_at) from {{ ref('stg_shopify__orders') }})
        )),
        (select min(xact_start) from pg_stat_activity
         where backend_xid is not null and pid <> pg_backend_pid())
    )) as ingested_watermark
from orders
left join tenants
    on orders.tenant_id = tenants.tenant_id
