"""Read-only access for BI tools (DESIGN §7): the ``e2a_bi`` role and optional per-tenant roles.

- ``e2a_bi`` (LOGIN, read-only): USAGE on ``marts`` and ``actions``, SELECT on their tables and views (also the
  ones created later: default privileges), nothing on ``raw``, ``ops``, ``staging``, ``intermediate``; no
  temporary tables (TEMP is revoked from PUBLIC and granted back to E²A's own role only) and no CREATE anywhere.
  On the embedded server BI roles connect over TCP with their password (SCRAM), never through the socket.
- ``e2a_bi_<tenant>`` (LOGIN, read-only, optional): members of the NOLOGIN group ``e2a_bi_tenants``. Every
  marts/actions table has row-level security; the group's policy keeps the rows whose ``tenant_id`` equals the
  role name after ``e2a_bi_``. Views run as the querying role (``security_invoker``), so the same policies apply.
  A relation without ``tenant_id`` is not visible to tenant roles at all.

The per-relation part lives in the SQL function ``ops.apply_bi_access(regclass)`` (migration 7), which the dbt
post-hook ``apply_bi_access`` calls on every mart after each build (dbt recreates tables: a new table is never
committed without its policies). Passwords come from the environment (``E2A_BI_PASSWORD``,
``E2A_BI_PASSWORD_<TENANT>``); when unset, one is generated once and kept in ``E2A_HOME/secrets/<role>.password``
(mode 0600) so a local BI tool can connect. Never in a table, never logged."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from e2a_dagster.lib.core.database import ConnectionInfo

BI_ROLE = "e2a_bi"
TENANT_GROUP = "e2a_bi_tenants"
TENANT_ROLE_PREFIX = "e2a_bi_"
BI_SCHEMAS = ("marts", "actions")
_TENANT_RE = re.compile(r"^[a-z0-9_-]{1,56}$")


class BIAccessError(RuntimeError):
    """The BI roles could not be set up (e.g. the database user may not create roles)."""


class InvalidTenantError(ValueError):
    """A tenant id that cannot name a BI role."""


def tenant_role(tenant_id: str) -> str:
    if not _TENANT_RE.match(tenant_id):
        raise InvalidTenantError(
            f"{tenant_id!r} is not a tenant id (lower-case letters, digits, '_' and '-', at most 56 characters)"
        )
    return TENANT_ROLE_PREFIX + tenant_id


def password_env_var(role: str) -> str:
    """``E2A_BI_PASSWORD`` for ``e2a_bi``; ``E2A_BI_PASSWORD_<TENANT>`` (upper case, ``-`` → ``_``) for a tenant."""
    if role == BI_ROLE:
        return "E2A_BI_PASSWORD"
    return "E2A_BI_PASSWORD_" + role.removeprefix(TENANT_ROLE_PREFIX).upper().replace("-", "_")


@dataclass(frozen=True)
class RolePassword:
    value: str
    origin: str  # "env:<VAR>" or "file:<path>"


def role_password(role: str, home: Path, environ: dict[str, str] | None = None) -> RolePassword:
    """The role's password: from its environment variable, else generated once into ``home/secrets`` (0600)."""
    env = os.environ if environ is None else environ
    var = password_env_var(role)
    if env.get(var):
        return RolePassword(env[var], f"env:{var}")
    folder = home / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"{role}.password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    path.chmod(0o600)
    return RolePassword(path.read_text().strip(), f"file:{path}")


def _quote(conn: sa.Connection, identifier: str) -> str:
    return conn.exec_driver_sql("select quote_ident(%s)", (identifier,)).scalar_one()


def _ensure_login_role(conn: sa.Connection, role: str, password: str) -> None:
    q = _quote(conn, role)
    exists = conn.exec_driver_sql("select 1 from pg_roles where rolname = %s", (role,)).first()
    if not exists:
        conn.exec_driver_sql(f"create role {q} login")
    conn.exec_driver_sql(f"alter role {q} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls")
    # The password literal cannot be a bind parameter in ALTER ROLE; quote_literal makes it safe.
    literal = conn.exec_driver_sql("select quote_literal(%s)", (password,)).scalar_one()
    conn.exec_driver_sql(f"alter role {q} password {literal}")
    conn.exec_driver_sql(f"alter role {q} set default_transaction_read_only = on")


