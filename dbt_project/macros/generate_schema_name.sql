{#-
    Use a model's custom schema name verbatim (`marts`, not `public_marts`), so the
    schemas of DESIGN §7 are the same in every environment. Nodes without a custom
    schema (tests, ad-hoc models) go to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
