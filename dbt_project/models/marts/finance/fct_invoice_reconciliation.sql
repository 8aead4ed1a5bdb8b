{{ config(
    tags=['invoice'],
    indexes=[
        {'columns': ['tenant_id', 'invoice_id']},
        {'columns': ['discrepancy_type']},
    ],
) }}
-- Billed vs expected at (tenant, invoice, charge code, order) (DESIGN §6). An invoice (its current line
-- versions) covers a tenant and the calendar months its period_start..period_end overlaps; the expected lines
-- of that tenant and those months are matched to its billed lines by (charge_code, order_id).
-- discrepancy_type, first rule that applies:
--   unexpected_charge   billed, nothing to bill (e.g. a cancelled order, an order billed in the wrong month)
--   missing_sla_credit  an expected SLA_CREDIT not billed
--   unbilled            any other expected charge not billed
--   matched             |delta| <= tolerance = greatest(tolerance_abs, tolerance_rel × |expected|); a missing
--                       side of amount 0.00 is matched too (nothing to adjust)
--   duplicate_charge    two or more billed lines for one (charge, order) that is billed once
--   quantity_mismatch   billed quantity <> expected quantity
--   rate_mismatch       same quantity, other amount (rate, tier or rounding beyond tolerance)
with lines as (
    select * from {{ ref('stg_billing__invoice_lines') }}
    where is_current
),

invoices as (
    select
        invoice_id,
        min(tenant_id) as tenant_id,
        min(invoice_date) as invoice_date,
        min(period_start) as period_start,
        max(period_end) as period_end,
        min(currency) as currency
    from lines
    group by invoice_id
),

billed as (
    select
        invoice_id,
        charge_code,
        coalesce(order_id, '') as order_key,
        count(*) as billed_line_count,
        jsonb_agg(line_id order by line_id) as billed_line_ids,
        sum(quantity) as billed_quantity,
        case when count(distinct unit_rate) = 1 and count(unit_rate) = count(*) then max(unit_rate) end
            as billed_unit_rate,
        sum(amount) as billed_amount
    from lines
    group by invoice_id, charge_code, coalesce(order_id, '')
),

expected as (
    select
        invoices.invoice_id,
        coalesce(charges.order_id, '') as order_key,
        charges.*
    from invoices
    inner join {{ ref('fct_expected_charges') }} as charges
        on invoices.tenant_id = charges.tenant_id
        and charges.period_start <= invoices.period_end
        and charges.period_end >= invoices.period_start
),

joined as (
    select
        coalesce(billed.invoice_id, expected.invoice_id) as invoice_id,
        coalesce(billed.charge_code, expected.charge_code) as charge_code,
        coalesce(billed.order_key, expected.order_key) as order_key,
        billed.invoice_id is not null as is_billed,
        expected.invoice_id is not null as is_expected,
        coalesce(billed.billed_line_count, 0) as billed_line_count,
        coalesce(billed.billed_line_ids, cast('[]' as jsonb)) as billed_line_ids,
        billed.billed_quantity,
        billed.billed_unit_rate,
        coalesce(billed.billed_amount, 0) as billed_amount,
        expected.quantity as expected_quantity,
        expected.unit_rate as expected_unit_rate,
        coalesce(expected.amount, 0) as expected_amount,
        expected.period_start as expected_period_start,
        expected.rate_card_id,
        expected.rate_card_version,
        expected.tier_mode,
        expected.tier_min,
        expected.tier_max,
        expected.source_event_ids,
        expected.sla_policy_id,
        expected.sla_policy_version,
        expected.credit_terms_version,
        expected.pricing_detail
    from billed
    full outer join expected
        on billed.invoice_id = expected.invoice_id
        and billed.charge_code = expected.charge_code
        and billed.order_key = expected.order_key
),

toleranced as (
    select
        joined.*,
        invoices.tenant_id,
        invoices.invoice_date,
        invoices.period_start,
        invoices.period_end,
        invoices.currency,
        joined.billed_amount - joined.expected_amount as delta_amount,
        greatest(tenants.tolerance_abs, tenants.tolerance_rel * abs(joined.expected_amount)) as tolerance_amount
    from joined
    inner join invoices on joined.invoice_id = invoices.invoice_id
    inner join {{ ref('tenants') }} as tenants on invoices.tenant_id = tenants.tenant_id
),

classified as (
    select
        toleranced.*,
        case
            when not is_expected then case when billed_amount = 0 then 'matched' else 'unexpected_charge' end
            when not is_billed then
                case
                    when expected_amount = 0 then 'matched'
                    when charge_code = 'SLA_CREDIT' then 'missing_sla_credit'
                    else 'unbilled'
                end
            when abs(delta_amount) <= tolerance_amount then 'matched'
            when billed_line_count > 1 then 'duplicate_charge'
            when billed_quantity is not null and billed_quantity <> expected_quantity then 'quantity_mismatch'
            else 'rate_mismatch'
        end as discrepancy_type
    from toleranced
)

select
    cast(md5(tenant_id || '|' || invoice_id || '|' || charge_code || '|' || order_key) as text)
        as reconciliation_id,
    cast(tenant_id as text) as tenant_id,
    cast(invoice_id as text) as invoice_id,
    cast(invoice_date as date) as invoice_date,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(charge_code as text) as charge_code,
    cast(nullif(order_key, '') as text) as order_id,
    cast(billed_line_count as integer) as billed_line_count,
    cast(billed_line_ids as jsonb) as billed_line_ids,
    cast(billed_quantity as numeric(14, 4)) as billed_quantity,
    cast(billed_unit_rate as numeric(14, 6)) as billed_unit_rate,
    cast(billed_amount as numeric(12, 2)) as billed_amount,
    cast(expected_quantity as numeric(14, 4)) as expected_quantity,
    cast(expected_unit_rate as numeric(14, 6)) as expected_unit_rate,
    cast(expected_amount as numeric(12, 2)) as expected_amount,
    cast(delta_amount as numeric(12, 2)) as delta_amount,
    cast(discrepancy_type as text) as discrepancy_type,
    cast(tolerance_amount as numeric(12, 2)) as tolerance_amount,
    cast(currency as text) as currency,
    cast(expected_period_start as date) as expected_period_start,
    cast(rate_card_id as text) as rate_card_id,
    cast(rate_card_version as integer) as rate_card_version,
    cast(tier_mode as text) as tier_mode,
    cast(tier_min as integer) as tier_min,
    cast(tier_max as integer) as tier_max,
    cast(source_event_ids as jsonb) as source_event_ids,
    cast(sla_policy_id as text) as sla_policy_id,
    cast(sla_policy_version as integer) as sla_policy_version,
    cast(credit_terms_version as integer) as credit_terms_version,
    cast(pricing_detail as jsonb) as pricing_detail
from classified
