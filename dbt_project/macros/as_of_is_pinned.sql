{#- True when the build evaluates a fixed instant (`--vars '{"as_of": ...}'`), false for a live build (now). -#}
{% macro as_of_is_pinned() -%}
    {%- set as_of = var('as_of', none) -%}
    {{- return(not (as_of is none or (as_of | string | trim) in ('', 'None', 'null', 'now'))) -}}
{%- endmacro %}
