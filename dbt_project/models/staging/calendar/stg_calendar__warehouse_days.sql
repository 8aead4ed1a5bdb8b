-- Warehouse calendar days as written by the calendar asset, renamed and cast only.
select
    cast(warehouse_id as text) as warehouse_id,
    cast(local_date as date) as local_date,
    cast(time_zone as text) as time_zone,
    cast(is_business_day as boolean) as is_business_day,
    cast(open_at as timestamptz) as open_at,
    cast(close_at as timestamptz) as close_at,
    cast(cutoff_at as timestamptz) as cutoff_at,
    cast(day_start_at as timestamptz) as day_start_at,
    cast(day_end_at as timestamptz) as day_end_at,
    cast(is_public_holiday as boolean) as is_public_holiday,
    cast(is_carrier_business_day as boolean) as is_carrier_business_day,
    cast(holiday_name as text) as holiday_name,
    cast(exception_reason as text) as exception_reason
from {{ source('calendar', 'warehouse_calendar') }}
