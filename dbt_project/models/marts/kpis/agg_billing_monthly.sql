-- KPI: billed vs expected vs adjusted per tenant, billing month and currency, from the reconciliation (one row
-- per (tenant, month, charge, order) across every invoice of the month: each expected line counted once) and
-- the open adjustments of that month. Months without an invoice have no row (nothing billed is not the same
-- as zero billed).
with reconciliation as (
    select
        tenant_id,
        period_start as invoice_month,
        currency,
        discrepancy_type,
        charge_code,
        billed_amount,
        expected_amount,
        delta_amount,
        period_invoice_count
    from {{ ref('fct_invoice_reconciliation') }}
),

adjustments as (
    select
        tenant_id,
        period_start as invoice_month,
        sum(amount) as adjusted_amount,
        sum(amount) filter (where approval_status = 'needs_review') as needs_review_amount
    from {{ source('actions', 'invoice_adjustments') }}
    where status = 'open'
    group by tenant_id, period_start
),

by_month as (
    select
        tenant_id,
        invoice_month,
        currency,
        max(period_invoice_count) as invoice_count,
        sum(coalesce(billed_amount, 0)) as billed_amount,
        sum(coalesce(expected_amount, 0)) as expected_amount,
        sum(coalesce(delta_amount, 0)) as delta_amount,
        sum(coalesce(expected_amount, 0)) filter (where charge_code = 'SLA_CREDIT') as expected_credits,
        count(*) filter (where discrepancy_type <> 'matched') as discrepancy_count
    from reconciliation
    group by tenant_id, invoice_month, currency
)

select
    cast(by_month.tenant_id as text) as tenant_id,
    cast(by_month.invoice_month as date) as invoice_month,
    cast(by_month.currency as text) as currency,
    cast(by_month.invoice_count as integer) as invoice_count,
    cast(by_month.billed_amount as numeric(14, 2)) as billed_amount,
    cast(by_month.expected_amount as numeric(14, 2)) as expected_amount,
    cast(by_month.delta_amount as numeric(14, 2)) as delta_amount,
    cast(coalesce(by_month.expected_credits, 0) as numeric(14, 2)) as expected_sla_credits,
    cast(coalesce(adjustments.adjusted_amount, 0) as numeric(14, 2)) as adjustments_amount,
    cast(by_month.billed_amount + coalesce(adjustments.adjusted_amount, 0) as numeric(14, 2)) as adjusted_amount,
    cast(coalesce(adjustments.needs_review_amount, 0) as numeric(14, 2)) as needs_review_amount,
    cast(by_month.discrepancy_count as integer) as discrepancy_count
from by_month
left join adjustments
    on by_month.tenant_id = adjustments.tenant_id and by_month.invoice_month = adjustments.invoice_month
