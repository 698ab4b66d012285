"""Exit 0 when the PostgreSQL of the tests (127.0.0.1:5432, trust auth) answers; else
say why on one line and exit 1 (``make test`` then skips its PostgreSQL pass, saying so)."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    engine = create_engine(URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any reason it cannot be used is a reason to skip
        print(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__}): "
              "the PostgreSQL pass of the tests is skipped", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
