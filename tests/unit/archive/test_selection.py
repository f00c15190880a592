# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Selecting the files of a backup, on real trees."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import socket
import stat
import subprocess
import time
import traceback

import pytest
import testlib
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.lifeboat.backup.plugins.module_utils import _selection
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import SourceError, UsageError


def make_tree(root, files=(), dirs=()):
    """Create dirs and files (relative path -> content, or an iterable of paths for empty files) under root."""
    for rel in dirs:
        os.makedirs(os.path.join(root, rel), exist_ok=True)
    contents = files if isinstance(files, dict) else dict.fromkeys(files, "")
    for rel, content in contents.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    return str(root)


def rel_names(selection, root):
    """Archive names relative to root's own archive name ("" for root itself)."""
    prefix = str(root).lstrip("/")
    return [entry.arcname[len(prefix) + 1:] if entry.arcname != prefix else "" for entry in selection.entries]


def selected(root, **options):
    return set(rel_names(_selection.select([str(root)], **options), root)) - {""}


def by_name(selection, root):
    return dict(zip(rel_names(selection, root), selection.entries))


def git(cwd, *args):
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid",
               "-c", "init.defaultBranch=trunk", "-c", "advice.detachedHead=false"]
    return subprocess.run(command + list(args), cwd=str(cwd), check=True, capture_output=True,
                          text=True).stdout.strip()


# --- order and shape ---------------------------------------------------------------------------


def test_order_sorted_by_archive_name_with_directories_before_their_content(tmp_path):
    make_tree(tmp_path, files=["b", "a/y/z", "a/x", "a-b", "a.c/k"])
    assert rel_names(_selection.select([str(tmp_path)]), tmp_path) == [
        "", "a", "a/x", "a/y", "a/y/z", "a-b", "a.c", "a.c/k", "b"]


def test_same_tree_gives_same_entries_whatever_the_creation_order(tmp_path):
    names = ["m%02d/f%02d" % (i % 7, i) for i in range(40)]
    make_tree(tmp_path / "one", files=names)
    make_tree(tmp_path / "two", files=list(reversed(names)))
    assert rel_names(_selection.select([str(tmp_path / "one")]), tmp_path / "one") == \
        rel_names(_selection.select([str(tmp_path / "two")]), tmp_path / "two")


def test_source_directory_is_an_entry_and_its_parents_are_not(tmp_path):
    src = make_tree(tmp_path / "srv" / "app", files=["x.py"])
    entries = _selection.select([src]).entries
    assert [(e.arcname, e.kind) for e in entries] == [
        (src.lstrip("/"), "dir"), (src.lstrip("/") + "/x.py", "file")]
    assert entries[0].path == src
    assert entries[0].stat.st_mtime == os.lstat(src).st_mtime


def test_several_sources_are_walked_in_name_order_and_overlaps_dropped(tmp_path):
    make_tree(tmp_path, files=["b/1", "a/1", "a/sub/2"])
    selection = _selection.select([str(tmp_path / "b"), str(tmp_path / "a" / "sub"), str(tmp_path / "a") + "/",
                                   str(tmp_path / "a")])
    assert rel_names(selection, tmp_path) == ["a", "a/1", "a/sub", "a/sub/2", "b", "b/1"]


def test_single_file_source(tmp_path):
    src = make_tree(tmp_path, files={"notes.txt": "hello"})
    selection = _selection.select([os.path.join(src, "notes.txt")])
    assert [(e.arcname, e.kind) for e in selection.entries] == [(src.lstrip("/") + "/notes.txt", "file")]
    assert selection.input_size == 5


# --- symlinks ----------------------------------------------------------------------------------


