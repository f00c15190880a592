#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dump
short_description: Dump a PostgreSQL, MariaDB/MySQL or SQLite database into one compressed, encrypted artifact
version_added: 0.1.0
description:
  - Runs the engine's own dump tool (C(pg_dump), C(mariadb-dump) or C(mysqldump), SQLite's online backup) and
    streams its output through compression, age encryption and SHA-256 into O(backup_dir)/O(job)/, with a
    C(.sha256) sidecar in C(sha256sum -c) format and a C(.json) metadata sidecar that records the server version,
    the row count of every table and the schema version of the migration tool in use (Alembic, Django, Flyway,
    Rails).
  - The artifact gets its final name only after the dump tool exited successfully and, with O(read_back), once it
    was read back from the disk and its payload checked against what the tool gave; a dump that fails midway
    (tool killed, server gone, disk full) or does not read back as written leaves no artifact and no temporary file.
  - Every run writes a new backup, so the module always reports a change.
  - The dump is consistent while the application writes, C(pg_dump) by its snapshot, C(mariadb-dump) with
    C(--single-transaction) (InnoDB tables), SQLite by its online backup API.
  - "Artifacts: C(<id>.pgdump.zst.age) (O(format=custom)), C(<id>.sql.zst.age) (O(format=plain), MariaDB/MySQL),
    C(<id>.sqlite.zst.age), and C(<id>.tar.zst.age) for O(format=directory) or O(include_globals=true)."
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.output
  - lifeboat.backup.encryption
  - lifeboat.backup.connection
attributes:
  check_mode:
    support: full
    details: Checks that the client tool is installed, connects, checks that the database exists and reports its
      tables and row counts; writes nothing.
  diff_mode:
    support: none
options:
  engine:
    description:
      - The database engine. V(mysql) covers MariaDB and MySQL.
    type: str
    required: true
    choices: [postgresql, mysql, sqlite]
  database:
    description:
      - Name of the database to dump; for V(sqlite), the path of the database file.
    type: str
    required: true
  format:
    description:
      - PostgreSQL only. The C(pg_dump) format. V(custom) (the default) restores with C(pg_restore), selectively
        and in parallel; V(plain) is SQL for C(psql); V(directory) allows a parallel dump with O(jobs) and is
        stored as a tar of the dump directory.
    type: str
    choices: [custom, plain, directory]
  jobs:
    description:
      - PostgreSQL with O(format=directory) only. Number of tables C(pg_dump) dumps in parallel.
    type: int
    default: 1
  include_globals:
    description:
      - PostgreSQL only. Add the roles and tablespaces of the whole server (C(pg_dumpall --globals-only)); the
        artifact is then a tar holding C(globals.sql) and the database dump. Needs a superuser.
    type: bool
    default: false
  row_counts:
    description:
      - V(exact) counts the rows of every table (one C(count(*)) each, in one statement); V(estimated) takes the
        planner's statistics, instantly but approximately. SQLite counts are always exact.
    type: str
    choices: [exact, estimated]
    default: exact
notes:
  - "Privileges: PostgreSQL needs C(SELECT) on every table (C(pg_read_all_data) does it, or the owner);
    MariaDB/MySQL needs C(SELECT), C(SHOW VIEW), C(TRIGGER) and C(EVENT) on the database (C(--single-transaction)
    takes no table locks), and C(SELECT) on C(mysql.proc) for stored routines, which are silently left out
    without it. O(include_globals=true) needs a PostgreSQL superuser."
  - SQLite snapshots and PostgreSQL dump directories are written in plaintext to O(backup_dir)/.dump-tmp/
    (mode V(0700)) while they are archived and removed afterwards, on success and on failure alike.
requirements:
  - python >= 3.9 on the managed host
  - cryptography (for encryption)
  - zstandard (for O(compression=zstd))
  - the client tools of the engine on the managed host (Debian packages postgresql-client, mariadb-client)
seealso:
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.archive
"""

EXAMPLES = r"""
- name: Dump the application's PostgreSQL database before a deploy
  lifeboat.backup.dump:
    engine: postgresql
    database: shop
    login_unix_socket: /run/postgresql
    login_user: backup
    job: shop-db
    recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    tags: [pre-deploy]
    deploy_id: v42

- name: Parallel dump of a large database, with the server's roles
  lifeboat.backup.dump:
    engine: postgresql
    database: warehouse
    format: directory
    jobs: 4
    include_globals: true
    row_counts: estimated
    job: warehouse
    recipients: "{{ backup_recipients }}"

- name: Dump a MariaDB database over TCP
  lifeboat.backup.dump:
    engine: mysql
    database: wiki
    login_host: db.internal
    login_user: backup
    login_password: "{{ vault_wiki_backup_password }}"
    job: wiki-db
    recipients: "{{ backup_recipients }}"

- name: Snapshot an SQLite database while the application runs
  lifeboat.backup.dump:
    engine: sqlite
    database: /srv/app/data/app.db
    job: app-db
    recipients: "{{ backup_recipients }}"
"""

RETURN = r"""
id:
  description: Id of the backup written.
  returned: success, not in check mode
  type: str
  sample: shop-db-20261122T021500Z
path:
  description: Absolute path of the artifact.
  returned: success, not in check mode
  type: str
  sample: /var/backups/lifeboat/shop-db/shop-db-20261122T021500Z.pgdump.zst.age
sha256:
  description: SHA-256 of the artifact file, as in its C(.sha256) sidecar.
  returned: success, not in check mode
  type: str
size:
  description: Size of the artifact in bytes.
  returned: success, not in check mode
  type: int
server_version:
  description: Version of the database server (for SQLite, of the SQLite library).
  returned: success
  type: str
  sample: "16.4 (Debian 16.4-1.pgdg120+1)"
tables:
  description: Row count of every table, by name (C(schema.table) outside the C(public) schema).
  returned: success
  type: dict
  sample: {"orders": 1200, "customers": 310, "audit.log": 52000}
total_rows:
  description: Sum of the row counts of all tables.
  returned: success
  type: int
row_counts:
  description: V(exact) or V(estimated), how the row counts were taken.
  returned: success
  type: str
schema_version:
  description: Schema version recorded by the migration tool in use (Alembic, Django, Flyway, Rails), if any.
  returned: success
  type: str
  sample: ae1027a6acf
metadata:
  description:
    - The metadata sidecar of the backup. Its C(verification) is C(state=verified), C(level=full),
      C(method=read-back) when the artifact was read back (O(read_back)), else C(state=unverified).
  returned: success, not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._dump import DumpRequest, run_dump
from ..module_utils._option_groups import DUMP_OPTIONS, run_module


def main():
    module = AnsibleModule(supports_check_mode=True, **DUMP_OPTIONS.module_kwargs())
    run_module(module, DUMP_OPTIONS, lambda arguments: run_dump(DumpRequest(**arguments), check_mode=module.check_mode))


if __name__ == "__main__":
    main()
