{{ config(materialized='view', tags=['sla']) }}
-- SLA exceptions (DESIGN §5): one per (tenant, order, stage) that is at risk, overdue or late, with an id
-- that is a hash of the three (stable across rebuilds). It opens at due and resolves when the late milestone
-- lands; an open one whose order is cancelled closes as cancelled instead of vanishing. A view over
-- fct_sla_evaluations: always consistent with it, never duplicated.
select
    cast({{ dbt.hash("tenant_id || '|' || order_id || '|' || stage") }} as text) as exception_id,
    tenant_id,
    order_id,
    stage,
    warehouse_id,
    cast(case status
        when 'at_risk' then 'at_risk'
        when 'overdue' then 'open'
        when 'late' then 'resolved'
        when 'cancelled' then 'cancelled'
    end as text) as status,
    status as sla_status,
    cast(case
        when status = 'cancelled'
            then {{ sla_severity('extract(epoch from cancelled_at - due_at) / 60', 'major_after_minutes', 'critical_after_minutes') }}
        else severity
    end as text) as severity,
    reason_code,
    policy_id,
    policy_version,
    started_at,
    due_at,
    due_at as opened_at,
    cast(case when status = 'late' then ended_at when status = 'cancelled' then cancelled_at end as timestamptz)
        as resolved_at,
    cast(case
        when status = 'cancelled' then round(cast(extract(epoch from cancelled_at - due_at) / 60 as numeric), 2)
        else minutes_late
    end as numeric(14, 2)) as minutes_late,
    as_of
from {{ ref('fct_sla_evaluations') }}
where status in ('at_risk', 'overdue', 'late')
   or (status = 'cancelled' and cancelled_at > due_at)