def test_symlinks_are_stored_not_followed(tmp_path):
    outside = make_tree(tmp_path / "outside", files=["secret/a", "b"])
    src = make_tree(tmp_path / "src", files=["real"])
    os.symlink(os.path.join(outside, "secret"), os.path.join(src, "to_dir"))
    os.symlink("real", os.path.join(src, "to_file"))
    os.symlink("nowhere", os.path.join(src, "dangling"))
    selection = _selection.select([src])
    entries = by_name(selection, src)
    assert list(entries) == ["", "dangling", "real", "to_dir", "to_file"]
    assert entries["to_dir"].kind == "symlink"
    assert entries["to_dir"].link_target == os.path.join(outside, "secret")
    assert entries["to_file"].link_target == "real"
    assert entries["dangling"].link_target == "nowhere"
    assert stat.S_ISLNK(entries["to_file"].stat.st_mode)
    assert selection.input_size == 0


# --- exclude globs -----------------------------------------------------------------------------


def test_base_name_globs_match_at_any_depth(tmp_path):
    make_tree(tmp_path, files=["a.log", "deep/er/b.log", "keep.txt", "deep/modules/x.js", "f1", "f22", "cat", "cbt"])
    assert selected(tmp_path, exclude=["*.log", "modules", "f?", "c[!a]t"]) == {
        "deep", "deep/er", "keep.txt", "f22", "cat"}


def test_double_star_path_glob_drops_content_and_keeps_the_directory(tmp_path):
    make_tree(tmp_path, files=["app/cache/a", "app/cache/sub/b", "app/code.py"])
    selection = _selection.select([str(tmp_path)], exclude=[str(tmp_path / "app" / "cache") + "/**"])
    assert rel_names(selection, tmp_path) == ["", "app", "app/cache", "app/code.py"]
    assert selection.excluded == 2  # the file and the pruned sub directory


def test_path_glob_without_double_star_prunes_the_directory(tmp_path):
    make_tree(tmp_path, files=["app/cache/a", "app/cache/sub/b", "app/code.py"])
    selection = _selection.select([str(tmp_path)], exclude=[str(tmp_path / "app" / "ca*")])
    assert rel_names(selection, tmp_path) == ["", "app", "app/code.py"]
    assert selection.excluded == 1


def test_leading_double_star_path_glob_matches_at_any_depth(tmp_path):
    make_tree(tmp_path, files=["logs/a.log", "x/logs/b.log", "x/y/logs/c.log", "x/logs/deep/d.log",
                               "x/logs/keep.txt", "logsa.log", "mylogs/e.log"])
    assert selected(tmp_path, exclude=["**/logs/*.log"]) == {
        "logs", "x", "x/logs", "x/y", "x/y/logs", "x/logs/deep", "x/logs/deep/d.log", "x/logs/keep.txt",
        "logsa.log", "mylogs", "mylogs/e.log"}


def test_double_star_between_directories_spans_zero_or_more(tmp_path):
    make_tree(tmp_path, files=["srv/tmp", "srv/a/tmp", "srv/a/b/tmp", "srv/a/xtmp", "other/tmp"])
    assert selected(tmp_path, exclude=[str(tmp_path / "srv") + "/**/tmp"]) == {
        "srv", "srv/a", "srv/a/b", "srv/a/xtmp", "other", "other/tmp"}


def test_relative_path_glob_matches_below_any_directory(tmp_path):
    make_tree(tmp_path, files=["logs/a.log", "x/logs/b.log", "x/logs/c.txt"])
    assert selected(tmp_path, exclude=["logs/*.log"]) == {"logs", "x", "x/logs", "x/logs/c.txt"}


def test_trailing_slash_limits_a_glob_to_directories(tmp_path):
    make_tree(tmp_path, files=["build/out", "src/build"])
    assert selected(tmp_path, exclude=["build/"]) == {"src", "src/build"}


def test_star_does_not_cross_a_slash(tmp_path):
    make_tree(tmp_path, files=["a/b/c.txt", "a/c.txt"])
    assert selected(tmp_path, exclude=[str(tmp_path) + "/a/*.txt"]) == {"a", "a/b", "a/b/c.txt"}


