-- Volume tiers of one (rate card version, charge code) cover 0..infinity without gaps or overlaps:
-- the first tier starts at 0, each next tier starts at the previous tier_max + 1 (bounds are
-- inclusive whole quantities), and only the last tier is open-ended (tier_max null).
with tiers as (
    select
        rate_card_id,
        rate_card_version,
        charge_code,
        tier_min,
        tier_max,
        lag(tier_max) over (
            partition by rate_card_id, rate_card_version, charge_code order by tier_min
        ) as previous_tier_max,
        row_number() over (
            partition by rate_card_id, rate_card_version, charge_code order by tier_min
        ) as tier_number,
        count(*) over (partition by rate_card_id, rate_card_version, charge_code) as tier_count
    from {{ ref('rate_cards') }}
)

select *
from tiers
where (tier_number = 1 and tier_min <> 0)
   or (tier_number > 1 and (previous_tier_max is null or tier_min <> previous_tier_max + 1))
   or (tier_number < tier_count and tier_max is null)
   or (tier_number = tier_count and tier_max is not null)
   or (tier_max is not null and tier_max < tier_min)
