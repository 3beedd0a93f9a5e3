"""Opening a RosettaMQ SQLite file: identity and version checks, pragmas, migrations.

The file says what it is in its header: `PRAGMA application_id` is
`APPLICATION_ID` and `PRAGMA user_version` is the schema version. A schema
change is one function appended to `MIGRATIONS`: migration *i* (0-based) takes
a database from version *i* to *i + 1*, in one transaction together with the
new `user_version`, so a crash mid-migration leaves the old version intact.

Nothing is written before every check passed: a garbage file, another
application's database, a corrupt one or one from a newer RosettaMQ raises
`StoreError` naming the file, and the file is left untouched.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Sequence

from core.stores.base import StoreError

APPLICATION_ID = 0x524D5131  # "RMQ1"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
BUSY_TIMEOUT = 0.5  # seconds to wait for another process's lock before calling the file in use

Migration = Callable[[sqlite3.Connection], None]


def _v1_initial(db: sqlite3.Connection) -> None:
    """Sessions, their subscriptions, deliveries and inbound QoS 2 ids; retained messages."""
    db.execute(
        "CREATE TABLE sessions ("
        " client_id TEXT PRIMARY KEY, protocol TEXT NOT NULL, expiry_interval INTEGER NOT NULL,"
        " username TEXT, disconnected_at REAL, will BLOB, will_delay INTEGER NOT NULL,"
        " will_expiry_interval INTEGER)"
    )
    db.execute(
        "CREATE TABLE subscriptions ("
        " client_id TEXT NOT NULL, topic_filter TEXT NOT NULL, qos INTEGER NOT NULL,"
        " no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL,"
        " retain_handling INTEGER NOT NULL, subscription_id INTEGER,"
        " PRIMARY KEY (client_id, topic_filter)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE deliveries ("
        " client_id TEXT NOT NULL, seq INTEGER NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
        " subscription_ids TEXT NOT NULL, packet_id INTEGER, released INTEGER NOT NULL,"
        " message BLOB NOT NULL, PRIMARY KEY (client_id, seq))"
    )
    db.execute(
        "CREATE TABLE incoming_qos2 ("
        " client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,"
        " PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID"
    )
    db.execute("CREATE TABLE retained (topic TEXT PRIMARY KEY, message BLOB NOT NULL)")


def _v2_records(db: sqlite3.Connection) -> None:
    """Adapters' opaque records (AMQP durable state, LwM2M registrations): bytes under (kind, key).

    A rowid table (values may be whole messages) with its primary key as a unique index.
    """
    db.execute(
        "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (kind, key))"
    )


MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_records)


def open_database(
    path: str, *, migrations: Sequence[Migration] = MIGRATIONS, synchronous: str = "FULL"
) -> sqlite3.Connection:
    """A connection to `path` at the newest schema, in WAL mode and locked for this process."""
    if synchronous.upper() not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    try:
        _check_and_migrate(db, path, migrations, synchronous)
    except BaseException:
        db.close()
        raise
    return db


def _check_and_migrate(db: sqlite3.Connection, path: str, migrations: Sequence[Migration], synchronous: str) -> None:
    known = len(migrations)
    try:
        # One process owns the file: a second gateway on it fails here instead of interleaving writes.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        app_id = _pragma(db, "application_id")
        version = _pragma(db, "user_version")
        if app_id not in (0, APPLICATION_ID):
            raise StoreError(f"{path} is not a RosettaMQ store (SQLite application id {app_id:#x})")
        if app_id == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(f"{path} is an SQLite database of another application, not a RosettaMQ store")
        if version > known:
            raise StoreError(
                f"{path} was written by a newer RosettaMQ (schema v{version}, this build knows v{known}); "
                "upgrade RosettaMQ or point [store] path at another file"
            )
        if version:
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise StoreError(f"{path} is corrupt: {'; '.join(problems)}")
        if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now, even with nothing to migrate
        db.execute("COMMIT")
        for target in range(version + 1, known + 1):
            _migrate(db, path, migrations[target - 1], target)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(f"{path} is in use by another process") from exc
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable RosettaMQ store: {exc}") from exc


def _migrate(db: sqlite3.Connection, path: str, migration: Migration, target: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        migration(db)
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={target}")
        db.execute("COMMIT")
    except BaseException as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if isinstance(exc, Exception) and not isinstance(exc, StoreError):
            raise StoreError(f"{path}: migration to schema v{target} failed: {exc}") from exc
        raise


def _pragma(db: sqlite3.Connection, name: str) -> int:
    return int(db.execute(f"PRAGMA {name}").fetchone()[0])
