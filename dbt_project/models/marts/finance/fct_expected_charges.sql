{{ config(
    tags=['invoice'],
    indexes=[
        {'columns': ['tenant_id', 'period_start', 'charge_code', 'order_id']},
    ],
) }}
-- What each tenant should be billed (DESIGN §6): one line per (tenant, calendar month in the tenant's time
-- zone, charge code, order), or per period charge (order_id null). Money numeric(12,2), half-up per line.
-- period_status: `closed` (the month ended in the tenant's time zone at as_of), `invoiced` (not ended, but an
-- invoice for it arrived: judged as if closed), `open` (expected to date: no period-level charges, no cap).
--   order charges + RETURN_FEE  int_billable_activities_priced (rate card version effective that local day);
--                               SHIPPING per label: quantity 1, unit_rate = amount, postage and markup in
--                               pricing_detail
--   MONTHLY_MINIMUM             minimum − the month's fees excluding SHIPPING (before credits), when positive;
--                               the minimum of the version in force on the month's first day (or, if none,
--                               the first version that starts within the month). Closed or invoiced months only.
--   SLA_CREDIT                  per billed order with a late stage that the tenant's credit terms cover (terms
--                               effective on the order's billing day): percent of that order's basis charge, or
--                               a fixed amount, rounded half-up; summed over stages into one line per order.
--                               The month's credits are capped at cap_pct of the subtotal (all charges before
--                               credits; the strictest cap of the terms rows that earned credits). When the cap
--                               binds, every credit is scaled by cap/total and rounded half-up, and the last
--                               credit by order_id takes the rounding rest, so the credits add up to the cap.
--                               The cap applies to closed or invoiced months only (an open month's subtotal is
--                               still growing): an open month shows each credit uncapped.
{%- set as_of = as_of_timestamp() %}

with priced as (
    select * from {{ ref('int_billable_activities_priced') }}
    where pricing_status = 'priced'
),

tenants as (
    select tenant_id, currency, time_zone from {{ ref('tenants') }}
),

-- The invoices known at as_of: every one received in a live build; those dated on or before as_of's local date
-- in a pinned one (a backtest), as in fct_invoice_reconciliation.
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
    cross join lateral generate_series(
        {{ dbt.date_trunc('month', 'invoice_periods.period_start') }},
        {{ dbt.date_trunc('month', 'invoice_periods.period_end') }},
        interval '1 month'
    ) as month_start
),

-- Months with something to bill, or an invoice to compare with (a month without activity still owes the minimum).
period_keys as (
    select distinct tenant_id, period_start from priced
    union
    select tenant_id, period_start from invoice_months
),

