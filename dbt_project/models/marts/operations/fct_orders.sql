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
        {'columns': ['handed_to_carrier_at']},
    ],
    tags=['sla'],
) }}
-- One row per order (tenant_id, order_id) with its milestones as of `as_of` (DESIGN §7).
select
    cast(tenant_id as text) as tenant_id,
    cast(order_id as text) as order_id,
    cast(warehouse_id as text) as warehouse_id,
    cast(carrier as text) as carrier,
    cast(service_level as text) as service_level,
    cast(created_at as timestamptz) as created_at,
    cast(paid_at as timestamptz) as paid_at,
    cast(released_at as timestamptz) as released_at,
    cast(pick_completed_at as timestamptz) as pick_completed_at,
    cast(pack_completed_at as timestamptz) as pack_completed_at,
    cast(label_printed_at as timestamptz) as label_printed_at,
    cast(handed_to_carrier_at as timestamptz) as handed_to_carrier_at,
    cast(delivered_at as timestamptz) as delivered_at,
    cast(cancelled_at as timestamptz) as cancelled_at,
    cast(units as integer) as units,
    cast(cartons as integer) as cartons,
    cast(postage as numeric(12, 2)) as postage,
    cast(tracking_number as text) as tracking_number,
    cancelled_at is not null as is_cancelled,
    cast(event_count as bigint) as event_count,
    cast(last_event_at as timestamptz) as last_event_at,
    cast(as_of as timestamptz) as as_of,
    cast(as_of_is_pinned as boolean) as as_of_is_pinned,
    {{ build_stamp() }} as built_at
from {{ ref('int_orders_milestoned') }}
{%- if is_live_incremental() %}
-- live incremental build: the orders int_orders_milestoned recomputed since this table's last build
where built_at > {{ previous_build_literal('max(built_at)') }}
{%- endif %}
