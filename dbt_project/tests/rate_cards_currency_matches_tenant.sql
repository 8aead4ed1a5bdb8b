-- A rate card is priced in its tenant's currency (money columns always travel with that currency).
-- An asset check on the rate cards (two parents: dagster-dbt needs to be told which one it checks).
{{ config(meta={'dagster': {'ref': {'name': 'rate_cards'}}}) }}
select
    rate_cards.rate_card_id,
    rate_cards.rate_card_version,
    rate_cards.charge_code,
    rate_cards.currency as rate_card_currency,
    tenants.currency as tenant_currency
from {{ ref('rate_cards') }} as rate_cards
inner join {{ ref('tenants') }} as tenants
    on rate_cards.tenant_id = tenants.tenant_id
where rate_cards.currency <> tenants.currency
