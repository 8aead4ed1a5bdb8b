{#- `instant` plus a (possibly fractional) number of minutes, exact to the microsecond. -#}
{% macro add_minutes(instant, minutes) -%}
    (({{ instant }}) + make_interval(secs => cast(({{ minutes }}) * 60 as double precision)))
{%- endmacro %}
