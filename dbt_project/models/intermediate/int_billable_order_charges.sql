{{ config(materialized='view', tags=['invoice', 'billable_daily']) }}
-- The metering rule of an order, written once (DESIGN §6): the charges an order in marts.fct_orders implies
-- now, with their quantity and local day. Every order handed to the carrier and not cancelled bills
--   ORDER_FEE    1
--   PICK_UNIT    its units (from pick_completed, else the line items: fct_orders), when > 0
--   PACK_CARTON  its cartons, else 1
--   SHIPPING     its label's postage (the rate card adds the markup), when > 0
-- on the local day (tenant time zone) of handed_to_carrier_at. RETURN_FEE follows return events, not
-- fct_orders: int_billable_activities_metered meters it.
--
-- A view, read by int_billable_activities_metered (for the days it rebuilds) and by the stale-day check in
-- lib/invoicing/billing_periods.py (CHANGED_SQL: which billed days an order rewritten since, by built_at, changed). Tagged billable_daily, so
-- it belongs to the daily-partitioned asset and every build of the metered model (re)creates it first.
with tenants as (
    select tenant_id, time_zone from {{ ref('tenants') }}
),

charges as (
    select
        orders.tenant_id,
        orders.order_id,
        charges.charge_code,
        case charges.charge_code
            when 'ORDER_FEE' then cast(1 as numeric)
            when 'PICK_UNIT' then cast(orders.units as numeric)
            when 'PACK_CARTON' then cast(coalesce(orders.cartons, 1) as numeric)
            when 'SHIPPING' then cast(orders.postage as numeric)
        end as quantity,
        orders.handed_to_carrier_at as activity_at,
        {{ local_date('orders.handed_to_carrier_at', 'tenants.time_zone') }} as activity_date,
        orders.built_at
    from {{ ref('fct_orders') }} as orders
    inner join tenants on orders.tenant_id = tenants.tenant_id
    cross join (values ('ORDER_FEE'), ('PICK_UNIT'), ('PACK_CARTON'), ('SHIPPING')) as charges (charge_code)
    where orders.handed_to_carrier_at is not null
      and not orders.is_cancelled
)

select tenant_id, order_id, charge_code, quantity, activity_at, activity_date, built_at
from charges
where quantity > 0
