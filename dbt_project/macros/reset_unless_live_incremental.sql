{#-
    Pre-hook of the live-incremental models: when an existing table is rebuilt in full (see
    is_live_incremental), empty it first so rows of another as_of or of older reference data cannot survive.
-#}
{% macro reset_unless_live_incremental(fingerprint_sql=none) -%}
    {%- if this is not none and is_incremental() and not is_live_incremental(fingerprint_sql) -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
