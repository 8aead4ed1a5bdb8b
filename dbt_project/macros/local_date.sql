{#- The local calendar date of a timestamptz in an IANA time zone (a column or literal). -#}
{% macro local_date(instant, time_zone) -%}
    cast(({{ instant }}) at time zone ({{ time_zone }}) as date)
{%- endmacro %}
