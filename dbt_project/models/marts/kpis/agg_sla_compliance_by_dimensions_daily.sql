-- KPI: SLA compliance by tenant, warehouse, carrier, service level, stage and local due date.
-- Same counting rule as agg_sla_compliance_daily (a stage counts once due and not cancelled), one level finer;
-- counts are additive, so a BI tool rolls up by summing counts and recomputing 100 × met / due.
{%- set as_of = as_of_timestamp() %}

with flagged as (
    select
        tenant_id,
        warehouse_id,
        carrier,
        service_level,
        stage,
        due_local_date,
        status,
        {{ sla_is_due(as_of) }} as is_due
    from {{ ref('fct_sla_evaluations') }}
    where due_local_date is not null
),

counted as (
    select
        tenant_id,
        warehouse_id,
        carrier,
        service_level,
        stage,
        due_local_date,
        {{ sla_compliance_counts() }}
    from flagged
    group by tenant_id, warehouse_id, carrier, service_level, stage, due_local_date
)

select
    cast(tenant_id as text) as tenant_id,
    cast(warehouse_id as text) as warehouse_id,
    cast(carrier as text) as carrier,
    cast(service_level as text) as service_level,
    cast(stage as text) as stage,
    cast(due_local_date as date) as due_local_date,
    cast(due_count as integer) as due_count,
    cast(met_count as integer) as met_count,
    cast(late_count as integer) as late_count,
    cast(overdue_count as integer) as overdue_count,
    cast(cancelled_count as integer) as cancelled_count,
    {{ sla_compliance_pct() }} as compliance_pct,
    cast({{ as_of }} as timestamptz) as as_of
from counted