-- Whether each month is judged: it ended (local midnight of the next month's first day, tenant time zone) at
-- as_of, or an invoice for it arrived. An open month is expected-to-date.
periods as (
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
        end as period_status
    from period_keys
    inner join tenants on period_keys.tenant_id = tenants.tenant_id
    left join invoice_months
        on period_keys.tenant_id = invoice_months.tenant_id
        and period_keys.period_start = invoice_months.period_start
),

minimum_cards as (
    select
        periods.tenant_id,
        periods.period_start,
        cards.rate_card_id,
        cards.rate_card_version,
        cards.minimum_amount,
        row_number() over (
            partition by periods.tenant_id, periods.period_start order by cards.effective_from
        ) as card_rank
    from periods
    inner join {{ ref('rate_cards') }} as cards
        on periods.tenant_id = cards.tenant_id
        and cards.charge_code = 'MONTHLY_MINIMUM'
        and cards.effective_from <= {{ month_end('periods.period_start') }}
        and cards.effective_to > periods.period_start
    where periods.period_status <> 'open'
),

period_fees as (
    select tenant_id, period_start, sum(amount) as fees
    from priced
    where charge_code <> 'SHIPPING'
    group by tenant_id, period_start
),

minimums as (
    select
        minimum_cards.tenant_id,
        minimum_cards.period_start,
        minimum_cards.rate_card_id,
        minimum_cards.rate_card_version,
        minimum_cards.minimum_amount,
        coalesce(period_fees.fees, 0) as fees,
        minimum_cards.minimum_amount - coalesce(period_fees.fees, 0) as shortfall
    from minimum_cards
    left join period_fees
        on minimum_cards.tenant_id = period_fees.tenant_id
        and minimum_cards.period_start = period_fees.period_start
    where minimum_cards.card_rank = 1
),

charges as (
    select
        tenant_id, period_start, period_end, charge_code, order_id, quantity, unit_rate, amount,
        rate_card_id, rate_card_version, tier_mode, tier_min, tier_max, activity_at, activity_date,
        source_event_ids,
        cast(null as text) as sla_policy_id,
        cast(null as integer) as sla_policy_version,
        cast(null as integer) as credit_terms_version,
        cast(null as numeric) as uncapped_amount,
        jsonb_build_object(
            'period_quantity', period_quantity, 'quantity_before', quantity_before, 'tiers', tier_detail
        ) || case
            when charge_code = 'SHIPPING' then jsonb_build_object('postage', postage, 'markup_pct', markup_pct)
            else cast('{}' as jsonb)
        end as pricing_detail
    from priced
    union all
    select
        tenant_id, period_start, {{ month_end('period_start') }}, 'MONTHLY_MINIMUM', cast(null as text),
        cast(1 as numeric), cast(shortfall as numeric), {{ round_money('shortfall') }},
        rate_card_id, rate_card_version, cast(null as text), cast(null as integer), cast(null as integer),
        cast(null as timestamptz), cast(null as date), cast('[]' as jsonb),
        null, null, null, null,
        jsonb_build_object('minimum_amount', minimum_amount, 'fees_excluding_shipping', fees)
    from minimums
    where shortfall > 0
),

subtotals as (
    select tenant_id, period_start, sum(amount) as subtotal
    from charges
    group by tenant_id, period_start
),

late_stages as (
    select tenant_id, order_id, stage, policy_id, policy_version, minutes_late, due_at, ended_at
    from {{ ref('fct_sla_evaluations') }}
    where status = 'late'
),

billed_orders as (
    select tenant_id, order_id, period_start, activity_date, source_event_ids
    from priced
    where charge_code = 'ORDER_FEE'
),

stage_credits as (
    select
        billed_orders.tenant_id,
        billed_orders.period_start,
        billed_orders.order_id,
        billed_orders.source_event_ids,
        late_stages.stage,
        late_stages.policy_id,
        late_stages.policy_version,
        late_stages.minutes_late,
        terms.terms_version,
        terms.credit_type,
        terms.credit_value,
        terms.basis_charge_code,
        terms.cap_pct_of_subtotal,
        basis.amount as basis_amount,
        case terms.credit_type
            when 'percent_of_charge' then {{ round_money('coalesce(basis.amount, 0) * terms.credit_value / 100') }}
            else {{ round_money('terms.credit_value') }}
        end as credit
    from billed_orders
    inner join late_stages
        on billed_orders.tenant_id = late_stages.tenant_id
        and billed_orders.order_id = late_stages.order_id
    inner join {{ ref('sla_credit_terms') }} as terms
        on billed_orders.tenant_id = terms.tenant_id
        and late_stages.stage = terms.stage
        and billed_orders.activity_date >= terms.effective_from
        and billed_orders.activity_date < terms.effective_to
    left join priced as basis
        on billed_orders.tenant_id = basis.tenant_id
        and billed_orders.order_id = basis.order_id
        and terms.basis_charge_code = basis.charge_code
),

order_credits as (
    select
        tenant_id,
        period_start,
        order_id,
        cast(max(cast(source_event_ids as text)) as jsonb) as source_event_ids,
        min(policy_id) as sla_policy_id,
        min(policy_version) as sla_policy_version,
        max(terms_version) as credit_terms_version,
        min(cap_pct_of_subtotal) as cap_pct,
        sum(credit) as uncapped_amount,
        jsonb_agg(jsonb_build_object(
            'stage', stage, 'policy_id', policy_id, 'policy_version', policy_version,
            'minutes_late', minutes_late, 'terms_version', terms_version, 'credit_type', credit_type,
            'credit_value', credit_value, 'basis_charge_code', basis_charge_code, 'basis_amount', basis_amount,
            'credit', credit
        ) order by stage) as stages
    from stage_credits
    group by tenant_id, period_start, order_id
),

credit_caps as (
    select
        order_credits.tenant_id,
        order_credits.period_start,
        sum(order_credits.uncapped_amount) as total_credit,
        min(order_credits.cap_pct) as cap_pct,
        {{ round_money('max(subtotals.subtotal) * min(order_credits.cap_pct) / 100') }} as cap_amount
    from order_credits
    inner join subtotals
        on order_credits.tenant_id = subtotals.tenant_id
        and order_credits.period_start = subtotals.period_start
    inner join periods
        on order_credits.tenant_id = periods.tenant_id
        and order_credits.period_start = periods.period_start
    where periods.period_status <> 'open'
    group by order_credits.tenant_id, order_credits.period_start
),

scaled as (
    select
        order_credits.*,
        credit_caps.total_credit,
        credit_caps.cap_amount,
        credit_caps.cap_amount is not null and credit_caps.total_credit > credit_caps.cap_amount as is_capped,
        case
            when credit_caps.cap_amount is not null and credit_caps.total_credit > credit_caps.cap_amount then
                {{ round_money('order_credits.uncapped_amount * credit_caps.cap_amount / credit_caps.total_credit') }}
            else order_credits.uncapped_amount
        end as scaled_amount,
        row_number() over (
            partition by order_credits.tenant_id, order_credits.period_start
            -- "C" is a collation (byte order: the same on every server), not a column
            order by order_credits.order_id collate "C" desc  -- noqa: RF02
        ) as rank_from_last
    from order_credits
    left join credit_caps
        on order_credits.tenant_id = credit_caps.tenant_id
        and order_credits.period_start = credit_caps.period_start
),

credits as (
    select
        scaled.*,
        case
            when is_capped and rank_from_last = 1 then
                cap_amount - (sum(scaled_amount) over (partition by tenant_id, period_start) - scaled_amount)
            else scaled_amount
        end as credit_amount
    from scaled
),

all_lines as (
    select * from charges
    union all
    select
        credits.tenant_id, credits.period_start, {{ month_end('credits.period_start') }}, 'SLA_CREDIT',
        credits.order_id, cast(1 as numeric), -credits.credit_amount, -credits.credit_amount,
        null, null, null, null, null,
        billed_orders.activity_at, billed_orders.activity_date, credits.source_event_ids,
        credits.sla_policy_id, credits.sla_policy_version, credits.credit_terms_version,
        credits.uncapped_amount,
        jsonb_build_object(
            'stages', credits.stages, 'uncapped_amount', credits.uncapped_amount,
            'period_credit_total', credits.total_credit, 'cap_pct', credits.cap_pct,
            'cap_amount', credits.cap_amount, 'is_capped', credits.is_capped
        )
    from credits
    inner join priced as billed_orders
        on credits.tenant_id = billed_orders.tenant_id
        and credits.order_id = billed_orders.order_id
        and billed_orders.charge_code = 'ORDER_FEE'
    where credits.credit_amount > 0
)

select
    cast(md5(
        all_lines.tenant_id || '|' || cast(all_lines.period_start as text) || '|' || all_lines.charge_code
        || '|' || coalesce(all_lines.order_id, '')
    ) as text) as expected_charge_id,
    cast(all_lines.tenant_id as text) as tenant_id,
    cast(all_lines.period_start as date) as period_start,
    cast(all_lines.period_end as date) as period_end,
    cast(all_lines.charge_code as text) as charge_code,
    cast(all_lines.order_id as text) as order_id,
    cast(all_lines.quantity as numeric(14, 4)) as quantity,
    cast(all_lines.unit_rate as numeric(14, 6)) as unit_rate,
    cast(all_lines.amount as numeric(12, 2)) as amount,
    cast(tenants.currency as text) as currency,
    cast(all_lines.rate_card_id as text) as rate_card_id,
    cast(all_lines.rate_card_version as integer) as rate_card_version,
    cast(all_lines.tier_mode as text) as tier_mode,
    cast(all_lines.tier_min as integer) as tier_min,
    cast(all_lines.tier_max as integer) as tier_max,
    cast(all_lines.activity_at as timestamptz) as activity_at,
    cast(all_lines.activity_date as date) as activity_date,
    cast(all_lines.source_event_ids as jsonb) as source_event_ids,
    cast(all_lines.sla_policy_id as text) as sla_policy_id,
    cast(all_lines.sla_policy_version as integer) as sla_policy_version,
    cast(all_lines.credit_terms_version as integer) as credit_terms_version,
    cast(all_lines.uncapped_amount as numeric(12, 2)) as uncapped_amount,
    cast(all_lines.pricing_detail as jsonb) as pricing_detail,
    cast(periods.period_status as text) as period_status,
    cast({{ as_of }} as timestamptz) as as_of
from all_lines
inner join tenants on all_lines.tenant_id = tenants.tenant_id
inner join periods
    on all_lines.tenant_id = periods.tenant_id
    and all_lines.period_start = periods.period_start
