# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a botocore error means to an operator: the one place that turns them into VaultError sentences.

Every sentence names the vault (its URL and endpoint) and the key concerned, and says what to fix. Secrets never
reach a message: botocore's own texts hold none, and every message is scrubbed of the vault's secrets anyway.
"""

from __future__ import annotations

from .._errors import IntegrityError, VaultError

CREDENTIAL_CODES = frozenset(("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                              "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidClientTokenId"))
DIGEST_CODES = frozenset(("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"))
MISSING_KEY_CODES = frozenset(("NoSuchKey", "NoSuchVersion", "404", "NotFound"))
# botocore's names of a connection that could not be made or broke off (BotoCoreError subclasses)
NETWORK_ERRORS = frozenset(("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError",
                            "ReadTimeoutError", "HTTPClientError", "ProxyConnectionError", "ConnectionError",
                            "ResponseStreamingError", "IncompleteReadError", "ProtocolError"))
MASK = "********"


def error_code(exc):
    """The S3 error code of a ClientError ("AccessDenied", "NoSuchBucket", "404"...), None for other errors."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _detail(exc):
    code = error_code(exc)
    if code is None:
        return str(exc)
    message = exc.response.get("Error", {}).get("Message") or ""
    return "%s: %s" % (code, message) if message and message != code else code


def _network_error(exc):
    return any(cls.__name__ in NETWORK_ERRORS for cls in type(exc).__mro__)


def sentence(exc, vault, bucket, action, key=None, uploading=False):
    """(error class, message) for a botocore exception raised while doing `action` (a verb: "read", "list") on key."""
    code = error_code(exc)
    detail = _detail(exc)
    target = "%s %s" % (action, key) if key else action
    name = type(exc).__name__
    if uploading and (_network_error(exc) or code in ("NoSuchUpload", "ServiceUnavailable", "InternalError")):
        return VaultError, ("the vault %s went away while uploading %s: %s; nothing was stored under that key, the "
                            "upload can be run again" % (vault, key, detail))
    if code in DIGEST_CODES:
        return IntegrityError, ("the vault %s received other bytes than were sent to %s (%s): nothing was stored; "
                                "something between this host and the vault alters data" % (vault, target, detail))
    if code in CREDENTIAL_CODES:
        return VaultError, ("the vault %s refused the credentials (%s) to %s: check access_key and secret_key (or the "
                            "profile or environment they come from)" % (vault, detail, target))
    if code == "NoSuchBucket" or (code == "404" and key is None):
        return VaultError, ("the bucket %s does not exist on the vault %s: create it with versioning and Object Lock, "
                            "or correct the vault url" % (bucket, vault))
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return VaultError, ("the vault %s denied the request to %s (%s): the credentials lack that permission on "
                            "bucket %s, or the bucket does not exist" % (vault, target, detail, bucket))
    if code in MISSING_KEY_CODES:
        return VaultError, "%s is not on the vault %s (%s)" % (key, vault, detail)
    if code == "EntityTooSmall":
        return VaultError, ("the vault %s refused a part of %s as too small (%s): raise part_size to 5 MiB or more"
                            % (vault, key, detail))
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return VaultError, ("no usable credentials for the vault %s (%s): set access_key and secret_key, or a "
                            "profile or the AWS environment variables" % (vault, detail))
    if name == "ProfileNotFound":
        return VaultError, "the vault %s names an AWS profile that does not exist: %s" % (vault, detail)
    if name == "SSLError":
        return VaultError, ("the vault %s presented a TLS certificate this host does not trust (%s): give ca_bundle, "
                            "or correct endpoint_url" % (vault, detail))
    if _network_error(exc):
        return VaultError, ("the vault %s cannot be reached to %s (%s): check endpoint_url, the network and that the "
                            "server runs" % (vault, target, detail))
    if code is not None and code[:1] == "5" or code in ("ServiceUnavailable", "SlowDown", "InternalError"):
        return VaultError, "the vault %s failed to %s (%s): try again later" % (vault, target, detail)
    return VaultError, "the vault %s refused to %s: %s" % (vault, target, detail)


def translate(exc, vault, bucket, action, key=None, uploading=False, secrets=()):
    """The VaultError (IntegrityError for altered bytes) to raise for a botocore exception, without any secret."""
    error_class, message = sentence(exc, vault, bucket, action, key, uploading)
    for secret in secrets:
        if secret:
            message = message.replace(secret, MASK)
    return error_class(message, stage="vault")
