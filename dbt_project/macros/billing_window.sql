{#-
    The days a build of int_billable_activities_metered refreshes (Dagster's daily billing partitions).

    vars: billing_from / billing_to (ISO dates, inclusive) and billing_tenants (list of tenant ids).
    A partition key D means each tenant's own local calendar day D (tenant time zone, DESIGN §6), so the
    window is on activity_date, which is already local. No vars = every day of every tenant (a full build).
-#}
{% macro billing_window() -%}
    {%- set start = var('billing_from', none) -%}
    {%- set end = var('billing_to', none) -%}
    {%- set tenants = var('billing_tenants', none) -%}
    {%- if (start is none) != (end is none) -%}
        {{ exceptions.raise_compiler_error("billing_from and billing_to go together (got " ~ start ~ ", " ~ end ~ ")") }}
    {%- endif -%}
    {%- for value in [start, end] if value is not none -%}
        {%- if not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("billing_from / billing_to must be YYYY-MM-DD, got " ~ value) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if tenants is string -%}
        {%- set tenants = [tenants] -%}
    {%- endif -%}
    {%- for tenant in tenants or [] -%}
        {%- if not modules.re.match('^[A-Za-z0-9_.-]+$', tenant | string) -%}
            {{ exceptions.raise_compiler_error("billing_tenants: not a tenant id: " ~ tenant) }}
        {%- endif -%}
    {%- endfor -%}
    {{- return({
        'start': start | string if start is not none else none,
        'end': end | string if end is not none else none,
        'tenants': tenants or [],
        'all': start is none and not tenants,
    }) -}}
{%- endmacro %}

{#- SQL predicate: the row's (local date, tenant) is in the window being refreshed. -#}
{% macro in_billing_window(date_expr, tenant_expr) -%}
    {%- set w = billing_window() -%}
    {%- if w['all'] -%}
        true
    {%- else -%}
        (
        {%- if w['start'] is not none %} {{ date_expr }} between date '{{ w["start"] }}' and date '{{ w["end"] }}'{% endif -%}
        {%- if w['start'] is not none and w['tenants'] %} and{% endif -%}
        {%- if w['tenants'] %} {{ tenant_expr }} in ({% for t in w['tenants'] %}'{{ t }}'{{ ", " if not loop.last }}{% endfor %}){% endif %}
        )
    {%- endif -%}
{%- endmacro %}

{#-
    SQL predicate on an instant (timestamptz): it may fall on a window day in some tenant's zone. Zones are
    within ±14 h of UTC, so one day of margin on each side keeps every candidate; the exact local-date test
    comes after. Lets the window's inputs be found by index instead of reading all history.
-#}
{% macro near_billing_window(instant_expr) -%}
    {%- set w = billing_window() -%}
    {%- if w['start'] is none -%}
        true
    {%- else -%}
        ({{ instant_expr }} >= timestamptz '{{ w["start"] }} 00:00:00+00' - interval '1 day'
         and {{ instant_expr }} < timestamptz '{{ w["end"] }} 00:00:00+00' + interval '2 days')
    {%- endif -%}
{%- endmacro %}

{#- Tenant part of the window alone (true when all tenants). -#}
{% macro in_billing_tenants(tenant_expr) -%}
    {%- set w = billing_window() -%}
    {%- if w['tenants'] -%}
        {{ tenant_expr }} in ({% for t in w['tenants'] %}'{{ t }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#-
    Pre-hook: an existing table loses the rows of the window first (activities that vanished, e.g. an order
    cancelled since, must not survive); the insert then brings the window back, and the unique key removes an
    activity's row elsewhere when it moved into the window (a later carrier pickup correction). A build
    without a window empties the table: the same as a full rebuild. Runs in the model's transaction.
-#}
{% macro delete_billing_window() -%}
    {%- if this is not none and is_incremental() -%}
        delete from {{ this }} where {{ in_billing_window('activity_date', 'tenant_id') }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
