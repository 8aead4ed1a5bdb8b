-- Shopify order versions, the fields E²A reads renamed and cast (no PII: it stays in raw).
with source as (
    select * from {{ source('shopify', 'shopify_orders') }}
),

renamed as (
    select
        cast(shop as text) as shop,
        cast(tenant_id as text) as tenant_id,
        cast(order_id as text) as order_id,
        cast(order_name as text) as order_name,
        cast(updated_at as timestamptz) as updated_at,
        cast(payload ->> 'created_at' as timestamptz) as created_at,
        cast(payload ->> 'processed_at' as timestamptz) as processed_at,
        cast(payload ->> 'cancelled_at' as timestamptz) as cancelled_at,
        lower(payload ->> 'financial_status') as financial_status,
        lower(payload ->> 'fulfillment_status') as fulfillment_status,
        nullif(payload ->> 'location_id', '') as location_id,
        case
            when jsonb_typeof(payload -> 'line_items') = 'array' then payload -> 'line_items' else cast('[]' as jsonb)
        end as line_items,
        coalesce(
            nullif(trim(payload -> 'shipping_lines' -> 0 ->> 'code'), ''),
            nullif(trim(payload -> 'shipping_lines' -> 0 ->> 'title'), '')
        ) as shipping_method,
        case
            when jsonb_typeof(payload -> 'fulfillments') = 'array' then payload -> 'fulfillments'
            else cast('[]' as jsonb)
        end as fulfillments,
        -- the order's own promise: a note attribute of that name (validated at ingestion, lib/ingestion/shopify.py)
        {%- for promise in ['promised_ship_by', 'promised_deliver_by'] %}
        (
            select nullif(trim(attribute.value ->> 'value'), '')
            from jsonb_array_elements(
                case
                    when jsonb_typeof(source.payload -> 'note_attributes') = 'array'
                        then source.payload -> 'note_attributes'
                    else cast('[]' as jsonb)
                end
            ) with ordinality as attribute (value, position)
            where lower(trim(attribute.value ->> 'name')) = '{{ promise }}'
            order by attribute.position
            limit 1
        ) as {{ promise }},
        {%- endfor %}
        ingested_at
    from source
)

select
    shop,
    tenant_id,
    order_id,
    order_name,
    updated_at,
    created_at,
    processed_at,
    cancelled_at,
    financial_status,
    fulfillment_status,
    location_id,
    cast((
        select coalesce(sum(cast(item ->> 'quantity' as integer)), 0)
        from jsonb_array_elements(renamed.line_items) as item
    ) as integer) as units,
    cast(jsonb_array_length(line_items) as integer) as lines,
    shipping_method,
    cast({{ shopify_service_level('shipping_method') }} as text) as service_level,
    fulfillments,
    promised_ship_by,
    promised_deliver_by,
    cast(row_number() over (partition by shop, order_id order by updated_at desc) as integer) as version_rank,
    ingested_at
from renamed
