-- Canonical order events, renamed and cast only. Carrier and service level are normalised to
-- lower case; empty strings in optional text fields become null.
with source as (
    select * from {{ source('landing', 'order_events') }}
),

renamed as (
    select
        cast(tenant_id as text) as tenant_id,
        cast(source as text) as source,
        cast(event_id as text) as event_id,
        cast(event_type as text) as event_type,
        cast(order_id as text) as order_id,
        cast(occurred_at as timestamptz) as occurred_at,
        nullif(trim(warehouse_id), '') as warehouse_id,
        nullif(lower(trim(carrier)), '') as carrier,
        nullif(lower(trim(service_level)), '') as service_level,
        nullif(trim(tracking_number), '') as tracking_number,
        cast(units as integer) as units,
        cast(lines as integer) as lines,
        cast(cartons as integer) as cartons,
        cast(postage as numeric) as postage,
        nullif(trim(promised_ship_by), '') as promised_ship_by,
        nullif(trim(promised_deliver_by), '') as promised_deliver_by,
        attributes,
        payload,
        file_name,
        line_number,
        ingested_at
    from source
)

select * from renamed
