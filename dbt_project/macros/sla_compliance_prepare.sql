{#-
    Pre-hook of agg_sla_compliance_daily, in the build's transaction: a full build empties the table (as
    reset_unless_live_incremental does); a live build deletes the days it recounts (sla_compliance_affected_days),
    so a day that lost its last stage is gone rather than left with stale counts.
-#}
{% macro sla_compliance_prepare() -%}
    {%- if this is none or not is_incremental() -%}
        select 1
    {%- elif not sla_compliance_is_live() -%}
        delete from {{ this }}
    {%- else -%}
        delete from {{ this }} as compliance
        using ({{ sla_compliance_affected_days() }}) as affected
        where compliance.tenant_id = affected.tenant_id
          and compliance.warehouse_id = affected.warehouse_id
          and compliance.stage = affected.stage
          and compliance.due_local_date = affected.due_local_date
    {%- endif -%}
{%- endmacro %}
