{{ config(tags=['invoice']) }}
-- MONTHLY_MINIMUM (DESIGN §6): one row per closed or invoiced month whose fees fall short of the tenant's
-- minimum. The shortfall = the minimum − the month's fees excluding SHIPPING (priced order charges and returns,
-- before credits), billed when positive, rounded half-up. The minimum is that of the rate card version in force
-- on the month's first day (or, if none, the first version that starts within the month). An open month owes
-- no minimum yet (its fees are still growing).
with priced as (
    select tenant_id, period_start, charge_code, amount
    from {{ ref('int_billable_activities_priced') }}
    where pricing_status = 'priced'
),

judged_periods as (
    select tenant_id, period_start
    from {{ ref('int_billing_periods_classified') }}
    where period_status <> 'open'
),

minimum_cards as (
    select
        judged_periods.tenant_id,
        judged_periods.period_start,
        cards.rate_card_id,
        cards.rate_card_version,
        cards.minimum_amount,
        row_number() over (
            partition by judged_periods.tenant_id, judged_periods.period_start order by cards.effective_from
        ) as card_rank
    from judged_periods
    inner join {{ ref('rate_cards') }} as cards
        on judged_periods.tenant_id = cards.tenant_id
        and cards.charge_code = 'MONTHLY_MINIMUM'
        and cards.effective_from <= {{ month_end('judged_periods.period_start') }}
        and cards.effective_to > judged_periods.period_start
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
        coalesce(period_fees.fees, 0) as fees_excluding_shipping,
        minimum_cards.minimum_amount - coalesce(period_fees.fees, 0) as shortfall
    from minimum_cards
    left join period_fees
        on minimum_cards.tenant_id = period_fees.tenant_id
        and minimum_cards.period_start = period_fees.period_start
    where minimum_cards.card_rank = 1
)

select
    tenant_id,
    period_start,
    {{ month_end('period_start') }} as period_end,
    rate_card_id,
    rate_card_version,
    minimum_amount,
    fees_excluding_shipping,
    shortfall,
    {{ round_money('shortfall') }} as amount
from minimums
where shortfall > 0
