# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 store without a server: botocore's own exceptions told as sentences (s3errors), bad settings refused,
and a host without boto3 told which package to install."""

from __future__ import annotations

import subprocess
import sys

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from testlib import ROOT
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    IntegrityError, UsageError, VaultError)
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store, s3errors

VAULT = "s3://vault/prefix (endpoint https://s3.example.net)"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def client_error(code, message="", status=400):
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "UploadPart")


@pytest.mark.parametrize("exc, error_class, message", [
    (client_error("BadDigest", "The Content-Md5 you specified did not match what we received."), IntegrityError,
     "the vault %s received other bytes than were sent to upload k/b1 (BadDigest: The Content-Md5 you specified did "
     "not match what we received.): nothing was stored; something between this host and the vault alters data"),
    (client_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist."), VaultError,
     "the vault %s refused the credentials (InvalidAccessKeyId: The AWS Access Key Id you provided does not exist.) "
     "to upload k/b1: check access_key and secret_key (or the profile or environment they come from)"),
    (client_error("NoSuchBucket", "The specified bucket does not exist", 404), VaultError,
     "the bucket vault does not exist on the vault %s: create it with versioning and Object Lock, or correct the "
     "vault url"),
    (client_error("SlowDown", "Reduce your request rate.", 503), VaultError,
     "the vault %s failed to upload k/b1 (SlowDown: Reduce your request rate.): try again later"),
    (client_error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size."),
     VaultError, "the vault %s refused a part of k/b1 as too small (EntityTooSmall: Your proposed upload is smaller "
                 "than the minimum allowed object size.): raise part_size to 5 MiB or more"),
    (NoCredentialsError(), VaultError,
     "no usable credentials for the vault %s (Unable to locate credentials): set access_key and secret_key, or a "
     "profile or the AWS environment variables"),
    (EndpointConnectionError(endpoint_url="https://s3.example.net/vault"), VaultError,
     "the vault %s cannot be reached to upload k/b1 (Could not connect to the endpoint URL: "
     "\"https://s3.example.net/vault\"): check endpoint_url, the network and that the server runs"),
], ids=["digest", "credentials", "bucket", "slowdown", "part-size", "no-credentials", "unreachable"])
def test_botocore_errors_become_sentences(exc, error_class, message):
    error = s3errors.translate(exc, VAULT, "vault", "upload", "k/b1")
    assert isinstance(error, error_class)
    assert (error.msg, error.stage) == (message % VAULT, "vault")


def test_a_connection_lost_while_uploading_says_the_vault_went_away():
    error = s3errors.translate(EndpointConnectionError(endpoint_url="https://s3.example.net/vault"), VAULT, "vault",
                               "upload", "k/b1", uploading=True)
    assert error.msg == ("the vault %s went away while uploading k/b1: Could not connect to the endpoint URL: "
                         "\"https://s3.example.net/vault\"; nothing was stored under that key, the upload can be run "
                         "again" % VAULT)


def test_a_secret_echoed_by_a_server_is_masked():
    error = s3errors.translate(client_error("InvalidRequest", "bad header %s" % SECRET), VAULT, "vault", "upload",
                               "k/b1", secrets=[SECRET, None])
    assert error.msg == "the vault %s refused to upload k/b1: InvalidRequest: bad header ********" % VAULT


@pytest.mark.parametrize("option, value, message", [
    ("addressing_style", "dns", "vault s3://vault: addressing_style 'dns' is not auto, path or virtual"),
    ("part_size", 1 << 20, "vault s3://vault: part_size must be a number of bytes from 5 MiB to 5 GiB"),
])
def test_bad_settings_are_refused(option, value, message):
    with pytest.raises(UsageError) as caught:
        open_store({"url": "s3://vault", option: value})
    assert caught.value.msg == message


def test_without_boto3_the_message_names_the_package():
    # A real interpreter in which boto3 cannot be imported, as on a host without python3-boto3.
    code = ("import sys; sys.modules['boto3'] = None; sys.path.insert(0, %r)\n"
            "from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store\n"
            "from ansible_collections.lifeboat.backup.plugins.module_utils._errors import MissingDependencyError\n"
            "try:\n    open_store({'url': 's3://vault/p'})\n"
            "except MissingDependencyError as exc:\n    print(exc.msg)\n") % (ROOT + "/build/pytest-collections")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == ("the vault s3://vault/p is on S3, which needs boto3: install python3-boto3 (Debian, "
                             "Ubuntu) or pip install boto3\n")
