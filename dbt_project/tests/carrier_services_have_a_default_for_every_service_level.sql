-- Every service level offered by some carrier also has a '*' (any carrier) row, so transit
-- days resolve for carriers that are unknown or not listed.
select distinct carrier_services.service_level as service_level_without_default
from {{ ref('carrier_services') }} as carrier_services
where not exists (
    select 1
    from {{ ref('carrier_services') }} as defaults
    where defaults.carrier = '*'
      and defaults.service_level = carrier_services.service_level
)
