{{ config(tags=['invoice']) }}
-- Every billable activity priced by its tenant's rate card (DESIGN §6):
-- - the rate card version is the one effective on the activity's local date ([effective_from, effective_to));
-- - tiers apply to the month's total quantity of the charge code (all versions of the month together):
--     whole_volume: the tier whose range holds the month's total prices every unit of the month;
--     marginal:     each unit is priced by the tier its running position in the month falls in (positions
--                   ordered by activity_at, then order_id), so one order can straddle two tiers;
--   tier bounds are inclusive whole quantities (tier_max empty = unbounded);
-- - unit price = rate × (1 + markup_pct / 100);
-- - SHIPPING is billed per label, as billing systems bill it: the metered quantity is the label's postage, the
--   line's quantity is 1 (tiers count labels), and unit_rate = amount = postage × rate × (1 + markup_pct / 100),
--   rounded half-up; `postage` and `markup_pct` stay on the row as the evidence of that amount;
-- - the line amount is rounded half-up to the cent once, after summing its tiers.
-- Activities no version or tier covers keep a null amount and a pricing_status saying why.
with metered as (
    select * from {{ ref('int_billable_activities_metered') }}
),

-- The billed quantity and what one unit of it is priced on: a SHIPPING label is one unit priced on its postage.
activities as (
    select
        tenant_id, order_id, charge_code, period_start, period_end, currency, activity_at, activity_date,
        source_event_ids,
        case when charge_code = 'SHIPPING' then cast(1 as numeric) else quantity end as quantity,
        case when charge_code = 'SHIPPING' then quantity end as postage,
        case when charge_code = 'SHIPPING' then quantity else 1 end as price_basis
    from metered
),

positioned as (
    select
        activities.*,
        sum(quantity) over (partition by tenant_id, period_start, charge_code) as period_quantity,
        coalesce(sum(quantity) over (
            partition by tenant_id, period_start, charge_code
            order by activity_at, order_id
            rows between unbounded preceding and 1 preceding
        ), 0) as quantity_before
    from activities
),

cards as (
    select
        rate_card_id, rate_card_version, tenant_id, charge_code, rate, tier_min, tier_max, tier_mode,
        markup_pct, currency, effective_from, effective_to,
        rate * (1 + coalesce(markup_pct, 0) / 100) as unit_price
    from {{ ref('rate_cards') }}
    where charge_code <> 'MONTHLY_MINIMUM'
),

tiers as (
    select
        positioned.tenant_id, positioned.order_id, positioned.charge_code, positioned.quantity,
        positioned.period_quantity, positioned.quantity_before,
        cards.rate_card_id, cards.rate_card_version, cards.tier_min, cards.tier_max, cards.tier_mode,
        cards.markup_pct, cards.unit_price * positioned.price_basis as unit_price,
        max(case when cards.tier_min <= positioned.period_quantity then cards.tier_min end) over (
            partition by positioned.tenant_id, positioned.order_id, positioned.charge_code
        ) as whole_volume_tier_min
    from positioned
    inner join cards
        on positioned.tenant_id = cards.tenant_id
        and positioned.charge_code = cards.charge_code
        and positioned.activity_date >= cards.effective_from
        and positioned.activity_date < cards.effective_to
),

portions as (
    select
        tiers.*,
        case
            when tier_mode = 'whole_volume' then
                case when tier_min = whole_volume_tier_min then quantity else 0 end
            -- marginal: overlap of the activity's positions (quantity_before, quantity_before + quantity]
            -- with the tier's positions (tier_min - 1, tier_max]
            else greatest(
                0,
                least(quantity_before + quantity, coalesce(cast(tier_max as numeric), quantity_before + quantity))
                - greatest(quantity_before, cast(tier_min as numeric) - 1)
            )
        end as tier_quantity
    from tiers
),

priced as (
    select
        tenant_id,
        order_id,
        charge_code,
        max(rate_card_id) as rate_card_id,
        max(markup_pct) as markup_pct,
        max(rate_card_version) as rate_card_version,
        max(tier_mode) as tier_mode,
        min(tier_min) as tier_min,
        case when count(*) = count(tier_max) then max(tier_max) end as tier_max,
        count(*) as tier_count,
        sum(tier_quantity) as priced_quantity,
        sum(tier_quantity * unit_price) as exact_amount,
        max(unit_price) as unit_price,
        jsonb_agg(
            jsonb_build_object(
                'tier_min', tier_min, 'tier_max', tier_max, 'quantity', tier_quantity, 'unit_price', unit_price
            ) order by tier_min
        ) as tiers
    from portions
    where tier_quantity > 0
    group by tenant_id, order_id, charge_code
)

select
    positioned.tenant_id,
    positioned.order_id,
    positioned.charge_code,
    positioned.period_start,
    positioned.period_end,
    positioned.quantity,
    case
        when positioned.charge_code = 'SHIPPING' and priced.priced_quantity = positioned.quantity
            then cast({{ round_money('priced.exact_amount') }} as numeric(14, 6))
        when priced.tier_count = 1 then cast(priced.unit_price as numeric(14, 6))
        when priced.tier_count > 1 then cast(priced.exact_amount / positioned.quantity as numeric(14, 6))
    end as unit_rate,
    case when priced.priced_quantity = positioned.quantity then {{ round_money('priced.exact_amount') }} end
        as amount,
    positioned.currency,
    priced.rate_card_id,
    priced.rate_card_version,
    priced.tier_mode,
    priced.tier_min,
    priced.tier_max,
    positioned.period_quantity,
    positioned.quantity_before,
    priced.tiers as tier_detail,
    positioned.postage,
    priced.markup_pct,
    case
        when priced.rate_card_id is null then 'no_rate_card'
        when priced.priced_quantity <> positioned.quantity then 'tier_gap'
        else 'priced'
    end as pricing_status,
    positioned.activity_at,
    positioned.activity_date,
    positioned.source_event_ids
from positioned
left join priced
    on positioned.tenant_id = priced.tenant_id
    and positioned.order_id = priced.order_id
    and positioned.charge_code = priced.charge_code
