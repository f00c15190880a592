# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Select the files of a backup: walk source trees, apply the exclude rules, classify what is found.

The walk is deterministic (entries ordered by archive name, compared component by
component, so a directory comes right before its content), never follows a symbolic
link and never descends into an excluded directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from stat import S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK

from ._errors import MissingDependencyError, SourceError, UsageError

try:
    import pathspec
except ImportError:  # only respect_gitignore needs it
    pathspec = None

# Junk every project has; globs with the semantics of select()'s exclude.
DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn",
    ".venv", "venv",
    "__pycache__", "*.pyc", "*.pyo",
    "node_modules",
    "*.tmp", "*.swp", ".DS_Store", "Thumbs.db",
    ".idea", ".vscode",
    ".pytest_cache", ".mypy_cache", ".tox",
)
# A directory holding one of these is left out by default: pyvenv.cfg marks a virtualenv of any name.
DEFAULT_EXCLUDE_MARKERS = ("pyvenv.cfg",)

GITIGNORE = ".gitignore"
_SHA_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_MAX_SYMREF_DEPTH = 5


@dataclass
class Entry:
    """One member of the archive."""

    __slots__ = ("path", "arcname", "stat", "kind", "link_target")
    path: str
    arcname: str
    stat: os.stat_result
    kind: str
    link_target: str | None


@dataclass
class Selection:
    """What a walk selected, and what it left out."""

    entries: list[Entry] = field(default_factory=list)
    excluded: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"socket": 0, "fifo": 0, "device": 0})
    unreadable: list[str] = field(default_factory=list)
    input_size: int = 0


def select(paths, exclude=(), exclude_if_present=(), respect_gitignore=False, default_excludes=True,
           never=()):
    """Walk the source paths and return the Selection of what goes into the archive.

    Every path is checked before the walk starts: a relative path, or a source inside
    a `never` path, raises UsageError; a missing path raises SourceError.
    A source path itself is always taken; the rules decide about what is found inside it.
    """
    never = frozenset(_normalized(path) for path in _as_tuple(never))
    sources = _checked_sources(_as_tuple(paths), never)
    if respect_gitignore and pathspec is None:
        raise MissingDependencyError(
            "respect_gitignore needs the Python package pathspec on this host: "
            "install it (pip install pathspec, or the python3-pathspec system package)")
    globs = list(_as_tuple(exclude))
    markers = set(_as_tuple(exclude_if_present))
    if default_excludes:
        globs.extend(DEFAULT_EXCLUDES)
        markers.update(DEFAULT_EXCLUDE_MARKERS)
    walker = _Walker(Globs(globs), frozenset(markers), respect_gitignore, never)
    for source in sources:
        walker.take_source(source)
    return walker.selection


def git_info(path):
    """Return {"commit": sha or None, "branch": name or None} of the git work tree rooted at path.

    Reads .git directly (no git binary on the host is needed). None when path is not
    the root of a work tree. The commit is None on a branch that has no commit yet;
    the branch is None on a detached HEAD.
    """
    git_dirs = _git_dirs(path)
    if git_dirs is None:
        return None
    head = _read_first_line(os.path.join(git_dirs[0], "HEAD"))
    if head is None:
        return None
    if head.startswith("ref: "):
        ref = head[len("ref: "):].strip()
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None
        return {"commit": _resolve_ref(git_dirs, ref), "branch": branch}
    if _SHA_RE.fullmatch(head):
        return {"commit": head, "branch": None}
    return None


def _as_tuple(value):
    """Accept one string where a list is expected: iterating it would yield characters."""
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _normalized(path):
    """Absolute path without redundant separators; POSIX keeps a leading "//", an archive name cannot."""
    if not os.path.isabs(path):
        raise UsageError("path %r is relative: give an absolute path" % path)
    return "/" + os.path.normpath(path).lstrip("/")


