# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The vault a module reads from or copies to; twin of _option_groups.VAULT.
    DOCUMENTATION = r"""
options:
  vault:
    description:
      - A vault that holds copies of this host's backups off the host, named by its O(vault.url).
      - On the vault a backup lives at C(PREFIX/HOST/JOB/ID.<suffix>) with C(ID.json) and, written last, C(ID.sha256);
        a copy counts only once its sidecar is there and matches.
      - Credentials stay in memory, never in a result or a log. See docs/vault.md for set-up recipes and the threat
        model.
    type: dict
    suboptions:
      url:
        description:
          - V(s3://BUCKET/PREFIX) for any S3 API (AWS, SeaweedFS, Ceph RGW, MinIO, Backblaze B2, Wasabi),
            V(sftp://USER@HOST[:PORT]/PATH) for an append-only SFTP vault (the P(lifeboat.backup.vault#role) role),
            V(file:///PATH) for a directory (the SFTP vault's own side, a mounted share).
          - Never holds a credential.
        type: str
        required: true
      name:
        description:
          - What the local metadata, results and metrics call this vault. Defaults to O(vault.url).
        type: str
      host:
        description:
          - The C(HOST) part of the layout. Playbooks pass the inventory name, so that a replacement host finds its
            predecessor's copies; defaults to the host's short host name.
        type: str
      endpoint_url:
        description:
          - S3 only. The S3 API's URL for a server other than AWS, e.g. V(https://s3.example.net).
        type: str
      region:
        description:
          - S3 only. The bucket's region (V(us-east-1) when unset and no AWS configuration names one).
        type: str
      access_key:
        description:
          - S3 only. The access key ID. Without it boto3's standard chain applies (environment, O(vault.profile),
            instance role).
        type: str
      secret_key:
        description:
          - S3 only. The secret access key.
        type: str
      session_token:
        description:
          - S3 only. A session token for temporary credentials.
        type: str
      profile:
        description:
          - S3 only. A profile of the AWS configuration files.
        type: str
      addressing_style:
        description:
          - S3 only. V(path) (C(https://endpoint/bucket/key)), V(virtual) (C(https://bucket.endpoint/key)) or V(auto).
        type: str
        choices: [auto, path, virtual]
        default: auto
      validate_certs:
        description:
          - S3 only. Check the endpoint's TLS certificate.
        type: bool
        default: true
      ca_bundle:
        description:
          - S3 only. A CA bundle to check the endpoint's certificate with.
        type: path
      require_object_lock:
        description:
          - S3 only. Refuse a bucket without versioning and an Object Lock default retention, whose copies the host's
            own credentials could destroy.
        type: bool
        default: true
      part_size:
        description:
          - S3 only. Bytes per part of a multipart upload; the default suits throughput and bounded memory.
        type: int
      identity_file:
        description:
          - SFTP only. The host's private SSH key (mode 0600, owned by the user that runs the module).
          - Defaults to C(/etc/lifeboat/vault_ed25519), the key the P(lifeboat.backup.agent#role) role makes.
        type: path
      known_hosts_file:
        description:
          - SFTP only. The known_hosts file that holds the vault's host key. The key is checked strictly, never
            trusted on first use.
          - Defaults to C(/etc/lifeboat/vault_known_hosts), written by the P(lifeboat.backup.agent#role) role.
        type: path
      ssh_options:
        description:
          - SFTP only. More OpenSSH client options, each C(Key=Value), e.g. V(ProxyJump=bastion.example.net).
        type: list
        elements: str
        default: []
      connect_timeout:
        description:
          - SFTP only. Seconds to wait for the vault to answer.
        type: int
        default: 30
"""
