{{ config(
    tags=['invoice'],
    indexes=[
        {'columns': ['tenant_id', 'period_start', 'charge_code', 'order_id']},
    ],
) }}
-- What each tenant should be billed (DESIGN §6): one line per (tenant, calendar month in the tenant's time
-- zone, charge code, order), or per period charge (order_id null). Money numeric(12,2), half-up per line.
-- The lines, each rule in its own intermediate model:
--   order charges + RETURN_FEE  int_billable_activities_priced (rate card version effective that local day);
--                               SHIPPING per label: quantity 1, unit_rate = amount, postage and markup in
--                               pricing_detail
--   MONTHLY_MINIMUM             int_monthly_minimums_charged (closed or invoiced months)
--   SLA_CREDIT                  int_sla_credits_capped, negated (the month's cap on closed or invoiced months)
--   period_status, as_of        int_billing_periods_classified (closed / invoiced / open at as_of)
with priced as (
    select * from {{ ref('int_billable_activities_priced') }}
    where pricing_status = 'priced'
),

all_lines as (
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
        tenant_id, period_start, period_end, 'MONTHLY_MINIMUM', cast(null as text),
        cast(1 as numeric), cast(shortfall as numeric), amount,
        rate_card_id, rate_card_version, cast(null as text), cast(null as integer), cast(null as integer),
        cast(null as timestamptz), cast(null as date), cast('[]' as jsonb),
        null, null, null, null,
        jsonb_build_object('minimum_amount', minimum_amount, 'fees_excluding_shipping', fees_excluding_shipping)
    from {{ ref('int_monthly_minimums_charged') }}
    union all
    select
        tenant_id, period_start, period_end, 'SLA_CREDIT', order_id, cast(1 as numeric), -credit_amount,
        -credit_amount,
        null, null, null, null, null,
        activity_at, activity_date, source_event_ids,
        sla_policy_id, sla_policy_version, credit_terms_version, uncapped_amount,
        jsonb_build_object(
            'stages', stages, 'uncapped_amount', uncapped_amount, 'period_credit_total', total_credit,
            'cap_pct', cap_pct, 'cap_amount', cap_amount, 'is_capped', is_capped
        )
    from {{ ref('int_sla_credits_capped') }}
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
    cast(periods.as_of as timestamptz) as as_of
from all_lines
inner join {{ ref('tenants') }} as tenants on all_lines.tenant_id = tenants.tenant_id
inner join {{ ref('int_billing_periods_classified') }} as periods
    on all_lines.tenant_id = periods.tenant_id
    and all_lines.period_start = periods.period_start