def test_empty_exclude_pattern_is_refused(tmp_path):
    with pytest.raises(UsageError, match="names nothing"):
        _selection.select([str(tmp_path)], exclude=["/"])


_GLOB_TOKENS = st.sampled_from(["a", "b", ".", "*", "?", "[ab]", "[!a]", "[a-c]"])


@given(pattern=st.lists(_GLOB_TOKENS, min_size=1, max_size=6).map("".join),
       name=st.text(alphabet="abc.", min_size=1, max_size=8))
def test_base_name_glob_agrees_with_fnmatch(pattern, name):
    regex = re.compile(_selection._glob_regex(pattern), re.DOTALL)
    assert (regex.fullmatch(name) is not None) == fnmatch.fnmatchcase(name, pattern)


# --- marker files ------------------------------------------------------------------------------


def test_directory_with_a_marker_file_is_left_out_entirely(tmp_path):
    make_tree(tmp_path, files=["cache/.nobackup", "cache/big", "cache/sub/more", "data/CACHEDIR.TAG",
                               "data2/keep"])
    selection = _selection.select([str(tmp_path)], exclude_if_present=[".nobackup", "CACHEDIR.TAG"])
    assert rel_names(selection, tmp_path) == ["", "data2", "data2/keep"]
    assert selection.excluded == 2


def test_marker_in_a_source_directory_itself_does_not_drop_the_named_source(tmp_path):
    make_tree(tmp_path, files=[".nobackup", "a"])
    assert selected(tmp_path, exclude_if_present=[".nobackup"]) == {".nobackup", "a"}


# --- gitignore ---------------------------------------------------------------------------------


def test_gitignore_negation(tmp_path):
    make_tree(tmp_path, files={".gitignore": "*.log\n!keep.log\n", "a.log": "", "keep.log": "", "x": ""})
    assert selected(tmp_path, respect_gitignore=True) == {".gitignore", "keep.log", "x"}


def test_gitignore_anchored_rule_applies_only_at_its_own_level(tmp_path):
    make_tree(tmp_path, files={".gitignore": "/build\n", "build/a": "", "src/build/b": ""})
    assert selected(tmp_path, respect_gitignore=True) == {".gitignore", "src", "src/build", "src/build/b"}


def test_gitignore_directory_only_rule(tmp_path):
    make_tree(tmp_path, files={".gitignore": "tmp/\n", "tmp/a": "", "sub/tmp/b": "", "other/tmp": ""})
    assert selected(tmp_path, respect_gitignore=True) == {".gitignore", "sub", "other", "other/tmp"}


def test_gitignore_double_star(tmp_path):
    make_tree(tmp_path, files={".gitignore": "docs/**/draft.md\n**/gen\n", "docs/draft.md": "",
                               "docs/a/b/draft.md": "", "docs/a/final.md": "", "x/y/gen/c": "", "draft.md": ""})
    assert selected(tmp_path, respect_gitignore=True) == {
        ".gitignore", "docs", "docs/a", "docs/a/b", "docs/a/final.md", "x", "x/y", "draft.md"}


def test_nested_gitignore_overrides_its_parent_relative_to_its_own_directory(tmp_path):
    make_tree(tmp_path, files={
        ".gitignore": "*.log\n",
        "keep.log": "",
        "sub/.gitignore": "!keep.log\n/only-here.txt\n",
        "sub/keep.log": "", "sub/other.log": "", "sub/only-here.txt": "",
        "sub/deeper/only-here.txt": "", "only-here.txt": ""})
    assert selected(tmp_path, respect_gitignore=True) == {
        ".gitignore", "only-here.txt", "sub", "sub/.gitignore", "sub/keep.log", "sub/deeper",
        "sub/deeper/only-here.txt"}


def test_gitignore_cannot_reinclude_a_file_whose_directory_is_excluded(tmp_path):
    make_tree(tmp_path, files={".gitignore": "logs/\n!logs/keep.log\n", "logs/keep.log": "",
                               "logs/.gitignore": "!*\n", "logs/a.log": ""})
    selection = _selection.select([str(tmp_path)], respect_gitignore=True)
    assert rel_names(selection, tmp_path) == ["", ".gitignore"]
    assert selection.excluded == 1


