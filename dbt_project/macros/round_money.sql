{#-
    Money rounding of one line (DESIGN §6): to the cent, half-up. Apply it to non-negative amounts (credits
    are computed as positive amounts and negated afterwards), where PostgreSQL's numeric round (half away from
    zero) is exactly half-up. Never round a double: the expression is cast to numeric first.
-#}
{% macro round_money(expression) -%}
    round(cast({{ expression }} as numeric), 2)
{%- endmacro %}
