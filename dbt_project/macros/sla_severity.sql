{#- DESIGN §5: minor <= major_after_minutes < major <= critical_after_minutes < critical; null when not late. -#}
{% macro sla_severity(minutes_late, major_after, critical_after) -%}
    case
        when ({{ minutes_late }}) is null then null
        when ({{ minutes_late }}) <= ({{ major_after }}) then 'minor'
        when ({{ minutes_late }}) <= ({{ critical_after }}) then 'major'
        else 'critical'
    end
{%- endmacro %}
