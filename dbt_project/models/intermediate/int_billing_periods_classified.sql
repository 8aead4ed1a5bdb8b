{{ config(tags=['invoice']) }}
-- One row per billing period to judge or show (DESIGN §6): a calendar month in the tenant's time zone with
-- priced activity, or one an invoice covers (a month without activity still owes the minimum), and how far it
-- is judged at as_of:
--   closed    the month ended (local midnight of the next month's first day, tenant time zone) at as_of
--   invoiced  not ended, but an invoice for it arrived: judged as if closed
--   open      neither: expected to date (no period-level charges, no credit cap, not reconciled)
-- The invoices known at as_of: every one received in a live build; those dated on or before as_of's local date
-- in a pinned one (a backtest), as in fct_invoice_reconciliation. `as_of` is the instant the status describes,
-- carried to fct_expected_charges.
{%- set as_of = as_of_timestamp() %}

with tenants as (
    select tenant_id, time_zone from {{ ref('tenants') }}
),

invoice_periods as (
    select distinct billing_lines.tenant_id, billing_lines.period_start, billing_lines.period_end
    from {{ ref('stg_billing__invoice_lines') }} as billing_lines
    inner join tenants on billing_lines.tenant_id = tenants.tenant_id
    where billing_lines.is_current
    {%- if as_of_is_pinned() %}
      and billing_lines.invoice_date <= {{ local_date(as_of, 'tenants.time_zone') }}
    {%- endif %}
),

-- Every calendar month an invoice's period overlaps.
invoice_months as (
    select distinct
        invoice_periods.tenant_id,
        cast(month_start as date) as period_start
    from invoice_periods
    {{ months_overlapped('invoice_periods') }}
),

period_keys as (
    select distinct tenant_id, period_start
    from {{ ref('int_billable_activities_priced') }}
    where pricing_status = 'priced'
    union
    select tenant_id, period_start from invoice_months
)

select
    period_keys.tenant_id,
    period_keys.period_start,
    case
        when {{ as_of }} >= (
            cast({{ dbt.dateadd('month', 1, 'period_keys.period_start') }} as timestamp)
            at time zone tenants.time_zone
        ) then 'closed'
        when invoice_months.tenant_id is not null then 'invoiced'
        else 'open'
    end as period_status,
    {{ as_of }} as as_of
from period_keys
inner join tenants on period_keys.tenant_id = tenants.tenant_id
left join invoice_months
    on period_keys.tenant_id = invoice_months.tenant_id
    and period_keys.period_start = invoice_months.period_start
