"""What a shell command visibly writes, read by a real shell parser (pure: no database, no file system).

An agent's command is hostile input, and the forms it comes in are many: a list of words (`["/bin/bash", "-lc",
"…"]`, as Codex's app-server v2 sends), one string (`/bin/bash -lc '…'`), env prefixes and wrappers
(`FOO=1 sudo env command …`), `cd sub && …` moving the directory later paths are relative to, heredocs
(`cat > f <<'EOF'`), command and process substitutions, redirections, `tee`, `sed -i`, `cp`, `mv`, `dd of=`,
`git rm/mv/checkout -- path`. So the command is parsed into a syntax tree and walked, not split into words.

The parser is tree-sitter-bash (through the `tree-sitter` bindings), not `bashlex`: bashlex 0.18 was tried first
and fails on inputs agents send every day. It refuses a heredoc with a quoted delimiter (`cat > f <<'EOF'`, the
form Claude Code writes files with), and raises NotImplementedError on `$((…))`, `[[ … ]]`, `case` and `time`.
tree-sitter-bash reads all of these and marks what it cannot read (ERROR and MISSING nodes) instead of guessing.

What the walk cannot read it says so (`Reading.unreadable`): a syntax error, a write target or a command named
by an expansion (`> "$OUT"`, `$CMD x`), `cd` into a directory it cannot know, `eval` or `bash -c` of a
non-literal script, a tool that writes files the command line does not name (`xargs rm`, `find -delete`,
`git checkout <branch>`, `git apply`), inline code that may write (`python -c "open('x','w')"`). The gateway asks
a person about such a command on a goal with protected paths, instead of letting it through. Running a program
(`./build.sh`, `pytest`) is not unreadable: what a program writes is never visible in its command line, and is
judged after the fact from the working tree's real diff (`POST /api/v1/goals/{id}/changes`).
"""

from __future__ import annotations

import posixpath
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache

MAX_DEPTH = 8  # nested `bash -c '… bash -c …'`, substitutions and blocks; deeper is unreadable
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "ash", "busybox"})
INTERPRETERS = frozenset({"python", "python3", "python2", "node", "nodejs", "ruby", "perl", "php", "deno", "bun"})
WRAPPERS = frozenset(
    {
        "sudo",
        "doas",
        "command",
        "env",
        "nohup",
        "time",
        "exec",
        "nice",
        "ionice",
        "stdbuf",
        "timeout",
        "chronic",
        "builtin",
        "setsid",
        "unbuffer",
        "caffeinate",
    }
)
WRITES_ALL_ARGS = frozenset({"rm", "rmdir", "unlink", "touch", "truncate", "mkdir", "tee", "shred", "sponge", "mv"})
WRITES_LAST_ARG = frozenset({"cp", "install", "ln", "rsync", "scp"})
WRITES_AFTER_FIRST = frozenset({"chmod", "chown", "chgrp"})
# Options of these commands that take the next word as their value (so it is no path).
OPTION_VALUES = {
    "sudo": {"-u", "-g", "-U", "-C", "-h", "-p", "-r", "-t", "-D", "-R"},
    "doas": {"-u", "-C"},
    "env": {"-u", "--unset", "-S", "--split-string"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "-t"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "stdbuf": {"-i", "-o", "-e"},
    "truncate": {"-s", "--size", "-r", "--reference"},
    "touch": {"-d", "--date", "-t", "-r", "--reference"},
    "mkdir": {"-m", "--mode"},
    "install": {"-m", "--mode", "-o", "--owner", "-g", "--group", "-S", "--suffix", "-t", "--target-directory"},
    "cp": {"-S", "--suffix", "-t", "--target-directory"},
    "mv": {"-S", "--suffix", "-t", "--target-directory"},
    "ln": {"-S", "--suffix", "-t", "--target-directory"},
    "rsync": {"-e", "--rsh", "--exclude", "--include", "--filter", "-f"},
    "scp": {"-P", "-i", "-o", "-F", "-c", "-l", "-S"},
    "sed": {"-e", "--expression", "-f", "--file", "-l", "--line-length"},
    "perl": {"-e", "-E", "-M", "-I", "-x"},
    "git": {"-C", "-c", "--git-dir", "--work-tree", "--namespace"},
    "chmod": {"--reference"},
}
# Git subcommands that change files the command line does not name.
GIT_OPAQUE = frozenset(
    {
        "apply",
        "am",
        "merge",
        "pull",
        "rebase",
        "cherry-pick",
        "revert",
        "stash",
        "clean",
        "switch",
        "reset",
        "read-tree",
        "checkout-index",
        "worktree",
        "submodule",
        "filter-branch",
    }
)
# Inline code that may write a file: asked about on a goal with protected paths.
_WRITING_CODE = re.compile(
    r"open|write|unlink|remove|rename|replace|rmtree|copy|move|mkdir|touch|system|subprocess|popen|exec|spawn|"
    r"Path|fs\.|shutil|os\.|File|IO\.|`|eval",
    re.IGNORECASE,
)
_GLOB = re.compile(r"[*?\[]")
_REDIRECT_WRITES = (">", ">>", ">|", "&>", "&>>", ">&")


@dataclass(frozen=True)
class Reading:
    """What the parser read from a command: the paths it writes, and why it could not read it all.

    Paths are as the command names them, joined to the directories it `cd`s into (relative to where the command
    starts, or absolute); glob patterns (`rm *.log`) stay patterns for the caller to expand.
    """

    writes: tuple[str, ...] = ()
    unreadable: str = ""  # "" when the whole command was read

    @property
    def readable(self) -> bool:
        return not self.unreadable


_local = threading.local()


@lru_cache(maxsize=1)
def _language():
    import tree_sitter_bash
    from tree_sitter import Language

    return Language(tree_sitter_bash.language())


def _parser():
    """One parser per thread: a tree-sitter Parser is not safe to share (the waits judge calls in worker threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        from tree_sitter import Parser

        parser = _local.parser = Parser(_language())
    return parser


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _parse(command: str):
    """The syntax tree of a command, and the command's bytes its nodes' offsets index.

    tree-sitter-bash 0.25.1's scanner crashes the process (a segmentation fault) on some characters beyond ASCII
    after `{` (found by the property test below it). So the parser reads a copy with every byte beyond ASCII
    replaced by `a` (a word character, as those characters are to the shell), the same length, and what a word
    says is read from the original bytes at the node's offsets.
    """
    source = command.encode("utf-8", errors="replace")
    return _parser().parse(_NON_ASCII.sub(b"a", source)), source


def _node_text(source: bytes, node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


@dataclass
class _Walk:
    writes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    source: bytes = b""  # the bytes of the script being walked (a `bash -c` script has its own)

    def text(self, node) -> str:
        return _node_text(self.source, node)

    def cannot(self, why: str) -> None:
        if why not in self.unreadable:
            self.unreadable.append(why)


_UNKNOWN = None  # a working directory the walk cannot know (`cd "$DIR"`, `cd -`, `popd`)


def read_command(command: str) -> Reading:
    """Parse a shell command and name the files it visibly writes; say why, when it cannot read all of it."""
    walk = _Walk()
    _read_script(command, walk, cwd="", depth=0)
    writes = [path for path in dict.fromkeys(walk.writes) if path and path != "-" and not path.startswith("/dev/")]
    return Reading(tuple(writes), "; ".join(walk.unreadable)[:500])


def command_writes(command: str) -> list[str]:
    """The paths a shell command visibly writes: redirection targets and the files of rm, mv, cp, tee, sed -i…"""
    return list(read_command(command).writes)


def _read_script(script: str, walk: _Walk, cwd: str | None, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        walk.cannot("nested too deeply to read")
        return cwd
    tree, source = _parse(script)
    if tree.root_node.has_error:
        walk.cannot("not valid shell syntax")
    outer, walk.source = walk.source, source
    try:
        return _statements(tree.root_node.named_children, walk, cwd, depth)
    finally:
        walk.source = outer


def _statements(nodes, walk: _Walk, cwd: str | None, depth: int) -> str | None:
    for node in nodes:
        cwd = _statement(node, walk, cwd, depth)
    return cwd


def _statement(node, walk: _Walk, cwd: str | None, depth: int, extra_args: tuple = ()) -> str | None:
    """Walk one statement; returns the working directory after it (a `cd` moves it for what follows)."""
    if depth > MAX_DEPTH:
        walk.cannot("nested too deeply to read")
        return cwd
    kind = node.type
    if kind == "comment":
        return cwd
    if kind == "command":
        return _command(node, walk, cwd, depth, extra_args)
    if kind == "redirected_statement":
        body = node.child_by_field_name("body")
        redirects = [child for child in node.named_children if child != body]
        extra = tuple(word for redirect in redirects for word in _redirect_words(redirect, walk, cwd, depth))
        after = _statement(body, walk, cwd, depth + 1, extra) if body is not None else cwd
        # tree-sitter-bash hangs a list's last redirection on the whole list: it applies where the list ends.
        for redirect in redirects:
            _redirect(redirect, walk, after if body is not None and body.type == "list" else cwd, depth)
        return after
    if kind == "pipeline":
        # Each part runs in a subshell of its own: a `cd` in one moves nothing for the others.
        for child in node.named_children:
            _statement(child, walk, cwd, depth + 1)
        return cwd
    if kind == "subshell":
        _statements(node.named_children, walk, cwd, depth + 1)
        return cwd
    if kind in ("command_substitution", "process_substitution"):
        _statements(node.named_children, walk, cwd, depth + 1)
        return cwd
    if kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
        _redirect(node, walk, cwd, depth)
        return cwd
    if kind in (
        "word",
        "number",
        "string_content",
        "raw_string",
        "variable_name",
        "heredoc_content",
        "heredoc_start",
        "heredoc_end",
        "test_operator",
        "special_variable_name",
        "ansi_c_string",
    ):
        return cwd
    # Lists, blocks, loops, conditions, functions, assignments, tests, expansions: every part, in order.
    # A loop body or a branch may not run, but what it would write counts.
    for child in node.named_children:
        cwd = _statement(child, walk, cwd, depth + 1)
    return cwd


def _redirect_words(redirect, walk: _Walk, cwd, depth) -> list[str | None]:
    """Words tree-sitter-bash puts after a redirection's target (`rm >/dev/null secret`): the command's args."""
    if redirect.type != "file_redirect":
        return []
    destinations = redirect.children_by_field_name("destination")
    return [_literal(word, walk, cwd, depth) for word in destinations[1:]]


def _redirect(node, walk: _Walk, cwd: str | None, depth: int) -> None:
    if node.type == "heredoc_redirect":
        start = next((child for child in node.children if child.type == "heredoc_start"), None)
        quoted = start is not None and any(quote in walk.text(start) for quote in ("'", '"', "\\"))
        for child in node.named_children:
            if child.type == "file_redirect":
                _redirect(child, walk, cwd, depth)
            elif child.type == "heredoc_body" and not quoted:
                _substitutions(child, walk, cwd, depth)
        return
    if node.type != "file_redirect":
        _substitutions(node, walk, cwd, depth)
        return
    operator = next((child.type for child in node.children if not child.is_named), "")
    destinations = node.children_by_field_name("destination")
    if operator not in _REDIRECT_WRITES or not destinations:
        for destination in destinations:
            _literal(destination, walk, cwd, depth)
        return
    target = destinations[0]
    if operator == ">&" and target.type == "number" or walk.text(target) == "-":
        return  # `>&2`: a file descriptor, no file
    _write(_literal(target, walk, cwd, depth), walk, cwd, "a redirection")


def _substitutions(node, walk: _Walk, cwd, depth) -> None:
    for child in node.named_children:
        if child.type in ("command_substitution", "process_substitution"):
            _statement(child, walk, cwd, depth + 1)
        else:
            _substitutions(child, walk, cwd, depth)


def _literal(node, walk: _Walk, cwd, depth) -> str | None:
    """A word's value when the shell would give it without expanding anything; None when it expands.

    Substitutions inside it are walked as commands of their own (`echo $(rm x)` runs `rm x`).
    """
    kind = node.type
    if kind in ("word", "number"):
        text = walk.text(node)
        if "\\" in text:
            text = re.sub(r"\\(.)", r"\1", text.replace("\\\n", ""))
        return text
    if kind == "raw_string":
        return walk.text(node)[1:-1]
    if kind == "string":
        parts = [_literal(child, walk, cwd, depth) for child in node.named_children]
        if any(part is None for part in parts):
            return None
        return "".join(parts)
    if kind == "string_content":
        return re.sub(r'\\([$`"\\\n])', r"\1", walk.text(node))
    if kind == "concatenation":
        parts = [_literal(child, walk, cwd, depth) for child in node.named_children]
        return None if any(part is None for part in parts) else "".join(parts)
    if kind == "ansi_c_string":
        text = walk.text(node)[2:-1]
        return None if "\\" in text else text
    if kind == "process_substitution":
        _statement(node, walk, cwd, depth + 1)
        return "/dev/fd/63"  # what the command is given: a pipe, no file
    if kind == "command_substitution":
        _statement(node, walk, cwd, depth + 1)
    else:
        _substitutions(node, walk, cwd, depth)
    return None


def _write(path: str | None, walk: _Walk, cwd: str | None, what: str) -> None:
    if path is None:
        walk.cannot(f"{what} writes to a path named by an expansion")
        return
    if path.startswith(("/", "~")) or path == "-":
        walk.writes.append(path)
    elif cwd is _UNKNOWN:
        walk.cannot(f"{what} writes {path} in a directory it cannot know")
    else:
        walk.writes.append(posixpath.join(cwd, path) if cwd else path)


def _cd(target: str | None, cwd: str | None) -> str | None:
    """The directory after `cd target`: relative to where the command started, absolute, or unknown."""
    if target is None or target in ("-", "") or target.startswith("~"):
        return _UNKNOWN
    if target.startswith("/"):
        return target
    if cwd is _UNKNOWN:
        return _UNKNOWN
    return posixpath.normpath(posixpath.join(cwd, target)) if cwd else target


def _command(node, walk: _Walk, cwd: str | None, depth: int, extra_args: tuple = ()) -> str | None:
    name_node = node.child_by_field_name("name")
    for child in node.named_children:
        if child.type == "variable_assignment":
            _statement(child, walk, cwd, depth + 1)
        elif child.type in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
            _redirect(child, walk, cwd, depth)
    if name_node is None:
        return cwd
    words = [
        _literal(child, walk, cwd, depth)
        for child in node.named_children
        if child.type not in ("variable_assignment", "file_redirect", "heredoc_redirect", "herestring_redirect")
        and child.type != "command_name"
    ]
    name = _literal(name_node.named_children[0], walk, cwd, depth) if name_node.named_children else None
    return _argv([name, *words, *extra_args], walk, cwd, depth)


def _options_end(name: str, args: list[str | None]) -> int:
    """The index of the first word after a wrapper's options (the wrapped command)."""
    takes_value = OPTION_VALUES.get(name, set())
    index = 0
    while index < len(args):
        word = args[index]
        if word is None or not word.startswith("-") or word == "-":
            break
        index += 1
        if word == "--":
            break
        if word in takes_value:
            index += 1
    return index


def _plain_args(name: str, args: list[str | None]) -> list[str | None]:
    """A command's operands: its words without options (and the values those options take)."""
    takes_value = OPTION_VALUES.get(name, set())
    operands, index, options_done = [], 0, False
    while index < len(args):
        word = args[index]
        index += 1
        if options_done or word is None or not word.startswith("-") or word == "-":
            operands.append(word)
        elif word == "--":
            options_done = True
        elif word in takes_value:
            index += 1
    return operands


def _argv(argv: list[str | None], walk: _Walk, cwd: str | None, depth: int) -> str | None:
    """Judge one command's words (after the shell's parsing); returns the working directory after it."""
    if not argv:
        return cwd
    if argv[0] is None:
        walk.cannot("runs a command named by an expansion")
        return cwd
    name, args = posixpath.basename(argv[0]), argv[1:]
    if name in ("cd", "pushd"):
        operands = _plain_args(name, args)
        return _cd(operands[0] if operands else "~", cwd)
    if name == "popd":
        return _UNKNOWN
    if name in WRAPPERS:
        if name == "command" and any(word in ("-v", "-V") for word in args[:1]):
            return cwd
        start = _options_end(name, args)
        if name == "env":
            if any(word in ("-C", "--chdir") or (word or "").startswith("--chdir=") for word in args[:start]):
                walk.cannot("env changes into another directory")
            while start < len(args) and args[start] is not None and "=" in args[start]:
                start += 1
        elif name == "timeout" and start < len(args):
            start += 1  # the duration
        elif name == "nice" and start < len(args) and (args[start] or "").lstrip("-").isdigit():
            start += 1
        if any(word is None for word in args[:start]):
            walk.cannot(f"{name} takes an option named by an expansion")
        _argv(args[start:], walk, cwd, depth + 1)
        return cwd
    if name in SHELLS:
        return _shell(name, args, walk, cwd, depth)
    if name in ("eval",):
        if any(word is None for word in args):
            walk.cannot("eval of a script built by expansion")
        else:
            _read_script(" ".join(args), walk, cwd, depth + 1)
        return cwd
    if name in ("xargs", "parallel"):
        rest = args[_options_end(name, args) :]
        if rest and (rest[0] is None or _writes_anything(rest)):
            walk.cannot(f"{name} runs a command on files it reads from its input")
        return cwd
    if name == "find":
        if any(word in ("-delete", "-fprint", "-fprintf", "-fls", "-fprint0") for word in args):
            walk.cannot("find writes or deletes the files it finds")
        for index, word in enumerate(args):
            if word in ("-exec", "-execdir", "-ok", "-okdir") and _writes_anything(args[index + 1 :]):
                walk.cannot("find runs a command that writes on the files it finds")
        return cwd
    if name.rstrip("0123456789.") in INTERPRETERS or name in INTERPRETERS:
        for index, word in enumerate(args):
            if word in ("-c", "-e", "-E", "--eval", "-p", "--print", "-r") and index + 1 < len(args):
                code = args[index + 1]
                if code is None or _WRITING_CODE.search(code):
                    walk.cannot(f"{name} runs inline code that may write files")
        if name == "perl" and any(
            (word or "").startswith("-") and "i" in word[1:] and not word.startswith("--")
            for word in args[: _options_end(name, args)]
        ):
            _in_place(name, args, walk, cwd)
        return cwd
    if name == "git":
        return _git(args, walk, cwd)
    if name == "sed":
        _in_place(name, args, walk, cwd)
        return cwd
    if name == "dd":
        for word in args:
            if word is None:
                walk.cannot("dd with an operand named by an expansion")
            elif word.startswith("of="):
                _write(word[3:], walk, cwd, "dd")
        return cwd
    if name in ("patch",):
        walk.cannot("patch writes the files its diff names")
        return cwd
    if name in ("tar", "unzip", "7z", "cpio"):
        if (
            any(
                word is None or (word.startswith("-") and "x" in word) or word in ("x", "xf", "xzf", "xvf")
                for word in args
            )
            or name == "unzip"
        ):
            walk.cannot(f"{name} extracts files its archive names")
        return cwd
    operands = _plain_args(name, args)
    if name == "mv":
        targets = [*operands, *_copy_targets(name, args, operands)]
    elif name in WRITES_ALL_ARGS:
        targets = operands
    elif name in WRITES_LAST_ARG:
        targets = _copy_targets(name, args, operands)
    elif name in WRITES_AFTER_FIRST:
        targets = operands[1:]
    else:
        return cwd
    for target in targets:
        _write(target, walk, cwd, name)
    return cwd


def _copy_targets(name: str, args: list[str | None], operands: list[str | None]) -> list[str | None]:
    """What cp, install, ln… write: the target, or each source's name inside a target directory."""
    for index, word in enumerate(args):
        if word in ("-t", "--target-directory") and index + 1 < len(args):
            directory = args[index + 1]
            return [
                None if directory is None or src is None else posixpath.join(directory, posixpath.basename(src))
                for src in operands
            ]
        if word is not None and word.startswith("--target-directory="):
            directory = word.split("=", 1)[1]
            return [None if src is None else posixpath.join(directory, posixpath.basename(src)) for src in operands]
    if len(operands) < 2:
        return operands[-1:] if name == "install" else []
    *sources, target = operands
    if target is None:
        return [None]
    into = target in (".", "..") or target.endswith("/") or len(sources) > 1
    if not into:
        return [target]
    return [None if src is None else posixpath.join(target, posixpath.basename(src.rstrip("/"))) for src in sources]


def _in_place(name: str, args: list[str | None], walk: _Walk, cwd: str | None) -> None:
    """`sed -i` and `perl -pi` write the files they read: every operand after the script."""
    in_place = (
        any(
            word is not None
            and (
                word.startswith("--in-place")
                or (word.startswith("-") and not word.startswith("--") and "i" in word[1:].split("=")[0])
            )
            for word in args
        )
        if name == "sed"
        else True
    )
    if not in_place:
        return
    has_script_option = any(
        word in ("-e", "--expression", "-f", "--file", "-E")
        and name == "perl"
        or word in ("-e", "--expression", "-f", "--file")
        for word in args
    )
    operands = _plain_args(name, args)
    files = operands if has_script_option else operands[1:]
    for path in files:
        _write(path, walk, cwd, f"{name} -i")


def _git(args: list[str | None], walk: _Walk, cwd: str | None) -> str | None:
    start = _options_end("git", args)
    for word in args[:start]:
        if word in ("-C", "--git-dir", "--work-tree") or (word or "").startswith(("--work-tree=", "--git-dir=")):
            walk.cannot("git works in another directory")
    if start >= len(args):
        return cwd
    sub, rest = args[start], args[start + 1 :]
    if sub is None:
        walk.cannot("git runs a subcommand named by an expansion")
    elif sub in ("rm", "mv"):
        for path in _plain_args("git", rest):
            _write(path, walk, cwd, f"git {sub}")
    elif sub in ("checkout", "restore"):
        if "--" in rest:
            paths = rest[rest.index("--") + 1 :]
        elif sub == "restore":
            paths = [word for word in _plain_args("git", rest)]
            source = next((i for i, word in enumerate(rest) if word in ("-s", "--source")), None)
            if source is not None:
                paths = _plain_args("git", rest[:source] + rest[source + 2 :])
        elif any(word in ("-b", "-B", "--orphan") for word in rest):
            return cwd
        else:
            walk.cannot("git checkout may switch branches: it can change any file")
            return cwd
        for path in paths:
            _write(path, walk, cwd, f"git {sub}")
    elif sub in GIT_OPAQUE:
        if sub == "stash" and rest and rest[0] in ("list", "show"):
            return cwd
        if sub == "reset" and "--hard" not in rest and "--merge" not in rest and "--keep" not in rest:
            return cwd
        walk.cannot(f"git {sub} changes files its command line does not name")
    return cwd


def _writes_anything(argv: list[str | None]) -> bool:
    """Whether a command run on unknown files (by xargs, find -exec) is one that writes files."""
    probe = _Walk()
    _argv([*argv, "PROBE"], probe, "", 0)
    return bool(probe.writes or probe.unreadable)


def _shell(name: str, args: list[str | None], walk: _Walk, cwd: str | None, depth: int) -> str | None:
    """`bash -lc '…'`, `sh -c "…"`: the script is read as a command of its own, in the same directory."""
    for index, word in enumerate(args):
        if word is None:
            walk.cannot(f"{name} with an option named by an expansion")
            return cwd
        if word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
            if index + 1 >= len(args) or args[index + 1] is None:
                walk.cannot(f"{name} -c of a script built by expansion")
            else:
                _read_script(args[index + 1], walk, cwd, depth + 1)
            return cwd
        if not word.startswith(("-", "+")):
            break  # a script file: what it writes is not on its command line
    return cwd


def has_glob(path: str) -> bool:
    """Whether a path a command writes is a pattern the shell expands (`*.log`, `secrets/?`, `[ab].txt`)."""
    return bool(_GLOB.search(path))


# --- the words of a command, for the always-allow rules ---------------------------------------------------------


def simple_words(command: str) -> list[str] | None:
    """The words of one plain command: no operators, expansions, substitutions, redirections, globs, assignments
    or escapes; None for anything else (an always-allow prefix never covers `npm test && rm -rf /`)."""
    if not command.strip() or "\\" in command or "\n" in command:
        return None
    tree, source = _parse(command)
    root = tree.root_node
    if root.has_error or len(root.named_children) != 1 or root.named_children[0].type != "command":
        return None
    words: list[str] = []
    for child in root.named_children[0].named_children:
        node = child.named_children[0] if child.type == "command_name" and child.named_children else child
        if node.type == "word":
            text = _node_text(source, node)
            if _GLOB.search(text) or "{" in text or "~" in text[:1]:
                return None
            words.append(text)
        elif node.type == "raw_string":
            words.append(_node_text(source, node)[1:-1])
        elif node.type == "string" and all(part.type == "string_content" for part in node.named_children):
            text = "".join(_node_text(source, part) for part in node.named_children)
            if "$" in text or "`" in text:
                return None
            words.append(text)
        else:
            return None
    return words or None


def argv_script(argv: list[str]) -> str | None:
    """The script of `["/bin/bash", "-lc", "…"]` (Codex's argv form), None when argv is not that form."""
    if len(argv) == 3 and posixpath.basename(argv[0]) in SHELLS and argv[1].startswith("-") and "c" in argv[1][1:]:
        return argv[2]
    return None
