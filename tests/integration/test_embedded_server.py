"""The embedded server's access rules on a server of its own (the only test that starts one: what it checks is
the server's configuration, which the shared test server cannot show from scratch)."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from e2a_dagster.lib.core import bi
from e2a_dagster.lib.core.database import PG_HBA, ConnectionInfo, EmbeddedServer, make_engine
from e2a_dagster.lib.core.schema import migrate

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("E2A_TEST_DATABASE_URL")), reason="the embedded server only (E2A_TEST_DATABASE_URL is set)"
)

# What an E²A home written before issue 17 held: initdb --auth=trust, so TCP let anyone in as anyone.
OLD_TRUSTING_HBA = """\
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
"""


def _refusal(url: str) -> str:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(url, connect_timeout=5).close()
    return str(info.value)


def test_an_old_trusting_home_is_locked_on_its_next_start(tmp_path):
    server = EmbeddedServer(tmp_path / "home")
    info = server.start()
    try:
        assert server.hba_file.read_text() == PG_HBA
        sock = os.stat(info.host)
        assert stat.S_IMODE(sock.st_mode) == 0o700  # only the server's OS user (and root) reach the socket
        engine = make_engine(info)
        migrate(engine)
        passwords = bi.ensure_bi_roles(engine, tmp_path / "home")
        engine.dispose()
        host, port = server.tcp_endpoint()
        bi_url = ConnectionInfo(host, port, "e2a_bi", passwords["e2a_bi"].value, info.dbname).url()
        psycopg.connect(bi_url).close()  # the right password

        # Turn the home into one an older E²A wrote, while the server runs: anyone is let in over TCP.
        server.hba_file.write_text(OLD_TRUSTING_HBA)
        with psycopg.connect(info.url(), autocommit=True) as conn:
            conn.execute("select pg_reload_conf()")
        wrong = ConnectionInfo(host, port, "e2a_bi", "wrong", info.dbname).url()
        psycopg.connect(wrong).close()  # the open door issue 17 found
        psycopg.connect(ConnectionInfo(host, port, "postgres", "", info.dbname).url()).close()

        # The next start (the server is still running) rewrites the rules and reloads them.
        again = server.start()
        assert again.host == info.host and server.hba_file.read_text() == PG_HBA
        assert "password authentication failed" in _refusal(wrong)
        assert "rejects connection" in _refusal(ConnectionInfo(host, port, "postgres", "", info.dbname).url())
        psycopg.connect(bi_url).close()
        with psycopg.connect(again.url()) as conn:  # E²A itself, over the socket
            assert conn.execute("select current_user").fetchone() == ("postgres",)
            listen = conn.execute("show listen_addresses").fetchone()[0]
        assert listen == "127.0.0.1"
    finally:
        server.stop()
