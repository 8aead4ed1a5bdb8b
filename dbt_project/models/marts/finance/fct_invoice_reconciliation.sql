{{ config(
    tags=['invoice'],
    indexes=[
        {'columns': ['tenant_id', 'period_start', 'charge_code', 'order_id']},
        {'columns': ['tenant_id', 'invoice_id']},
        {'columns': ['discrepancy_type']},
    ],
) }}
-- Billed vs expected per (tenant, period, charge code, order) (DESIGN §6), across every invoice and credit note
-- of the period (current line versions). A period is a calendar month in the tenant's time zone; it is judged
-- once an invoice for it arrived (every month an invoice's period_start..period_end overlaps). The billed lines
-- of all its invoices are summed per (charge_code, order_id) and matched to the month's expected lines, each
-- expected line once: a supplementary invoice that bills what the first one missed resolves the `unbilled`.
-- A line of an invoice covering several months goes to the month of its expected line (the first one), else
-- the invoice's first month.
--
-- Credit notes: a line whose amount has the opposite sign of the charge (negative on a fee, positive on an
-- SLA_CREDIT) reverses: its quantity counts negatively and it cancels one billed line; a line of amount 0.00
-- (a cancelled line) bills nothing. invoice_id = the latest invoice (invoice_date, then arrival) with a line in
-- the row; for a row with nothing billed, the period's latest invoice.
--
-- discrepancy_type, first rule that applies:
--   unexpected_charge   billed, nothing to bill (e.g. a cancelled order, an order billed in the wrong month)
--   missing_sla_credit  an expected SLA_CREDIT not billed
--   unbilled            any other expected charge not billed (nothing billed, or billed and reversed)
--   matched             |delta| <= tolerance = greatest(tolerance_abs, tolerance_rel × |expected|); a missing
--                       side of amount 0.00 is matched too (nothing to adjust)
--   duplicate_charge    two or more billed lines (net of reversals) for one (charge, order) that is billed once
--   quantity_mismatch   billed quantity <> expected quantity
--   rate_mismatch       same quantity, other amount (rate, tier or rounding beyond tolerance)
--
-- A pinned as_of (a backtest) knows only the invoices dated on or before its local date in the tenant's zone;
-- a live build knows every invoice received.
{%- set as_of = as_of_timestamp() %}

with lines as (
    select billing_lines.*
    from {{ ref('stg_billing__invoice_lines') }} as billing_lines
    {%- if as_of_is_pinned() %}
    inner join {{ ref('tenants') }} as known_tenants on billing_lines.tenant_id = known_tenants.tenant_id
    where billing_lines.is_current
      and billing_lines.invoice_date <= {{ local_date(as_of, 'known_tenants.time_zone') }}
    {%- else %}
    where billing_lines.is_current
    {%- endif %}
),

invoices as (
    select
        invoice_id,
        min(tenant_id) as tenant_id,
        min(invoice_date) as invoice_date,
        min(period_start) as period_start,
        max(period_end) as period_end,
        min(currency) as currency,
        max(ingested_at) as received_at
    from lines
    group by invoice_id
),

-- Every calendar month an invoice's period overlaps.
invoice_months as (
    select invoices.*, cast(month_start as date) as month_start
    from invoices
    {{ months_overlapped('invoices') }}
),

-- The judged periods: (tenant, month) with at least one invoice, and the period's latest invoice.
periods as (
    select
        tenant_id,
        month_start as period_start,
        count(*) as invoice_count,
        (array_agg(invoice_id order by invoice_date desc, received_at desc, invoice_id desc))[1]
            as latest_invoice_id,
        (array_agg(currency order by invoice_date desc, received_at desc, invoice_id desc))[1] as currency
    from invoice_months
    group by tenant_id, month_start
),

expected_charges as (
    select charges.*, coalesce(charges.order_id, '') as order_key
    from {{ ref('fct_expected_charges') }} as charges
    inner join periods
        on charges.tenant_id = periods.tenant_id
        and charges.period_start = periods.period_start
),

-- Each line's month: the first of its invoice's months that expects its (charge, order), else the first month.
line_months as (
    select
        lines.*,
        invoice_months.month_start,
        invoice_months.received_at,
        row_number() over (
            partition by lines.invoice_id, lines.line_id
            order by (expected_charges.expected_charge_id is null), invoice_months.month_start
        ) as month_rank
    from lines
    inner join invoice_months on lines.invoice_id = invoice_months.invoice_id
    left join expected_charges
        on invoice_months.tenant_id = expected_charges.tenant_id
        and invoice_months.month_start = expected_charges.period_start
        and lines.charge_code = expected_charges.charge_code
        and coalesce(lines.order_id, '') = expected_charges.order_key
),

signed as (
    select
        line_months.*,
        case
            when amount = 0 then 0
            when (charge_code = 'SLA_CREDIT') = (amount > 0) then -1
            else 1
        end as line_sign
    from line_months
    where month_rank = 1
),

billed as (
    select
        tenant_id,
        month_start as period_start,
        charge_code,
        coalesce(order_id, '') as order_key,
        count(*) as billed_line_count,
        sum(line_sign) as net_line_count,
        jsonb_agg(line_id order by invoice_date, received_at, invoice_id, line_id) as billed_line_ids,
        jsonb_agg(
            jsonb_build_object(
                'invoice_id', invoice_id, 'line_id', line_id, 'quantity', quantity, 'unit_rate', unit_rate,
                'amount', amount
            ) order by invoice_date, received_at, invoice_id, line_id
        ) as billed_lines,
        jsonb_agg(distinct invoice_id order by invoice_id) as billed_invoice_ids,
        (array_agg(invoice_id order by invoice_date desc, received_at desc, invoice_id desc))[1]
            as last_invoice_id,
        sum(quantity * line_sign) as billed_quantity,
        case
            when count(distinct unit_rate * line_sign) filter (where line_sign <> 0) = 1
                and count(unit_rate) filter (where line_sign <> 0) = count(*) filter (where line_sign <> 0)
                then max(unit_rate * line_sign) filter (where line_sign <> 0)
        end as billed_unit_rate,
        sum(amount) as billed_amount
    from signed
    group by tenant_id, month_start, charge_code, coalesce(order_id, '')
),

joined as (
    select
        coalesce(billed.tenant_id, expected_charges.tenant_id) as tenant_id,
        coalesce(billed.period_start, expected_charges.period_start) as period_start,
        coalesce(billed.charge_code, expected_charges.charge_code) as charge_code,
        coalesce(billed.order_key, expected_charges.order_key) as order_key,
        billed.tenant_id is not null and (billed.net_line_count > 0 or billed.billed_amount <> 0) as is_billed,
        expected_charges.tenant_id is not null as is_expected,
        billed.last_invoice_id,
        coalesce(billed.billed_line_count, 0) as billed_line_count,
        coalesce(billed.net_line_count, 0) as net_line_count,
        coalesce(billed.billed_line_ids, cast('[]' as jsonb)) as billed_line_ids,
        coalesce(billed.billed_lines, cast('[]' as jsonb)) as billed_lines,
        coalesce(billed.billed_invoice_ids, cast('[]' as jsonb)) as billed_invoice_ids,
        billed.billed_quantity,
        billed.billed_unit_rate,
        coalesce(billed.billed_amount, 0) as billed_amount,
        expected_charges.expected_charge_id,
        expected_charges.quantity as expected_quantity,
        expected_charges.unit_rate as expected_unit_rate,
        coalesce(expected_charges.amount, 0) as expected_amount,
        expected_charges.period_start as expected_period_start,
        expected_charges.rate_card_id,
        expected_charges.rate_card_version,
        expected_charges.tier_mode,
        expected_charges.tier_min,
        expected_charges.tier_max,
        expected_charges.source_event_ids,
        expected_charges.sla_policy_id,
        expected_charges.sla_policy_version,
        expected_charges.credit_terms_version,
        expected_charges.pricing_detail
    from billed
    full outer join expected_charges
        on billed.tenant_id = expected_charges.tenant_id
        and billed.period_start = expected_charges.period_start
        and billed.charge_code = expected_charges.charge_code
        and billed.order_key = expected_charges.order_key
),

toleranced as (
    select
        joined.*,
        coalesce(joined.last_invoice_id, periods.latest_invoice_id) as invoice_id,
        periods.invoice_count as period_invoice_count,
        periods.currency,
        joined.billed_amount - joined.expected_amount as delta_amount,
        greatest(tenants.tolerance_abs, tenants.tolerance_rel * abs(joined.expected_amount)) as tolerance_amount
    from joined
    inner join periods
        on joined.tenant_id = periods.tenant_id
        and joined.period_start = periods.period_start
    inner join {{ ref('tenants') }} as tenants on joined.tenant_id = tenants.tenant_id
),

classified as (
    select
        toleranced.*,
        invoices.invoice_date,
        case
            when not toleranced.is_expected then
                case when toleranced.billed_amount = 0 then 'matched' else 'unexpected_charge' end
            when not toleranced.is_billed then
                case
                    when toleranced.expected_amount = 0 then 'matched'
                    when toleranced.charge_code = 'SLA_CREDIT' then 'missing_sla_credit'
                    else 'unbilled'
                end
            when abs(toleranced.delta_amount) <= toleranced.tolerance_amount then 'matched'
            when toleranced.net_line_count > 1 then 'duplicate_charge'
            when toleranced.billed_quantity is not null
                and toleranced.billed_quantity <> toleranced.expected_quantity then 'quantity_mismatch'
            else 'rate_mismatch'
        end as discrepancy_type
    from toleranced
    inner join invoices on toleranced.invoice_id = invoices.invoice_id
)

select
    cast(md5(tenant_id || '|' || cast(period_start as text) || '|' || charge_code || '|' || order_key) as text)
        as reconciliation_id,
    cast(tenant_id as text) as tenant_id,
    cast(invoice_id as text) as invoice_id,
    cast(invoice_date as date) as invoice_date,
    cast(period_start as date) as period_start,
    {{ month_end('period_start') }} as period_end,
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
    cast(pricing_detail as jsonb) as pricing_detail,
    cast(net_line_count as integer) as net_line_count,
    cast(billed_lines as jsonb) as billed_lines,
    cast(billed_invoice_ids as jsonb) as billed_invoice_ids,
    cast(period_invoice_count as integer) as period_invoice_count,
    cast(expected_charge_id as text) as expected_charge_id
from classified
