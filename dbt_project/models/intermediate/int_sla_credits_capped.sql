{{ config(tags=['invoice']) }}
-- SLA_CREDIT (DESIGN §6): one row per billed order (ORDER_FEE priced) with a late stage that the tenant's credit
-- terms cover (terms effective on the order's billing day), and a credit to bill (credit_amount > 0):
-- - per stage: percent of that order's basis charge, or a fixed amount, rounded half-up; summed over stages;
-- - the month's credits are capped at cap_pct of the subtotal (all charges before credits: the priced lines
--   and the MONTHLY_MINIMUM; the strictest cap of the terms rows that earned credits). When the cap binds, every
--   credit is scaled by cap/total and rounded half-up, and the last credit by order_id takes the rounding rest,
--   so the credits add up to the cap;
-- - the cap applies to closed or invoiced months only (an open month's subtotal is still growing): an open
--   month shows each credit uncapped.
-- Amounts are positive here; fct_expected_charges bills them negated.
with priced as (
    select tenant_id, order_id, period_start, charge_code, amount, activity_at, activity_date, source_event_ids
    from {{ ref('int_billable_activities_priced') }}
    where pricing_status = 'priced'
),

minimums as (
    select tenant_id, period_start, amount from {{ ref('int_monthly_minimums_charged') }}
),

periods as (
    select tenant_id, period_start, period_status from {{ ref('int_billing_periods_classified') }}
),

subtotals as (
    select tenant_id, period_start, sum(amount) as subtotal
    from (
        select tenant_id, period_start, amount from priced
        union all
        select tenant_id, period_start, amount from minimums
    ) as charges
    group by tenant_id, period_start
),

late_stages as (
    select tenant_id, order_id, stage, policy_id, policy_version, minutes_late, due_at, ended_at
    from {{ ref('fct_sla_evaluations') }}
    where status = 'late'
),

billed_orders as (
    select tenant_id, order_id, period_start, activity_at, activity_date, source_event_ids
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
)

select
    credits.tenant_id,
    credits.period_start,
    {{ month_end('credits.period_start') }} as period_end,
    credits.order_id,
    billed_orders.activity_at,
    billed_orders.activity_date,
    credits.source_event_ids,
    credits.sla_policy_id,
    credits.sla_policy_version,
    credits.credit_terms_version,
    credits.stages,
    credits.uncapped_amount,
    credits.total_credit,
    credits.cap_pct,
    credits.cap_amount,
    credits.is_capped,
    credits.credit_amount
from credits
inner join billed_orders
    on credits.tenant_id = billed_orders.tenant_id
    and credits.order_id = billed_orders.order_id
where credits.credit_amount > 0
