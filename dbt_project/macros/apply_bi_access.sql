{#-
    Post-hook of every mart: grants and row-level security for the BI roles (see e2a_dagster/lib/core/bi.py).
    dbt recreates tables and views, which drops grants and policies; this hook runs inside the build's
    transaction, so a rebuilt relation is never committed without them. A no-op until migration 7 created
    ops.apply_bi_access (a database that E²A's Python side has not migrated).
-#}
{% macro apply_bi_access() -%}
do $bi$
begin
    if to_regprocedure('ops.apply_bi_access(regclass)') is not null then
        perform ops.apply_bi_access('{{ adapter.quote(this.schema) }}.{{ adapter.quote(this.identifier) }}'::regclass);
    end if;
end
$bi$
{%- endmacro %}
