-- Shopify order versions (updated_at <= as_of) as canonical milestone events, source `shopify`.
-- Order facts come from the latest version known at as_of; carrier statuses from every version, so a
-- fulfillment's progress (in transit, then delivered) is kept even though each version shows one status.

{%- set shipment_events = {
    'in_transit': 'in_transit',
    'out_for_delivery': 'out_for_delivery',
    'attempted_delivery': 'delivery_attempted',
    'delivered': 'delivered',
    'failure': 'delivery_exception',
} %}
{%- set paid_statuses = "'paid', 'partially_paid', 'partially_refunded', 'refunded'" %}
{%- set void_fulfillments = "'failure', 'cancelled', 'error'" %}

with versions as (
    select
        *,
        -- Shopify order ids are global: the latest version wins, whichever shop of the tenant it came from
        row_number() over (partition by tenant_id, order_id order by updated_at desc, shop asc) as rank_at_as_of
    from {{ ref('stg_shopify__orders') }}
    where updated_at <= {{ as_of_timestamp() }}
),

locations as (
    select tenant_id, location_id, warehouse_id from {{ ref('shopify_locations') }}
),

fulfillments as (
    select
        versions.tenant_id,
        versions.order_id,
        versions.rank_at_as_of,
        coalesce(f.value ->> 'id', 'n' || cast(f.ordinality as text)) as fulfillment_id,
        lower(f.value ->> 'status') as status,
        lower(f.value ->> 'shipment_status') as shipment_status,
        cast(f.value ->> 'created_at' as timestamptz) as created_at,
        cast(f.value ->> 'updated_at' as timestamptz) as updated_at,
        case
            when lower(trim(f.value ->> 'tracking_company')) in ('', 'null', 'null-company', 'none', 'other') then null
            else lower(trim(f.value ->> 'tracking_company'))
        end as carrier,
        coalesce(nullif(trim(f.value ->> 'tracking_number'), ''), nullif(trim(f.value -> 'tracking_numbers' ->> 0), ''))
            as tracking_number,
        nullif(f.value ->> 'location_id', '') as location_id,
        f.ordinality
    from versions
    cross join lateral jsonb_array_elements(versions.fulfillments) with ordinality as f (value, ordinality)
),

-- fulfillments that count: in the latest version, not failed/cancelled, with a tracking number
shipped as (
    select fulfillments.*, locations.warehouse_id
    from fulfillments
    left join locations
        on fulfillments.tenant_id = locations.tenant_id and fulfillments.location_id = locations.location_id
    where fulfillments.rank_at_as_of = 1
      and coalesce(fulfillments.status, '') not in ({{ void_fulfillments }})
      and fulfillments.tracking_number is not null
      and fulfillments.created_at is not null
),

latest as (
    select
        versions.*,
        coalesce(
            order_location.warehouse_id,
            (select s.warehouse_id from shipped as s
             where s.tenant_id = versions.tenant_id and s.order_id = versions.order_id and s.warehouse_id is not null
             order by s.ordinality limit 1)
        ) as warehouse_id
    from versions
    left join locations as order_location
        on versions.tenant_id = order_location.tenant_id and versions.location_id = order_location.location_id
    where versions.rank_at_as_of = 1
),

order_facts as (
    select tenant_id, order_id, 'order_created' as event_type, created_at as occurred_at, warehouse_id,
           units, lines, service_level
    from latest
    union all
    select tenant_id, order_id, 'order_paid', processed_at, null, null, null, null
    from latest
    where financial_status in ({{ paid_statuses }}) and processed_at is not null
    union all
    select tenant_id, order_id, 'order_cancelled', cancelled_at, null, null, null, null
    from latest
    where cancelled_at is not null
),

shipment_statuses as (
    select
        f.tenant_id,
        f.order_id,
        f.fulfillment_id,
        case f.shipment_status
            {%- for status, event_type in shipment_events.items() %}
            when '{{ status }}' then '{{ event_type }}'
            {%- endfor %}
        end as event_type,
        min(f.updated_at) as occurred_at
    from fulfillments as f
    inner join shipped as s
        on f.tenant_id = s.tenant_id and f.order_id = s.order_id and f.fulfillment_id = s.fulfillment_id
    where f.shipment_status in ('{{ shipment_events.keys() | join("', '") }}')
      and f.updated_at is not null
    -- the fourth is the event type the status maps to
    group by 1, 2, 3, 4  -- noqa: AM06
),

events as (
    select
        tenant_id,
        'shopify:' || order_id || ':' || event_type as event_id,
        event_type,
        order_id,
        occurred_at,
        warehouse_id,
        cast(null as text) as carrier,
        service_level,
        cast(null as text) as tracking_number,
        units,
        lines
    from order_facts
    where occurred_at is not null

    union all

    select
        shipped.tenant_id,
        'shopify:' || shipped.order_id || ':f' || shipped.fulfillment_id || ':label_printed',
        'label_printed',
        shipped.order_id,
        shipped.created_at,
        shipped.warehouse_id,
        shipped.carrier,
        latest.service_level,
        shipped.tracking_number,
        null,
        null
    from shipped
    inner join latest
        on shipped.tenant_id = latest.tenant_id and shipped.order_id = latest.order_id

    union all

    select
        shipment_statuses.tenant_id,
        'shopify:' || shipment_statuses.order_id || ':f' || shipment_statuses.fulfillment_id || ':'
            || shipment_statuses.event_type,
        shipment_statuses.event_type,
        shipment_statuses.order_id,
        shipment_statuses.occurred_at,
        null,
        shipped.carrier,
        null,
        shipped.tracking_number,
        null,
        null
    from shipment_statuses
    inner join shipped
        on shipment_statuses.tenant_id = shipped.tenant_id
        and shipment_statuses.order_id = shipped.order_id
        and shipment_statuses.fulfillment_id = shipped.fulfillment_id
)

select
    cast(tenant_id as text) as tenant_id,
    cast('shopify' as text) as source,
    cast(event_id as text) as event_id,
    cast(event_type as text) as event_type,
    cast(order_id as text) as order_id,
    cast(occurred_at as timestamptz) as occurred_at,
    cast(warehouse_id as text) as warehouse_id,
    cast(carrier as text) as carrier,
    cast(service_level as text) as service_level,
    cast(tracking_number as text) as tracking_number,
    cast(units as integer) as units,
    cast(lines as integer) as lines,
    cast(null as integer) as cartons,
    cast(null as numeric) as postage
from events
