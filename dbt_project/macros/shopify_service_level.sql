{#-
    A Shopify shipping line (code or title, free text set by the shop) as a canonical service level.
    Keyword rules, first match wins; anything else (standard, free shipping, economy, none) is `ground`.
-#}
{% macro shopify_service_level(method) -%}
    case
        when {{ method }} ~* '(overnight|next[ -]?day|same[ -]?day|one[ -]?day|1[ -]?day)' then 'overnight'
        when {{ method }} ~* '(express|expedited|priority|two[ -]?day|2[ -]?day|2nd[ -]?day)' then 'express'
        else 'ground'
    end
{%- endmacro %}
