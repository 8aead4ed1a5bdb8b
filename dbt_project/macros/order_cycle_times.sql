{#-
    Order cycle times per tenant × warehouse × period of the paid date (warehouse local time), `grain` = 'day'
    or 'week' (ISO week, starting Monday). Calendar minutes from paid_at to handed_to_carrier_at and to
    delivered_at; p50/p90 are continuous percentiles (percentile_cont) over the orders that reached the
    milestone; null when none did. Cancelled orders are excluded.
-#}
{% macro order_cycle_times(grain) -%}
with orders as (
    select
        orders.tenant_id,
        orders.warehouse_id,
        cast(date_trunc('{{ grain }}', {{ local_date('orders.paid_at', 'warehouses.time_zone') }}) as date)
            as period_start,
        orders.paid_at,
        extract(epoch from orders.handed_to_carrier_at - orders.paid_at) / 60.0 as minutes_to_carrier,
        extract(epoch from orders.delivered_at - orders.paid_at) / 60.0 as minutes_to_delivery
    from {{ ref('fct_orders') }} as orders
    inner join {{ ref('warehouses') }} as warehouses on warehouses.warehouse_id = orders.warehouse_id
    where orders.paid_at is not null
      and not orders.is_cancelled
)

select
    cast(tenant_id as text) as tenant_id,
    cast(warehouse_id as text) as warehouse_id,
    cast(period_start as date) as period_start,
    cast(count(*) as integer) as paid_orders,
    cast(count(minutes_to_carrier) as integer) as handed_to_carrier_orders,
    cast(count(minutes_to_delivery) as integer) as delivered_orders,
    cast(round(cast(percentile_cont(0.5) within group (order by minutes_to_carrier) as numeric), 1) as numeric(12, 1))
        as p50_minutes_to_carrier,
    cast(round(cast(percentile_cont(0.9) within group (order by minutes_to_carrier) as numeric), 1) as numeric(12, 1))
        as p90_minutes_to_carrier,
    cast(round(cast(percentile_cont(0.5) within group (order by minutes_to_delivery) as numeric), 1) as numeric(12, 1))
        as p50_minutes_to_delivery,
    cast(round(cast(percentile_cont(0.9) within group (order by minutes_to_delivery) as numeric), 1) as numeric(12, 1))
        as p90_minutes_to_delivery
from orders
group by tenant_id, warehouse_id, period_start
{%- endmacro %}
