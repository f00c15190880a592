"""The roles' argument specs hide every secret: Ansible then masks the value wherever it would print it."""

import os
import re

import yaml
import testlib

ROOT = testlib.ROOT
# Option names that hold a secret: a password, a token-bearing URL, HTTP headers (Authorization).
SECRET_NAME = re.compile(r"password|passphrase|secret|token|identity|(^|_)url$|headers$")
# Names that match but hold no secret: where a vault is, and the path of the host's key.
NOT_SECRET = {"agent_vaults.url", "agent_vaults.endpoint_url", "agent_vaults.identity_file"}
SECRETS = {
    "agent": {"agent_jobs.databases.login_password", "agent_jobs.ping_url", "agent_vaults.secret_key",
              "agent_vaults.session_token"},
    "monitoring": {"monitoring_smtp_password", "monitoring_webhook_url", "monitoring_webhook_headers"},
    "vault": set(),
}


def options(spec, prefix=""):
    """Every option of a spec, nested ones as parent.child: its path -> its definition."""
    found = {}
    for name, definition in spec.items():
        found[prefix + name] = definition
        found.update(options(definition.get("options") or {}, prefix + name + "."))
    return found


def test_every_secret_option_is_no_log():
    secret_options = {}
    for role in sorted(os.listdir(os.path.join(ROOT, "roles"))):
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
        found = options(spec)
        secret_options[role] = {path for path in found
                                if SECRET_NAME.search(path.rsplit(".", 1)[-1]) and path not in NOT_SECRET}
        unmarked = sorted(path for path in secret_options[role] if found[path].get("no_log") is not True)
        assert unmarked == [], "%s: secret options without no_log: true" % role
    assert secret_options == SECRETS
