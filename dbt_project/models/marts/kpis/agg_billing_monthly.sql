-- KPI: billed vs expected vs adjusted per tenant, invoice month and currency, from the reconciliation and the
-- open adjustments. Months without an invoice have no row (nothing billed is not the same as zero billed).
with reconciliation as (
    select
        tenant_id,
        cast(date_trunc('month', period_start) as date) as invoice_month,
        currency,
        invoice_id,
        discrepancy_type,
        charge_code,
        billed_amount,
        expected_amount,
        delta_amount
    from {{ ref('fct_invoice_reconciliation') }}
),

adjustments as (
    select tenant_id, invoice_id, sum(amount) as adjusted_amount,
        sum(amount) filter (where approval_status = 'needs_review') as needs_review_amount
    from {{ source('actions', 'invoice_adjustments') }}
    where status = 'open'
    group by tenant_id, invoice_id
),

by_invoice as (
    select
        tenant_id,
        invoice_month,
        currency,
        invoice_id,
        sum(coalesce(billed_amount, 0)) as billed_amount,
        sum(coalesce(expected_amount, 0)) as expected_amount,
        sum(coalesce(delta_amount, 0)) as delta_amount,
        sum(coalesce(expected_amount, 0)) filter (where charge_code = 'SLA_CREDIT') as expected_credits,
        count(*) filter (where discrepancy_type <> 'matched') as discrepancy_count
    from reconciliation
    group by tenant_id, invoice_month, currency, invoice_id
)

select
    cast(by_invoice.tenant_id as text) as tenant_id,
    cast(by_invoice.invoice_month as date) as invoice_month,
    cast(by_invoice.currency as text) as currency,
    cast(count(*) as integer) as invoice_count,
    cast(sum(by_invoice.billed_amount) as numeric(14, 2)) as billed_amount,
    cast(sum(by_invoice.expected_amount) as numeric(14, 2)) as expected_amount,
    cast(sum(by_invoice.delta_amount) as numeric(14, 2)) as delta_amount,
    cast(coalesce(sum(by_invoice.expected_credits), 0) as numeric(14, 2)) as expected_sla_credits,
    cast(coalesce(sum(adjustments.adjusted_amount), 0) as numeric(14, 2)) as adjustments_amount,
    cast(sum(by_invoice.billed_amount) + coalesce(sum(adjustments.adjusted_amount), 0) as numeric(14, 2))
        as adjusted_amount,
    cast(coalesce(sum(adjustments.needs_review_amount), 0) as numeric(14, 2)) as needs_review_amount,
    cast(sum(by_invoice.discrepancy_count) as integer) as discrepancy_count
from by_invoice
left join adjustments
    on adjustments.tenant_id = by_invoice.tenant_id and adjustments.invoice_id = by_invoice.invoice_id
group by by_invoice.tenant_id, by_invoice.invoice_month, by_invoice.currency
