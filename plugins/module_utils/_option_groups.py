# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option groups: options that go together, with their rules and what the engine makes of them.

A module adds its own OptionGroup to the shared ones below, builds AnsibleModule from the sum
(module_kwargs) and leaves through run_module, which reads the params into the engine's keyword
arguments. The on-host command reads a job file through the same groups as the archive and dump
modules, so a job's keys and defaults are the modules' options.

A group with a doc fragment names it (fragment); tests/unit/modules/test_option_groups.py keeps the two the same.
"""

from __future__ import annotations

import copy

from ._age import Key
from ._archive import ON_UNREADABLE
from ._catalog import DEFAULT_BACKUP_DIR
from ._compression import ALGORITHMS
from ._dump import ENGINES
from ._db import PG_FORMATS, ROW_COUNT_MODES
from ._errors import BackupError, UsageError
from ._incremental import DEFAULT_FULL_EVERY, DEFAULT_MAX_CHAIN
from ._retention import Policy
from ._vault import Vault

RULES = ("mutually_exclusive", "required_one_of", "required_together", "required_by")


class OptionGroup:
    """An argument spec, its rules (as AnsibleModule takes them) and how its values become engine arguments.

    read: values of the group's options -> keyword arguments of the engine; by default each option under its
    own name, or under rename[name]. Groups add up with +; an option both define must be defined alike.
    """

    def __init__(self, options, read=None, rename=None, fragment=None, **rules):
        unknown = set(rules) - set(RULES)
        if unknown:
            raise TypeError("unknown rule(s): %s" % ", ".join(sorted(unknown)))
        rename = rename or {}
        self.options = options
        self.fragment = fragment
        self.rules = rules
        self._readers = [(tuple(options), read or (lambda values: {rename.get(k, k): v for k, v in values.items()}))]

    def __add__(self, other):
        for name in set(self.options) & set(other.options):
            if self.options[name] != other.options[name]:
                raise ValueError("option %s is defined twice, differently" % name)
        total = OptionGroup(dict(self.options, **other.options))
        for rule in RULES:
            mine, theirs = self.rules.get(rule), other.rules.get(rule)
            if mine or theirs:
                total.rules[rule] = dict(mine or {}, **theirs or {}) if rule == "required_by" else \
                    list(mine or []) + list(theirs or [])
        total._readers = self._readers + other._readers
        return total

    def gathered(self, keyword):
        """This group read into one dict under keyword (the engine's connection=..., say)."""
        return OptionGroup(self.options, read=lambda values: {keyword: values}, fragment=self.fragment, **self.rules)

    def module_kwargs(self):
        """argument_spec and the rules, for AnsibleModule(**...)."""
        return copy.deepcopy(dict(self.rules, argument_spec=self.options))

    def defaults(self):
        return {name: copy.deepcopy(spec.get("default")) for name, spec in self.options.items()}

    def read(self, values):
        """The engine's keyword arguments from option values, a module's params or a job file's keys.

        An option that is missing or null takes its default, as an omitted module option does; other keys are
        not the group's and are left alone.
        """
        filled = self.defaults()
        filled.update((name, values[name]) for name in self.options if values.get(name) is not None)
        arguments = {}
        for names, read in self._readers:
            arguments.update(read({name: filled[name] for name in names}))
        return arguments


def _decryption_key(values):
    """The Key of the identity (its text parsed in memory: a malformed one fails before the artifact is opened), the
    passphrase or the file key (None without any), and whether only the artifact's header is asked for."""
    given = {name: values[name] or None for name in ("identity", "passphrase", "file_key")}
    key = Key(identities=given["identity"], passphrase=given["passphrase"], file_key=given["file_key"]) \
        if any(given.values()) else None
    return {"key": key, "header_only": values["header_only"]}


def build_policy(**options):
    """The retention Policy of the retention options; one not given (or null) takes its default, an unknown one or
    a bad value raises UsageError."""
    unknown = sorted(set(options) - set(RETENTION.options))
    if unknown:
        raise UsageError("unknown retention option(s) %s: use %s" % (", ".join(unknown), ", ".join(RETENTION.options)))
    values = RETENTION.defaults()
    values.update((name, value) for name, value in options.items() if value is not None)
    policy = Policy(last=values["keep_last"], hourly=values["keep_hourly"], daily=values["keep_daily"],
                    weekly=values["keep_weekly"], monthly=values["keep_monthly"], yearly=values["keep_yearly"],
                    within=values["keep_within"], tags=tuple(values["keep_tags"] or ()), min_keep=values["min_keep"],
                    safety_within=values["keep_safety_within"])
    policy.validate()
    return policy


# Where and how a new artifact is written (archive, dump).
OUTPUT = OptionGroup(dict(
    job=dict(type="str", required=True),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    compression=dict(type="str", default="zstd", choices=list(ALGORITHMS)),
    compression_level=dict(type="int"),
    tags=dict(type="list", elements="str", default=[]),
    description=dict(type="str"),
    deploy_id=dict(type="str"),
    lock_timeout=dict(type="float", default=0),
    read_back=dict(type="bool", default=True),
), fragment="output")

# Public-key or passphrase encryption of what is written.
ENCRYPTION = OptionGroup(dict(
    recipients=dict(type="list", elements="str", default=[]),
    passphrase=dict(type="str", no_log=True),
), fragment="encryption", mutually_exclusive=[("recipients", "passphrase")])

# What opens an artifact. The identity and the passphrase stay on the controller: the modules' action plugins
# (plugins/action/) ask the module for the artifact's header (header_only), unwrap the file key there and hand the
# module that one artifact's file key, which stays in memory and opens nothing else.
DECRYPTION = OptionGroup(dict(
    identity=dict(type="str", no_log=True),
    passphrase=dict(type="str", no_log=True),
    file_key=dict(type="str", no_log=True),
    header_only=dict(type="bool", default=False),
), read=_decryption_key, fragment="decryption",
    mutually_exclusive=[("identity", "passphrase", "file_key"), ("header_only", "file_key")])

# How to reach a PostgreSQL or MariaDB/MySQL server; the password only ever travels in memory.
CONNECTION = OptionGroup(dict(
    login_host=dict(type="str"),
    login_port=dict(type="int"),
    login_user=dict(type="str"),
    login_password=dict(type="str", no_log=True),
    login_unix_socket=dict(type="str"),
), fragment="connection")

# What prune keeps (the prune module, a job's retention), read into a Policy.
RETENTION = OptionGroup(dict(
    keep_last=dict(type="int", default=0),
    keep_hourly=dict(type="int", default=0),
    keep_daily=dict(type="int", default=0),
    keep_weekly=dict(type="int", default=0),
    keep_monthly=dict(type="int", default=0),
    keep_yearly=dict(type="int", default=0),
    keep_within=dict(type="str"),
    keep_tags=dict(type="list", elements="str", default=[]),
    min_keep=dict(type="int", default=1),
    keep_safety_within=dict(type="str", default="7d"),
), read=lambda values: {"policy": build_policy(**values)}, fragment="retention")

# One vault's settings: where copies go or come from and how to reach it (s3 or sftp), read into a dict; the
# credentials only ever travel in memory. A job file's vaults and the modules' vault option hold the same keys.
VAULT_SETTINGS = OptionGroup(dict(
    url=dict(type="str", required=True),
    name=dict(type="str"),
    host=dict(type="str"),
    endpoint_url=dict(type="str"),
    region=dict(type="str"),
    access_key=dict(type="str", no_log=True),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    profile=dict(type="str"),
    addressing_style=dict(type="str", default="auto", choices=["auto", "path", "virtual"]),
    validate_certs=dict(type="bool", default=True),
    ca_bundle=dict(type="path"),
    require_object_lock=dict(type="bool", default=True),
    part_size=dict(type="int"),
    identity_file=dict(type="path"),
    known_hosts_file=dict(type="path"),
    ssh_options=dict(type="list", elements="str", default=[]),
    connect_timeout=dict(type="int", default=30),
), read=lambda values: {"settings": values})


def read_vault(settings):
    """The Vault of one vault's settings (a module's vault option, an entry of the host's vaults file)."""
    if not isinstance(settings, dict):
        raise UsageError("a vault is a mapping with at least a url")
    unknown = sorted(set(settings) - set(VAULT_SETTINGS.options))
    if unknown:
        raise UsageError("unknown vault setting(s) %s: use %s" % (", ".join(unknown), ", ".join(VAULT_SETTINGS.options)))
    if not settings.get("url"):
        raise UsageError("a vault needs its url")
    return Vault(VAULT_SETTINGS.read(settings)["settings"])


# The vault a module reads from or copies to.
VAULT = OptionGroup(dict(
    vault=dict(type="dict", options=VAULT_SETTINGS.options),
), read=lambda values: {"vault": read_vault(values["vault"]) if values["vault"] else None}, fragment="vault")

# What the archive module backs up and how the tree is walked (its own options, documented in the module).
ARCHIVE = OptionGroup(dict(
    paths=dict(type="list", elements="path", required=True),
    exclude=dict(type="list", elements="str", default=[]),
    exclude_if_present=dict(type="list", elements="str", default=[]),
    respect_gitignore=dict(type="bool", default=False),
    default_excludes=dict(type="bool", default=True),
    skip_unchanged=dict(type="bool", default=False),
    on_unreadable=dict(type="str", default="fail", choices=list(ON_UNREADABLE)),
    incremental=dict(type="bool", default=False),
    full_every=dict(type="str", default=DEFAULT_FULL_EVERY),
    max_chain=dict(type="int", default=DEFAULT_MAX_CHAIN),
), mutually_exclusive=[("incremental", "skip_unchanged")])

# Which database the dump module dumps, and how (its own options, documented in the module).
DUMP = OptionGroup(dict(
    engine=dict(type="str", required=True, choices=list(ENGINES)),
    database=dict(type="str", required=True),
    format=dict(type="str", choices=list(PG_FORMATS)),
    jobs=dict(type="int", default=1),
    include_globals=dict(type="bool", default=False),
    row_counts=dict(type="str", default="exact", choices=list(ROW_COUNT_MODES)),
), rename={"format": "pg_format"})

# The options of the archive and dump modules, which are also the keys of a job file (_cli.run_job).
ARCHIVE_OPTIONS = ARCHIVE + OUTPUT + ENCRYPTION
DUMP_OPTIONS = DUMP + OUTPUT + ENCRYPTION + CONNECTION


def run_module(module, options, action, failure=None):
    """The one way out of every module: action(the params read through options) -> exit_json.

    An engine error becomes fail_json with its message, the stage that failed, its type and its result
    fields (BackupError.result) over failure, the fields the module returns on every failure.
    """
    try:
        result = action(options.read(module.params))
    except BackupError as exc:
        module.fail_json(msg=str(exc), stage=exc.stage, error=type(exc).__name__, **dict(failure or {}, **exc.result))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
