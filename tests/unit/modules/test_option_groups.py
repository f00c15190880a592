# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option groups: each the twin of its doc fragment, how groups add up, and what the engine reads from them."""

from __future__ import annotations

import importlib
import os
import pickle

import pytest
import yaml

import testlib
from testlib import IDENTITY
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _hooks, _option_groups
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, UsageError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import (
    ARCHIVE_OPTIONS, CONNECTION, DECRYPTION, DUMP_OPTIONS, ENCRYPTION, RETENTION, OptionGroup, build_policy)

ROOT = testlib.ROOT
FIELDS = ("type", "elements", "default", "choices", "required")
KINDS = ("type", "elements", "choices")
# Keys of an agent job that configure the role or the command, not a module.
AGENT_ONLY = ("schedule", "ping_url", "databases", "retention", "vaults", "hooks")
GROUPS = {name: group for name, group in vars(_option_groups).items() if isinstance(group, OptionGroup)}


def described(options):
    """What a spec and its documentation must agree on, per option; unset fields and required: false left out."""
    return {name: {field: spec[field] for field in FIELDS
                   if spec.get(field) is not None and not (field == "required" and spec[field] is False)}
            for name, spec in options.items()}


def fragment_options(name):
    module = importlib.import_module("ansible_collections.lifeboat.backup.plugins.doc_fragments." + name)
    return yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("name", sorted(name for name, group in GROUPS.items() if group.fragment))
def test_each_group_names_the_options_of_its_doc_fragment_alike(name):
    group = GROUPS[name]
    assert described(fragment_options(group.fragment)) == described(group.options)


def test_every_doc_fragment_with_options_is_the_twin_of_a_group():
    with_options = {name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "doc_fragments"))
                    if name.endswith(".py") and fragment_options(name[:-3])}
    assert with_options == {group.fragment for group in GROUPS.values() if group.fragment}


def test_the_agent_role_documents_a_jobs_keys_as_the_modules_options_without_their_defaults():
    with open(os.path.join(ROOT, "roles", "agent", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        job = yaml.safe_load(handle)["argument_specs"]["main"]["options"]["agent_jobs"]["options"]
    assert set(job["retention"]["options"]) == set(RETENTION.options)
    assert tuple(job["hooks"]["options"]) == _hooks.STAGES
    for keys, group, names in (({k: v for k, v in job.items() if k not in AGENT_ONLY}, ARCHIVE_OPTIONS, {"name": "job"}),
                               (job["databases"]["options"], DUMP_OPTIONS, {"name": "database"}),
                               (job["retention"]["options"], RETENTION, {})):
        for key, spec in keys.items():
            option = group.options.get(names.get(key, key))
            assert option is not None, "%s is no option of the modules" % key
            assert {kind: spec.get(kind) for kind in KINDS} == {kind: option.get(kind) for kind in KINDS}, key
            assert "default" not in spec or option.get("required"), "%s restates the module's default" % key


def test_an_option_defined_differently_by_two_groups_is_refused():
    with pytest.raises(ValueError, match="option passphrase is defined twice, differently"):
        ENCRYPTION + OptionGroup(dict(passphrase=dict(type="str")))
    with pytest.raises(TypeError, match="unknown rule"):
        OptionGroup({}, mutualy_exclusive=[("a", "b")])


def test_a_sum_keeps_every_rule_and_each_groups_reading():
    own = OptionGroup(dict(id=dict(type="str"), job=dict(type="str")), rename={"id": "backup_id"},
                      required_by={"job": "id"}, mutually_exclusive=[("id", "identity")])
    total = own + ENCRYPTION + DECRYPTION + CONNECTION.gathered("connection")
    kwargs = total.module_kwargs()
    assert kwargs["mutually_exclusive"] == [("id", "identity"), ("recipients", "passphrase"),
                                            ("identity", "passphrase", "file_key"), ("header_only", "file_key")]
    assert kwargs["required_by"] == {"job": "id"}
    assert set(kwargs["argument_spec"]) == {"id", "job", "recipients", "passphrase", "identity", "file_key",
                                            "header_only", "login_host",
                                            "login_port", "login_user", "login_password", "login_unix_socket"}
    assert kwargs["argument_spec"]["passphrase"]["no_log"] is True
    arguments = total.read({"id": "app-1", "passphrase": "secret", "login_user": "backup", "unrelated": 1})
    key = arguments.pop("key")
    assert arguments.pop("header_only") is False
    assert arguments == {"backup_id": "app-1", "job": None, "recipients": [], "passphrase": "secret",
                         "connection": {"login_host": None, "login_port": None, "login_user": "backup",
                                        "login_password": None, "login_unix_socket": None}}
    assert (key.kind, key.passphrase, repr(key)) == ("passphrase", "secret", "Key(passphrase)")


def test_a_missing_or_null_option_takes_its_default_and_defaults_are_never_shared():
    first = RETENTION.defaults()
    first["keep_tags"].append("changed")
    assert RETENTION.defaults()["keep_tags"] == [] and RETENTION.options["keep_tags"]["default"] == []
    kwargs = ENCRYPTION.module_kwargs()
    kwargs["argument_spec"]["recipients"]["default"].append("age1changed")
    assert ENCRYPTION.options["recipients"]["default"] == []
    assert _option_groups.OUTPUT.read({"job": "app", "compression": None})["compression"] == "zstd"


def test_the_decryption_group_parses_the_identity_in_memory():
    identity = IDENTITY
    key = DECRYPTION.read({"identity": "# made by age-keygen\n" + identity.lower() + "\n"})["key"]
    assert (key.identities, key.passphrase) == ([identity], None)
    key = DECRYPTION.read({"identity": "", "passphrase": "secret"})["key"]
    assert (key.identities, key.passphrase) == ([], "secret")
    assert DECRYPTION.read({}) == {"key": None, "header_only": False}
    assert DECRYPTION.read({"file_key": _age.encode_file_key(bytes(16))})["key"].file_key == bytes(16)
    with pytest.raises(UsageError, match="no age identity found"):
        DECRYPTION.read({"identity": "# only a comment\n"})


def test_retention_reads_into_a_policy_and_refuses_what_it_does_not_know():
    policy = RETENTION.read({"keep_daily": 7, "keep_tags": ["pre-deploy"]})["policy"]
    assert (policy.daily, policy.last, policy.tags, policy.min_keep) == (7, 0, ("pre-deploy",), 1)
    with pytest.raises(UsageError, match="unknown retention option.s. keep_dayly: use keep_last, "):
        build_policy(keep_dayly=7)
    with pytest.raises(UsageError, match="keep daily"):
        RETENTION.read({"keep_daily": -2})


def test_an_errors_result_fields_are_its_own_and_survive_pickling():
    first, second = BackupError("failed", stage="load"), BackupError("failed too")
    first.result["rolled_back"] = True
    assert second.result == {}
    again = pickle.loads(pickle.dumps(first))
    assert (str(again), again.stage, again.result) == ("load: failed", "load", {"rolled_back": True})