def test_gitignore_is_ignored_when_not_asked_for(tmp_path):
    make_tree(tmp_path, files={".gitignore": "*.log\n", "a.log": ""})
    assert selected(tmp_path) == {".gitignore", "a.log"}


def test_git_info_exclude_of_a_repository_found_in_the_walk(tmp_path):
    repo = tmp_path / "projects" / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("*.secret\nscratch/\n")
    make_tree(repo, files={".gitignore": "!kept.secret\n", "a.secret": "", "kept.secret": "",
                           "scratch/x": "", "code.py": ""})
    make_tree(tmp_path / "projects", files=["elsewhere.secret"])
    assert selected(tmp_path, respect_gitignore=True) == {
        "projects", "projects/elsewhere.secret", "projects/repo", "projects/repo/.gitignore",
        "projects/repo/kept.secret", "projects/repo/code.py"}


def test_gitignore_selection_agrees_with_git(tmp_path):
    make_tree(tmp_path, files={
        ".gitignore": "*.log\n!important.log\n/build\ntmp/\ndocs/**/draft.md\nnested/*\n!nested/kept\n",
        "a.log": "", "important.log": "", "build/x": "", "src/build/y": "", "src/tmp/z": "", "tmp": "",
        "docs/draft.md": "", "docs/v1/draft.md": "", "docs/v1/final.md": "",
        "nested/kept": "", "nested/dropped": "",
        "sub/.gitignore": "!*.log\n*.txt\n", "sub/b.log": "", "sub/c.txt": "", "sub/deep/d.txt": "",
        "sub/deep/.gitignore": "!d.txt\n", "code.py": ""})
    git(tmp_path, "init", "-q")
    (tmp_path / ".git" / "info" / "exclude").write_text("code.py\n")
    git_files = set(git(tmp_path, "ls-files", "--others", "--exclude-standard").splitlines())
    selection = _selection.select([str(tmp_path)], respect_gitignore=True)
    ours = {name for name, entry in by_name(selection, tmp_path).items() if entry.kind == "file"}
    assert ours == git_files


# --- default excludes --------------------------------------------------------------------------


def test_default_excludes_leave_out_project_junk(tmp_path):
    junk = ["repo/.git/HEAD", ".hg/x", ".svn/x", ".venv/bin/python", "venv/lib/x", "myenv/pyvenv.cfg",
            "myenv/lib/site.py", "pkg/__pycache__/m.cpython-311.pyc", "pkg/m.pyc", "pkg/m.pyo",
            "web/node_modules/left-pad/index.js", "a.tmp", ".a.swp", ".DS_Store", "Thumbs.db", ".idea/x",
            ".vscode/settings.json", ".pytest_cache/v", ".mypy_cache/v", ".tox/py/x"]
    make_tree(tmp_path, files=junk + ["pkg/m.py", "web/app.js", "repo/README"])
    assert selected(tmp_path) == {"repo", "repo/README", "pkg", "pkg/m.py", "web", "web/app.js"}
    assert {name.split("/")[0] for name in selected(tmp_path, default_excludes=False)} == \
        {name.split("/")[0] for name in junk + ["pkg", "web"]}


@pytest.mark.parametrize("pattern", _selection.DEFAULT_EXCLUDES)
def test_each_default_exclude_takes_effect(tmp_path, pattern):
    name = pattern.replace("*", "example")
    make_tree(tmp_path, files=["sub/" + name, "sub/kept"])
    assert selected(tmp_path) == {"sub", "sub/kept"}
    assert selected(tmp_path, default_excludes=False) == {"sub", "sub/kept", "sub/" + name}


