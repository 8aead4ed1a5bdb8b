{{ config(tags=['invoice']) }}
-- Billed invoice lines, every version, renamed and cast; `is_current` marks the newest version of each
-- (invoice_id, line_id) (the one loaded last: a changed line supersedes the old one, which stays).
with source as (
    select * from {{ source('billing', 'invoice_lines') }}
),

renamed as (
    select
        cast(invoice_id as text) as invoice_id,
        cast(line_id as text) as line_id,
        cast(content_hash as text) as content_hash,
        cast(tenant_id as text) as tenant_id,
        cast(invoice_date as date) as invoice_date,
        cast(period_start as date) as period_start,
        cast(period_end as date) as period_end,
        cast(charge_code as text) as charge_code,
        nullif(trim(order_id), '') as order_id,
        cast(quantity as numeric(14, 4)) as quantity,
        cast(unit_rate as numeric(14, 6)) as unit_rate,
        cast(amount as numeric(12, 2)) as amount,
        cast(currency as text) as currency,
        payload,
        file_name,
        line_number,
        line_version,
        ingested_at,
        row_number() over (
            partition by invoice_id, line_id order by line_version desc
        ) = 1 as is_current
    from source
)

select * from renamed
