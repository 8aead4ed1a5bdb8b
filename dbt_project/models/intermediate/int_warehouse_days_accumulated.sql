{{ config(
    indexes=[
        {'columns': ['warehouse_id', 'local_date'], 'unique': True},
        {'columns': ['warehouse_id', 'cum_minutes_after', 'local_date']},
        {'columns': ['warehouse_id', 'carrier_day_number']},
    ]
) }}
-- The business-time model of DESIGN §5: one row per warehouse and local date with the day's business
-- minutes and their running sums, so that business-time arithmetic is a join, never a loop:
--   position(instant)  = cum_minutes_before + minutes since opening, clamped   (macro business_minute_position)
--   instant(position p) = the business day with cum_minutes_before < p <= cum_minutes_after,
--                         at open_at + (p - cum_minutes_before) minutes       (one index probe)
-- Positions are relative to the calendar window: store instants and differences, never positions.
with days as (
    select * from {{ ref('stg_calendar__warehouse_days') }}
),

minutes as (
    select
        days.*,
        cast(case
            when is_business_day then extract(epoch from close_at - open_at) / 60
            else 0
        end as numeric) as business_minutes
    from days
),

accumulated as (
    select
        minutes.*,
        sum(business_minutes) over (
            partition by warehouse_id order by local_date rows between unbounded preceding and current row
        ) as cum_minutes_after,
        sum(case when is_carrier_business_day then 1 else 0 end) over (
            partition by warehouse_id order by local_date rows between unbounded preceding and current row
        ) as carrier_day_number
    from minutes
)

select
    warehouse_id,
    local_date,
    time_zone,
    is_business_day,
    is_carrier_business_day,
    open_at,
    close_at,
    cutoff_at,
    day_start_at,
    day_end_at,
    holiday_name,
    business_minutes,
    cum_minutes_after - business_minutes as cum_minutes_before,
    cum_minutes_after,
    cast(carrier_day_number as integer) as carrier_day_number,
    -- the next business day strictly after this date (for the cutoff rule)
    min(case when is_business_day then close_at end) over (
        partition by warehouse_id order by local_date rows between 1 following and unbounded following
    ) as next_business_close_at,
    min(case when is_business_day then cum_minutes_after end) over (
        partition by warehouse_id order by local_date rows between 1 following and unbounded following
    ) as next_business_cum_minutes_after
from accumulated