def test_virtualenv_of_any_name_is_recognised_by_pyvenv_cfg(tmp_path):
    make_tree(tmp_path, files={"tools/env-3.11/pyvenv.cfg": "home = /usr/bin\n", "tools/env-3.11/bin/x": "",
                               "tools/run.sh": ""})
    selection = _selection.select([str(tmp_path)])
    assert rel_names(selection, tmp_path) == ["", "tools", "tools/run.sh"]
    assert selection.excluded == 1


# --- never -------------------------------------------------------------------------------------


def test_backup_directory_inside_the_source_is_never_selected(tmp_path):
    make_tree(tmp_path, files=["data/a", "backups/job/old.tar.zst.age", "data/.tmp-upload"])
    selection = _selection.select([str(tmp_path)], default_excludes=False,
                                  never=[str(tmp_path / "backups"), str(tmp_path / "data" / ".tmp-upload")])
    assert rel_names(selection, tmp_path) == ["", "data", "data/a"]
    assert selection.excluded == 2


@pytest.mark.parametrize("source", ["backups", "backups/job"])
def test_source_inside_or_equal_to_a_never_path_is_refused(tmp_path, source):
    make_tree(tmp_path, dirs=["backups/job"])
    with pytest.raises(UsageError, match="never backed up"):
        _selection.select([str(tmp_path / source)], never=[str(tmp_path / "backups") + "/"])


# --- argument errors ---------------------------------------------------------------------------


def test_missing_source_path_is_named_in_the_error(tmp_path):
    missing = str(tmp_path / "gone")
    with pytest.raises(SourceError) as caught:
        _selection.select([str(tmp_path), missing])
    assert missing in str(caught.value)


def test_relative_source_path_is_a_usage_error():
    with pytest.raises(UsageError, match="relative"):
        _selection.select(["srv/app"])


def test_no_source_path_is_a_usage_error():
    with pytest.raises(UsageError, match="no source path"):
        _selection.select([])


def test_one_path_given_as_a_string_is_one_source(tmp_path):
    make_tree(tmp_path, files=["a"])
    assert rel_names(_selection.select(str(tmp_path)), tmp_path) == ["", "a"]


# --- special files, hard links, sizes ----------------------------------------------------------