def _is_within(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _component_key(path):
    return path.split("/")


def _checked_sources(paths, never):
    """Normalized sources in walk order, with any source inside another dropped (never: normalized paths)."""
    if not paths:
        raise UsageError("no source path given: name at least one directory or file to back up")
    normalized = [_normalized(path) for path in paths]
    for path in normalized:
        if not os.path.lexists(path):
            raise SourceError("source path %s does not exist" % path)
    for path in normalized:
        for forbidden in never:
            if _is_within(path, forbidden):
                raise UsageError("source path %s is inside %s, which is never backed up (the backup directory): "
                                 "choose a source outside it" % (path, forbidden))
    sources = []
    for path in sorted(set(normalized), key=_component_key):
        if not sources or not _is_within(path, sources[-1]):
            sources.append(path)
    return sources


def _special_kind(mode):
    if S_ISSOCK(mode):
        return "socket"
    if S_ISFIFO(mode):
        return "fifo"
    return "device"


class _Walker:
    """Walk state: the rules, the hard links seen so far, and the Selection being built."""

    def __init__(self, globs, markers, respect_gitignore, never):
        self.selection = Selection()
        self._globs = globs
        self._markers = markers
        self._respect_gitignore = respect_gitignore
        self._never = never
        self._first_links = {}

    def take_source(self, path):
        """Add a source path; the rules apply only to what is found inside it."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise SourceError("source path %s disappeared before it could be read" % path) from None
        self._take(path, st, (), is_source=True)

    def _take(self, path, st, git_rules, is_source=False):
        mode = st.st_mode
        if S_ISDIR(mode):
            self._take_dir(path, st, git_rules, is_source)
        elif S_ISREG(mode):
            self._take_file(path, st)
        elif S_ISLNK(mode):
            self._take_symlink(path, st)
        else:
            self.selection.skipped[_special_kind(mode)] += 1

    def _take_dir(self, path, st, git_rules, is_source):
        try:
            with os.scandir(path) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except FileNotFoundError:  # removed while the walk ran: nothing left to save
            return
        except OSError:
            self.selection.unreadable.append(path)
            return
        names = frozenset(child.name for child in children)
        if not is_source and not self._markers.isdisjoint(names):
            self.selection.excluded += 1
            return
        if path != "/":  # "/" has an empty archive name, which a tar member cannot have
            self.selection.entries.append(Entry(path, path[1:], st, "dir", None))
        if self._respect_gitignore:
            git_rules = _with_dir_git_rules(git_rules, path, names)
        for child in children:
            self._visit(child, git_rules)

    def _visit(self, child, git_rules):
        try:
            st = child.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since the listing
            return
        except OSError:  # a directory that may be listed but not searched (mode r--)
            self.selection.unreadable.append(child.path)
            return
        if self._is_excluded(child.path, child.name, S_ISDIR(st.st_mode), git_rules):
            self.selection.excluded += 1
            return
        self._take(child.path, st, git_rules)

    def _is_excluded(self, path, name, is_dir, git_rules):
        return (path in self._never or self._globs.matches(path, name, is_dir)
                or _git_ignores(git_rules, path, is_dir))

    def _take_file(self, path, st):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._first_links:
            self.selection.entries.append(Entry(path, path[1:], st, "hardlink", self._first_links[key]))
            return
        if not os.access(path, os.R_OK):
            self.selection.unreadable.append(path)
            return
        if st.st_nlink > 1:
            self._first_links[key] = path[1:]
        self.selection.entries.append(Entry(path, path[1:], st, "file", None))
        self.selection.input_size += st.st_size

    def _take_symlink(self, path, st):
        try:
            target = os.readlink(path)
        except FileNotFoundError:
            return
        self.selection.entries.append(Entry(path, path[1:], st, "symlink", target))


class Globs:
    """Glob patterns (the walk's excludes, a restore's includes) compiled once into one regex per kind of test.

    A pattern without "/" matches a base name at any depth; one with "/" matches the
    absolute path (anchored when it starts with "/", at any depth otherwise).
    "**" spans any number of directories, "*" and "?" stay within one name, and a
    trailing "/" limits the pattern to directories. "/srv/cache/**" leaves out the
    content of /srv/cache but keeps the (then empty) directory; "/srv/cache" drops both.
    """

    def __init__(self, patterns):
        groups = {(on_path, dir_only): [] for on_path in (False, True) for dir_only in (False, True)}
        for pattern in patterns:
            on_path, dir_only, regex = _compile_glob(pattern)
            groups[(on_path, dir_only)].append(regex)
        self._name_any, self._name_dir, self._path_any, self._path_dir = (
            _alternation(groups[key]) for key in ((False, False), (False, True), (True, False), (True, True)))

    def matches(self, path, name, is_dir):
        """Whether a glob leaves out the entry at path (name is its base name)."""
        return (_fullmatch(self._name_any, name) or _fullmatch(self._path_any, path)
                or (is_dir and (_fullmatch(self._name_dir, name) or _fullmatch(self._path_dir, path))))


def _alternation(regexes):
    if not regexes:
        return None
    return re.compile("|".join("(?:%s)" % regex for regex in regexes), re.DOTALL)


def _fullmatch(regex, text):
    return regex is not None and regex.fullmatch(text) is not None


def _compile_glob(pattern):
    """Return (matches the whole path, directories only, regex source) of one exclude glob."""
    dir_only = pattern.endswith("/")
    body = pattern.rstrip("/")
    if not body:
        raise UsageError("exclude pattern %r names nothing: give a name or a path glob" % pattern)
    if "/" not in body:
        return False, dir_only, _glob_regex(body)
    anchor = "" if body.startswith("/") else "(?:.*/)?"
    return True, dir_only, anchor + _glob_regex(body)


def _glob_regex(glob):
    """Translate one glob to a regex source; "/" is only ever matched literally or by "**"."""
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            i = _star_regex(glob, i, out)
            continue
        if char == "?":
            out.append("[^/]")
        elif char == "[":
            end = _class_end(glob, i)
            if end is None:
                out.append(re.escape(char))
            else:
                out.append(_class_regex(glob[i + 1:end]))
                i = end
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _star_regex(glob, start, out):
    """Append the regex of the run of "*" at start; return the index after what it consumed."""
    end = start
    while end < len(glob) and glob[end] == "*":
        end += 1
    whole_component = (end - start >= 2 and (start == 0 or glob[start - 1] == "/")
                       and (end == len(glob) or glob[end] == "/"))
    if not whole_component:  # as in git, "**" inside a name is a plain "*"
        out.append("[^/]*")
        return end
    if end == len(glob):
        out.append(".+")
        return end
    out.append("(?:.*/)?")
    return end + 1


def _class_end(glob, start):
    """Index of the "]" closing the class opened at start, or None when it is not closed."""
    i = start + 1
    if i < len(glob) and glob[i] in "!^":
        i += 1
    if i < len(glob) and glob[i] == "]":  # a leading "]" is a member, not the end
        i += 1
    end = glob.find("]", i)
    return None if end == -1 else end


def _class_regex(members):
    negated = members[:1] in ("!", "^")
    if negated:
        members = members[1:]
    escaped = "".join("\\" + char if char in "\\[]^&~|" else char for char in members)
    return "[^/%s]" % escaped if negated else "[%s]" % escaped


def _with_dir_git_rules(git_rules, path, names):
    """Add the rules of path's .gitignore, and of .git/info/exclude for a repository root.

    One spec per directory: info/exclude comes first so that the .gitignore lines,
    read later, win over it, as in git. Deeper directories come later in git_rules.
    """
    lines = []
    if ".git" in names:
        lines.extend(_read_lines(os.path.join(path, ".git", "info", "exclude")))
    if GITIGNORE in names:
        lines.extend(_read_lines(os.path.join(path, GITIGNORE)))
    if not lines:
        return git_rules
    return git_rules + ((path.rstrip("/") + "/", pathspec.GitIgnoreSpec.from_lines(lines)),)


def _git_ignores(git_rules, path, is_dir):
    """The deepest .gitignore with a matching rule decides, its last matching line wins."""
    suffix = "/" if is_dir else ""  # lets directory-only rules ("tmp/") match
    for base, spec in reversed(git_rules):
        result = spec.check_file(path[len(base):] + suffix)
        if result.include is not None:
            return result.include
    return False


def _read_lines(path):
    """Lines of a rules file, none when it cannot be read (an unreadable one is reported as a file)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _read_first_line(path):
    lines = _read_lines(path)
    return lines[0].strip() if lines else None


def _git_dirs(path):
    """(git dir, common dir) of the work tree rooted at path, None when path is not one.

    A linked work tree or a submodule has a .git file ("gitdir: ...") instead of a
    directory; its branches live in the common dir the git dir names.
    """
    dot_git = os.path.join(path, ".git")
    if os.path.isdir(dot_git):
        git_dir = dot_git
    else:
        pointer = _read_first_line(dot_git) if os.path.isfile(dot_git) else None
        if not pointer or not pointer.startswith("gitdir:"):
            return None
        git_dir = os.path.join(path, pointer[len("gitdir:"):].strip())
    if not os.path.isfile(os.path.join(git_dir, "HEAD")):
        return None
    common = _read_first_line(os.path.join(git_dir, "commondir"))
    return git_dir, os.path.normpath(os.path.join(git_dir, common)) if common else git_dir


def _resolve_ref(git_dirs, ref):
    """Commit a ref points to (loose ref files, then packed-refs), None when it has none yet."""
    for _depth in range(_MAX_SYMREF_DEPTH):
        value = _loose_ref(git_dirs, ref)
        if value is None:
            return _packed_ref(git_dirs[1], ref)
        if not value.startswith("ref: "):
            return value if _SHA_RE.fullmatch(value) else None
        ref = value[len("ref: "):].strip()
    return None


def _loose_ref(git_dirs, ref):
    for git_dir in git_dirs:
        value = _read_first_line(os.path.join(git_dir, ref))
        if value:
            return value
    return None


def _packed_ref(common_dir, ref):
    for line in _read_lines(os.path.join(common_dir, "packed-refs")):
        sha, _sep, name = line.partition(" ")
        if name == ref and _SHA_RE.fullmatch(sha):
            return sha
    return None
