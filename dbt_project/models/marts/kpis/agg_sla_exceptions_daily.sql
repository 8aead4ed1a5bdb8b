-- KPI: SLA exceptions opened per tenant, warehouse, stage, severity and local date of opening (= due), with
-- how many are resolved, still open or cancelled, and the mean time to resolve the resolved ones.
with exceptions as (
    select
        exceptions.tenant_id,
        exceptions.warehouse_id,
        exceptions.stage,
        exceptions.severity,
        {{ local_date('exceptions.opened_at', 'warehouses.time_zone') }} as opened_local_date,
        exceptions.status,
        case when exceptions.status = 'resolved'
            then extract(epoch from exceptions.resolved_at - exceptions.opened_at) / 60.0
        end as minutes_to_resolve
    from {{ ref('fct_sla_exceptions') }} as exceptions
    inner join {{ ref('warehouses') }} as warehouses on warehouses.warehouse_id = exceptions.warehouse_id
    -- at_risk exceptions have not opened (opened_at = due is still ahead)
    where exceptions.status in ('open', 'resolved', 'cancelled')
)

select
    cast(tenant_id as text) as tenant_id,
    cast(warehouse_id as text) as warehouse_id,
    cast(stage as text) as stage,
    cast(severity as text) as severity,
    cast(opened_local_date as date) as opened_local_date,
    cast(count(*) as integer) as opened_count,
    cast(count(*) filter (where status = 'resolved') as integer) as resolved_count,
    cast(count(*) filter (where status = 'open') as integer) as open_count,
    cast(count(*) filter (where status = 'cancelled') as integer) as cancelled_count,
    cast(round(cast(avg(minutes_to_resolve) as numeric), 1) as numeric(12, 1)) as mean_minutes_to_resolve
from exceptions
group by tenant_id, warehouse_id, stage, severity, opened_local_date