def test_sockets_fifos_and_devices_are_skipped_and_counted(tmp_path):
    make_tree(tmp_path, files=["regular"])
    os.mkfifo(str(tmp_path / "fifo1"))
    os.mkfifo(str(tmp_path / "fifo2"))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        devices = 0
        try:
            os.mknod(str(tmp_path / "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            devices = 1
        except PermissionError:  # creating device nodes needs CAP_MKNOD
            pass
        selection = _selection.select([str(tmp_path)])
    assert rel_names(selection, tmp_path) == ["", "regular"]
    assert selection.skipped == {"socket": 1, "fifo": 2, "device": devices}


def test_hard_links_after_the_first_refer_to_it(tmp_path):
    make_tree(tmp_path, files={"b/first": "12345", "lonely": "xy"})
    os.link(str(tmp_path / "b" / "first"), str(tmp_path / "a"))
    os.link(str(tmp_path / "b" / "first"), str(tmp_path / "c"))
    selection = _selection.select([str(tmp_path)])
    entries = by_name(selection, tmp_path)
    first = tmp_path.as_posix().lstrip("/") + "/a"
    assert [(n, e.kind, e.link_target) for n, e in entries.items() if n] == [
        ("a", "file", None), ("b", "dir", None), ("b/first", "hardlink", first), ("c", "hardlink", first),
        ("lonely", "file", None)]
    assert selection.input_size == 5 + 2


def test_input_size_sums_regular_files_only(tmp_path):
    make_tree(tmp_path, files={"a": "x" * 1000, "d/b": "y" * 24, "skipped.log": "z" * 50})
    os.symlink("a" * 200, str(tmp_path / "link"))
    assert _selection.select([str(tmp_path)], exclude=["*.log"]).input_size == 1024


# --- unreadable --------------------------------------------------------------------------------

def select_as_nobody(root):
    """Run select() in a forked child that dropped root's rights, so permission checks really apply."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            testlib.drop_root()
            selection = _selection.select([root])
            found = {"entries": [e.arcname for e in selection.entries], "unreadable": selection.unreadable}
            os.write(write_end, json.dumps(found).encode())
            status = 0
        except BaseException:  # pylint: disable=broad-except
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        report = output.read()
    assert os.waitpid(pid, 0)[1] == 0
    return json.loads(report)


@pytest.fixture
def world_readable_dir():
    """A directory another user can reach (pytest's tmp_path is private to its owner)."""
    with testlib.shared_directory() as path:
        yield path


def test_unreadable_directories_and_files_are_reported_not_selected(world_readable_dir):
    root = make_tree(world_readable_dir, files=["open/a", "closed/hidden", "listable/x", "private.key",
                                                "public.txt"])
    modes = {"open": 0o755, "open/a": 0o644, "public.txt": 0o644,
             # others may not enter closed, nor read private.key, and may list listable without searching it
             "closed": 0o700, "private.key": 0o600, "listable": 0o744}
    if os.geteuid() != 0:  # files of our own: take the permissions away from ourselves
        modes.update({"closed": 0, "private.key": 0, "listable": 0o444})
    for name, mode in modes.items():
        os.chmod(os.path.join(root, name), mode)
    try:
        found = select_as_nobody(root)
    finally:
        for name in ("closed", "listable"):
            os.chmod(os.path.join(root, name), 0o700)
    prefix = root.lstrip("/")
    readable = ("listable", "open", "open/a", "public.txt")
    assert found["entries"] == [prefix] + [prefix + "/" + name for name in readable]
    assert found["unreadable"] == [os.path.join(root, name) for name in ("closed", "listable/x", "private.key")]


# --- speed -------------------------------------------------------------------------------------


def test_twenty_thousand_files_are_walked_fast(tmp_path):
    for directory in range(200):
        path = tmp_path / ("d%03d" % directory) / "sub"
        path.mkdir(parents=True)
        for number in range(100):
            name = os.path.join(str(path if number % 2 else path.parent), "f%03d.py" % number)
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
    timings = []
    for _attempt in range(5):
        # CPU time, not wall time: the bound is on the walk's own work, not on how busy the machine is
        started = time.process_time()
        selection = _selection.select([str(tmp_path)], exclude=["*.log", "/srv/**/cache"])
        timings.append(time.process_time() - started)
    assert len(selection.entries) == 1 + 200 * 2 + 20000
    assert min(timings) < 0.2


# --- git_info ----------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_git_info_on_a_branch(repo):
    git(repo, "checkout", "-q", "-b", "feature/x")
    assert _selection.git_info(str(repo)) == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "feature/x"}


def test_git_info_reads_packed_refs(repo):
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "trunk").exists()
    assert _selection.git_info(str(repo)) == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "trunk"}


def test_git_info_on_a_detached_head(repo):
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    git(repo, "checkout", "-q", "--detach", first)
    assert _selection.git_info(str(repo)) == {"commit": first, "branch": None}


def test_git_info_of_a_branch_without_commits(tmp_path):
    git(tmp_path, "init", "-q")
    assert _selection.git_info(str(tmp_path)) == {"commit": None, "branch": "trunk"}


def test_git_info_of_a_linked_work_tree(repo, tmp_path):
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"))
    assert _selection.git_info(str(tmp_path / "side")) == {
        "commit": git(repo, "rev-parse", "HEAD"), "branch": "side"}


def test_git_info_is_none_outside_a_work_tree_root(repo, tmp_path):
    (repo / "sub").mkdir()
    assert _selection.git_info(str(repo / "sub")) is None
    assert _selection.git_info(str(tmp_path / "missing")) is None
    (tmp_path / "plain").mkdir()
    assert _selection.git_info(str(tmp_path / "plain")) is None
