-- Every stage has a catch-all policy (tenant, warehouse, carrier and service level all '*'),
-- so the most-specific-match lookup of DESIGN §5 always finds a row.
with stages as (
    select 'pick' as stage
    union all select 'pack'
    union all select 'ship'
    union all select 'deliver'
),

defaults as (
    select distinct stage
    from {{ ref('sla_policies') }}
    where tenant_id = '*'
      and warehouse_id = '*'
      and carrier = '*'
      and service_level = '*'
)

select stages.stage as stage_without_default_policy
from stages
left join defaults
    on stages.stage = defaults.stage
where defaults.stage is null
