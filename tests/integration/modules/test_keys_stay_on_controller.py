"""The identity stays on the controller: restore, verify and decrypt send a host one artifact's file key, and no
more, through Ansible's least careful path (no pipelining: module arguments are written to the host's disk; here
kept there, to be searched)."""

from __future__ import annotations

import os
import threading

from test_modules import run_playbook
from testlib import IDENTITY, KEY, RECIPIENT, backup
from ansible_collections.lifeboat.backup.plugins.module_utils import _age

PLAY = """
- name: Restore, verify and decrypt with the operator's identity
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Restore the first backup
      lifeboat.backup.restore:
        backup_dir: "{{ work_dir }}/backups"
        id: "{{ first }}"
        dest: "{{ work_dir }}/restored"
        identity: "{{ identity }}"
      no_log: true
    - name: Verify the second backup in full, in the background as a long one would be
      lifeboat.backup.verify:
        backup_dir: "{{ work_dir }}/backups"
        id: "{{ second }}"
        level: full
        identity: "{{ identity }}"
      async: 120
      poll: 1
      register: checked
    - name: Decrypt a file
      lifeboat.backup.encrypt:
        src: "{{ work_dir }}/secret.txt.age"
        dest: "{{ work_dir }}/secret.txt"
        state: decrypted
        identity: "{{ identity }}"
    - name: The verification passed
      ansible.builtin.assert:
        that: checked.verified and checked.level == 'full'
"""


class ProcessWatch(threading.Thread):
    """Reads every process's argv and environment, over and over, until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen = set()
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit() and int(pid) != os.getpid():
                    for name in ("cmdline", "environ"):
                        try:
                            with open("/proc/%s/%s" % (pid, name), "rb") as handle:
                                self.seen.add(handle.read())
                        except OSError:
                            pass


def _file_key(path):
    with open(path, "rb") as handle:
        return _age.encode_file_key(_age.unwrap(_age.read_header_bytes(handle), KEY))


def _files_holding(root, needles):
    """Relative paths of the files under root that hold any of needles (bytes, compared case-insensitively)."""
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                content = handle.read().lower()
            if any(needle.lower() in content for needle in needles):
                found.append(os.path.relpath(path, root))
    return sorted(found)


def test_hosts_get_one_artifacts_file_key_and_never_the_identity(tmp_path):
    source = tmp_path / "srv"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(96 << 20))  # a restore long enough to be watched
    first = backup(source, tmp_path / "backups")
    second = backup(source, tmp_path / "backups")
    with open(tmp_path / "secret.txt.age", "wb") as sink:
        writer = _age.AgeWriter(sink, recipients=[RECIPIENT])
        writer.write(b"the secret\n")
        writer.close()
    file_keys = [_file_key(made["path"]) for made in (first, second)] + [_file_key(tmp_path / "secret.txt.age")]
    (tmp_path / "play.yml").write_text(PLAY)
    remote_tmp = tmp_path / "remote-tmp"
    watch = ProcessWatch()
    watch.start()
    try:
        run_playbook(tmp_path / "play.yml", tmp_path, {"identity": IDENTITY, "first": first["id"],
                                                       "second": second["id"]},
                     environment={"ANSIBLE_PIPELINING": "0", "ANSIBLE_KEEP_REMOTE_FILES": "1",
                                  "ANSIBLE_REMOTE_TMP": str(remote_tmp)})
    finally:
        watch.stopped.set()
        watch.join()
    assert (tmp_path / "secret.txt").read_bytes() == b"the secret\n"
    assert (tmp_path / "restored" / str(source).lstrip("/") / "big.bin").stat().st_size == 96 << 20

    identity = IDENTITY.encode()
    # The kept module files hold each task's file key (so the search below finds what is there), never the identity.
    kept = _files_holding(remote_tmp, [identity] + [key.encode() for key in file_keys])
    assert kept and all("AnsiballZ_" in path for path in kept), kept
    assert _files_holding(remote_tmp, [identity]) == []
    for key in file_keys:
        assert _files_holding(remote_tmp, [key.encode()]), "the file key %d is sent" % file_keys.index(key)
    # Nothing the host keeps (catalog, metadata, journal, restored tree) holds a key of any kind.
    for root in (tmp_path / "backups", tmp_path / "restored"):
        assert _files_holding(root, [identity] + [key.encode() for key in file_keys]) == []
    # No process showed a key in its argv or environment while the modules ran (and the watch saw them run).
    assert any(b"AnsiballZ_restore.py" in seen for seen in watch.seen)
    for seen in watch.seen:
        assert identity.lower() not in seen.lower()
        assert not any(key.encode().lower() in seen.lower() for key in file_keys)
