{{ config(materialized='view') }}
-- Shopify order versions (stg_shopify__orders, renamed and cast) as canonical milestone events (source
-- `shopify`), one set per version: the events the order showed while that version was its latest, valid over
-- [valid_from, valid_to). A view, and no instant is baked in: live refreshes do not rebuild it, and a build at
-- as_of takes the rows with valid_from <= as_of < coalesce(valid_to, infinity) (int_orders_milestoned), which
-- are exactly the events of the latest version known at as_of, however recent. Order facts come from that
-- version; carrier statuses from it and every earlier version, so a fulfillment's progress (in transit, then
-- delivered) is kept even though each version shows one status. The status words are lib/ingestion/shopify.py's
-- (tests/unit/test_vocabulary.py).

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
        updated_at as valid_from,
        -- Shopify order ids are global: the latest version wins, whichever shop of the tenant it came from (a
        -- tie on updated_at goes to the first shop by name, whose range then covers the others' empty ones)
        lead(updated_at) over (partition by tenant_id, order_id order by updated_at asc, shop desc) as valid_to
    from {{ ref('stg_shopify__orders') }}
),

locations as (
    select tenant_id, location_id, warehouse_id from {{ ref('shopify_locations') }}
),

fulfillments as (
    select
        versions.shop,
        versions.tenant_id,
        versions.order_id,
        versions.updated_at as version_updated_at,
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

-- fulfillments that count in each version: not failed/cancelled, with a tracking number
shipped as (
    select fulfillments.*, locations.warehouse_id
    from fulfillments
    left join locations
        on fulfillments.tenant_id = locations.tenant_id and fulfillments.location_id = locations.location_id
    where coalesce(fulfillments.status, '') not in ({{ void_fulfillments }})
      and fulfillments.tracking_number is not null
      and fulfillments.created_at is not null
),

version_facts as (
    select
        versions.*,
        coalesce(
            order_location.warehouse_id,
            (select s.warehouse_id from shipped as s
             where s.shop = versions.shop and s.order_id = versions.order_id
               and s.version_updated_at = versions.updated_at and s.warehouse_id is not null
             order by s.ordinality limit 1)
        ) as warehouse_id
    from versions
    left join locations as order_location
        on versions.tenant_id = order_location.tenant_id and versions.location_id = order_location.location_id
),

order_facts as (
    select shop, tenant_id, order_id, valid_from, valid_to, 'order_created' as event_type, created_at as occurred_at,
           warehouse_id, units, lines, service_level, promised_ship_by, promised_deliver_by
    from version_facts
    union all
    select shop, tenant_id, order_id, valid_from, valid_to, 'order_paid', processed_at, null, null, null, null,
           null, null
    from version_facts
    where financial_status in ({{ paid_statuses }}) and processed_at is not null
    union all
    select shop, tenant_id, order_id, valid_from, valid_to, 'order_cancelled', cancelled_at, null, null, null, null,
           null, null
    from version_facts
    where cancelled_at is not null
),

-- for each version's shipped fulfillment, the statuses it showed in that version or any earlier one (of any shop
-- of the tenant), each at the earliest fulfillment updated_at showing it
shipment_statuses as (
    select
        s.shop,
        s.tenant_id,
        s.order_id,
        s.version_updated_at,
        s.fulfillment_id,
        case f.shipment_status
            {%- for status, event_type in shipment_events.items() %}
            when '{{ status }}' then '{{ event_type }}'
            {%- endfor %}
        end as event_type,
        min(f.updated_at) as occurred_at
    from shipped as s
    inner join fulfillments as f
        on s.tenant_id = f.tenant_id and s.order_id = f.order_id and s.fulfillment_id = f.fulfillment_id
        and f.version_updated_at <= s.version_updated_at
    where f.shipment_status in ('{{ shipment_events.keys() | join("', '") }}')
      and f.updated_at is not null
    -- the fourth is the event type the status maps to
    group by 1, 2, 3, 4, 5, 6  -- noqa: AM06
),

events as (
    select
        shop,
        tenant_id,
        valid_from,
        valid_to,
        'shopify:' || order_id || ':' || event_type as event_id,
        event_type,
        order_id,
        occurred_at,
        warehouse_id,
        cast(null as text) as carrier,
        service_level,
        cast(null as text) as tracking_number,
        units,
        lines,
        promised_ship_by,
        promised_deliver_by
    from order_facts
    where occurred_at is not null

    union all

    select
        shipped.shop,
        shipped.tenant_id,
        version_facts.valid_from,
        version_facts.valid_to,
        'shopify:' || shipped.order_id || ':f' || shipped.fulfillment_id || ':label_printed',
        'label_printed',
        shipped.order_id,
        shipped.created_at,
        shipped.warehouse_id,
        shipped.carrier,
        version_facts.service_level,
        shipped.tracking_number,
        null,
        null,
        null,
        null
    from shipped
    inner join version_facts
        on shipped.shop = version_facts.shop and shipped.order_id = version_facts.order_id
        and shipped.version_updated_at = version_facts.updated_at

    union all

    select
        shipped.shop,
        shipped.tenant_id,
        version_facts.valid_from,
        version_facts.valid_to,
        'shopify:' || statuses.order_id || ':f' || statuses.fulfillment_id || ':' || statuses.event_type,
        statuses.event_type,
        statuses.order_id,
        statuses.occurred_at,
        null,
        shipped.carrier,
        null,
        shipped.tracking_number,
        null,
        null,
        null,
        null
    from shipment_statuses as statuses
    inner join shipped
        on statuses.shop = shipped.shop and statuses.order_id = shipped.order_id
        and statuses.version_updated_at = shipped.version_updated_at
        and statuses.fulfillment_id = shipped.fulfillment_id
    inner join version_facts
        on statuses.shop = version_facts.shop and statuses.order_id = version_facts.order_id
        and statuses.version_updated_at = version_facts.updated_at
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
    cast(null as numeric) as postage,
    cast(promised_ship_by as text) as promised_ship_by,
    cast(promised_deliver_by as text) as promised_deliver_by,
    cast(shop as text) as shop,
    cast(valid_from as timestamptz) as valid_from,
    cast(valid_to as timestamptz) as valid_to
from events