def bi_relations(conn: sa.Connection) -> list[str]:
    """Every table, view and materialized view in the BI schemas, as quoted ``schema.name``."""
    rows = conn.exec_driver_sql(
        """
        select format('%%I.%%I', n.nspname, c.relname)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
        order by 1
        """,
        (list(BI_SCHEMAS),),
    ).scalars()
    return list(rows)


def apply_bi_access(conn: sa.Connection) -> int:
    """Grants and row-level security on every existing marts/actions relation; returns how many."""
    relations = bi_relations(conn)
    for rel in relations:
        conn.exec_driver_sql("select ops.apply_bi_access(%s::regclass)", (rel,))
    return len(relations)


def ensure_bi_roles(
    engine: sa.Engine, home: Path, tenants: list[str] | None = None, environ: dict[str, str] | None = None
) -> dict[str, RolePassword]:
    """Create/refresh ``e2a_bi`` (and ``e2a_bi_<tenant>`` for ``tenants``), their grants, default privileges for
    future relations, and RLS on every existing relation. Idempotent. Returns each role's password origin."""
    passwords = {BI_ROLE: role_password(BI_ROLE, home, environ)}
    for tenant in tenants or []:
        passwords[tenant_role(tenant)] = role_password(tenant_role(tenant), home, environ)
    try:
        with engine.begin() as conn:
            # Role DDL is cluster-wide: serialize concurrent set-ups (two test sessions, dev + run).
            conn.exec_driver_sql("select pg_advisory_xact_lock(3634)")
            owner = _quote(conn, conn.exec_driver_sql("select current_user").scalar_one())
            _ensure_login_role(conn, BI_ROLE, passwords[BI_ROLE].value)
            if not conn.exec_driver_sql("select 1 from pg_roles where rolname = %s", (TENANT_GROUP,)).first():
                conn.exec_driver_sql(f"create role {TENANT_GROUP} nologin")
            for role, password in passwords.items():
                if role == BI_ROLE:
                    continue
                _ensure_login_role(conn, role, password.value)
                conn.exec_driver_sql(f"grant {TENANT_GROUP} to {_quote(conn, role)}")
            database = _quote(conn, conn.exec_driver_sql("select current_database()").scalar_one())
            conn.exec_driver_sql(f"grant connect on database {database} to {BI_ROLE}, {TENANT_GROUP}")
            # No scratch space for BI roles: TEMP is PUBLIC's by default, so it goes from PUBLIC (and from any
            # role it was granted to by name) and comes back for the role E²A itself runs as (dbt and the loader
            # use temporary tables). Nobody but the owner creates in schema public (the PostgreSQL 15+ default,
            # also on 14).
            bi_roles = ", ".join(_quote(conn, r) for r in passwords)
            conn.exec_driver_sql(f"revoke temporary on database {database} from public, {TENANT_GROUP}, {bi_roles}")
            conn.exec_driver_sql(f"grant temporary on database {database} to {owner}")
            conn.exec_driver_sql("revoke create on schema public from public")
            for schema in BI_SCHEMAS:
                conn.exec_driver_sql(f"grant usage on schema {schema} to {BI_ROLE}, {TENANT_GROUP}")
                # Future relations: e2a_bi reads them at once; tenant roles only after apply_bi_access (RLS).
                conn.exec_driver_sql(
                    f"alter default privileges for role {owner} in schema {schema} grant select on tables to {BI_ROLE}"
                )
            apply_bi_access(conn)
    except sa.exc.ProgrammingError as exc:
        raise BIAccessError(f"could not set up the BI roles (the database user needs CREATEROLE): {exc.orig}") from exc
    return passwords


def bi_connection(info: ConnectionInfo, role: str, password: str) -> ConnectionInfo:
    """The connection of a BI role on the same server and database as ``info``, over TCP (a unix socket in
    ``info`` means the embedded server, which listens on 127.0.0.1 at the same port) with the role's password."""
    host = "127.0.0.1" if info.is_socket else info.host
    return ConnectionInfo(host, info.port, role, password, info.dbname)
