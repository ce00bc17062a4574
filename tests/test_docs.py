"""The documentation stays a front door that works (issue 26): README.md is at most 250 lines, every relative link
of README.md, CHANGELOG.md, CONTRIBUTING.md and docs/*.md reaches an existing file and heading, and every command
those pages give for a project script names an existing script and only flags that script accepts.

Static reading only (no subprocess, no MindSpore): entry scripts that run the one config system
(``run_cli(flow, "section")``) accept the keys of ``default_config.yaml`` for their section; argparse scripts the
options of their ``add_argument`` calls (in the script or the project modules it imports), and a command must give
the ones marked ``required=True``; the bash launchers the options they parse (``parse_args "..."`` or their own
``case`` patterns), and what they pass on to a Python entry script (after ``--``) is checked as that script's keys.
"""
import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
SECTIONS = ("train", "eval", "export", "infer")
# bash launchers that pass extra arguments on to a Python entry script: quickstart.sh all but its own, the others
# what follows a bare "--"
FORWARDS = {"scripts/quickstart.sh": "train.py", "scripts/run_distribute_train.sh": "train.py",
            "scripts/run_standalone_train.sh": "train.py", "scripts/run_eval.sh": "eval.py",
            "scripts/run_export.sh": "export.py"}
SHELL_FENCES = {"bash", "sh", "shell", "console"}


def doc_files():
    files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "CONTRIBUTING.md")]
    return [f for f in files if f.exists()] + sorted((ROOT / "docs").glob("*.md"))


def rel(path):
    return str(Path(path).relative_to(ROOT))


# ---- markdown reading --------------------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")


def split_blocks(text):
    """``(prose, fences)``: prose lines as ``[(lineno, line)]`` with fenced blocks blanked out, and each fenced
    block as ``(lang, [(lineno, line)])``."""
    prose, fences, block, marker, lang = [], [], None, None, ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if block is None:
            if match:
                block, marker, lang = [], match.group(1), match.group(2).lower()
                prose.append((number, ""))
            else:
                prose.append((number, line))
        elif match and line.strip().startswith(marker[0] * len(marker)) and not match.group(2):
            fences.append((lang, block))
            block = None
            prose.append((number, ""))
        else:
            block.append((number, line))
            prose.append((number, ""))
    return prose, fences


INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)


def without_code_spans(line):
    return INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor of a heading: markup dropped, lowercase, punctuation other than '-' and '_' dropped, each
    space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    found, seen = set(), {}
    prose, _ = split_blocks(path.read_text(encoding="utf-8"))
    for _, line in prose:
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    for match in re.finditer(r'<a\s+(?:id|name)="([^"]+)"', path.read_text(encoding="utf-8")):
        found.add(match.group(1))
    return found


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(path):
    """``[(lineno, target)]`` of the inline links and images outside code."""
    prose, _ = split_blocks(path.read_text(encoding="utf-8"))
    return [(number, m.group(1)) for number, line in prose for m in LINK.finditer(without_code_spans(line))]


# ---- what a project script accepts -------------------------------------------------------------------------------

def config_keys(section):
    data = yaml.safe_load((ROOT / "default_config.yaml").read_text(encoding="utf-8"))
    keys = {k for k in data if k not in SECTIONS} | set(data.get(section) or {})
    return keys | {"config", "help"}


def project_imports(path):
    """Files of the project modules ``path`` imports (``from src.x import y``, ``import benchmarks.z``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    files = []
    for name in names:
        if name.split(".")[0] in ("src", "benchmarks"):
            base = ROOT / name.replace(".", "/")
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    files.append(candidate)
    return files


def argparse_options(path):
    """``(options, required)`` of the ``add_argument`` calls in ``path``, or, for a wrapper without any (such as
    ``scripts/convert_pytorch_weights.py``), in the project modules it imports."""
    options, required = set(), set()
    own = "add_argument" in path.read_text(encoding="utf-8")
    for source in [path] if own else project_imports(path):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                flags = [a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
                options.update(flags)
                if any(k.arg == "required" and getattr(k.value, "value", False) is True for k in node.keywords):
                    required.update(flags[:1])
    return options, required


def run_cli_section(source):
    match = re.search(r"run_cli\(\s*\w+\s*,\s*[\"'](\w+)[\"']", source)
    return match.group(1) if match else None


def python_acceptor(path):
    """``(accepts(flag) -> bool, required flags, what)`` for a Python script or module file."""
    source = path.read_text(encoding="utf-8")
    section = run_cli_section(source)
    if section:
        keys = config_keys(section)
        return (lambda flag: flag[2:].replace("-", "_") in keys), set(), f"a config key of {section}.py"
    options, required = argparse_options(path)
    if options or "argparse" in source:
        return (lambda flag: flag in options | {"--help"}), required, f"an option of {rel(path)}"
    return (lambda flag: False), set(), f"an option of {rel(path)} (it takes none)"


def bash_options(path):
    source = path.read_text(encoding="utf-8")
    match = re.search(r'parse_args\s+"([^"]*)"', source)
    if match:
        return set(match.group(1).split()) | {"--help", "-h"}
    return set(re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)\)", source)) | set(
        re.findall(r'==\s*"?(--[A-Za-z][\w-]*)"?', source)) | {"--help", "-h"}


# ---- commands in the pages ---------------------------------------------------------------------------------------

SCRIPT = re.compile(r"(?:^|(?<=\s))(?:python3?|bash)\s+(?:-m\s+(?P<module>[\w.]+)|(?P<file>[\w./-]+\.(?:py|sh)))")
FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")


def shell_lines(lang, block):
    """Logical command lines of a fenced shell block: continuations joined, comments dropped; ``console`` blocks
    keep only the ``$ `` prompts."""
    out, pending, start = [], "", None
    for number, line in block:
        if lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if start is None:
            start = number
        stripped = re.sub(r"(^|\s)#.*$", "", line)
        if stripped.rstrip().endswith("\\"):
            pending += stripped.rstrip()[:-1] + " "
            continue
        out.append((start, pending + stripped))
        pending, start = "", None
    if pending:
        out.append((start, pending))
    return out


def inline_commands(prose):
    """``[(lineno, command)]`` of code spans in running text that run a project script (``python train.py …``)."""
    out, paragraph = [], []

    def flush():
        if not paragraph:
            return
        text = "\n".join(line for _, line in paragraph)
        for match in INLINE_CODE.finditer(text):
            code = " ".join(match.group(2).split())
            if re.match(r"(?:\w+=\S+\s+)*(?:python3?|bash)\s", code):
                out.append((paragraph[0][0] + text.count("\n", 0, match.start()), code))
        paragraph.clear()

    for number, line in prose:
        if line.strip():
            paragraph.append((number, line))
        else:
            flush()
    flush()
    return out


def commands(path):
    prose, fences = split_blocks(path.read_text(encoding="utf-8"))
    found = [cmd for lang, block in fences if lang in SHELL_FENCES for cmd in shell_lines(lang, block)]
    return found + inline_commands(prose)


def problems_of(command):
    """What is wrong with one command line (several commands joined by ``&&``, ``;`` or `` | `` are each read)."""
    problems = []
    for part in re.split(r"\s*(?:&&|;|\s\|\s|\|\|)\s*", command):
        match = SCRIPT.search(part)
        if not match:
            continue
        tail = part[match.end():]
        if match.group("module"):
            module = match.group("module")
            if module.split(".")[0] not in ("src", "benchmarks"):
                continue  # python -m pytest / pip: not ours
            base = ROOT / module.replace(".", "/")
            target = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__main__.py"
            if not target.is_file():
                problems.append(f"no module {module} ({rel(base)}.py)")
                continue
        else:
            target = ROOT / match.group("file")
            if not target.is_file():
                problems.append(f"no file {match.group('file')}")
                continue
        problems += flag_problems(target, tail)
        problems += config_file_problems(tail)
    return problems


def flag_problems(target, tail):
    problems = []
    if target.suffix == ".sh":
        own, _, passed = tail.partition(" -- ") if " -- " in f" {tail} " else (tail, "", "")
        options = bash_options(target)
        forward = FORWARDS.get(rel(target))
        if forward and "parse_args" not in target.read_text(encoding="utf-8"):
            passed, own = own, ""  # quickstart.sh: everything but its own options goes on to train.py
        for flag in FLAG.findall(own):
            if flag not in options:
                problems.append(f"{rel(target)} does not accept {flag} (accepts {' '.join(sorted(options))})")
        if passed:
            if forward:
                accepts, _, what = python_acceptor(ROOT / forward)
                problems += [f"{flag} is not {what}" for flag in FLAG.findall(passed)
                             if flag not in options and not accepts(flag)]
            else:
                problems.append(f"{rel(target)} passes nothing on, yet the command gives it '{passed.strip()}'")
        return problems
    accepts, required, what = python_acceptor(target)
    given = FLAG.findall(tail)
    problems += [f"{flag} is not {what}" for flag in given if not accepts(flag)]
    elided = "…" in tail or "..." in tail
    if not elided:
        problems += [f"{rel(target)} requires {flag}" for flag in sorted(required) if flag not in given]
    return problems


def config_file_problems(tail):
    out = []
    for value in re.findall(r"--config[ =](\S+\.ya?ml)\b", tail):
        if not (ROOT / value).is_file():
            out.append(f"--config {value}: no such file")
    return out


# ---- the tests ---------------------------------------------------------------------------------------------------

def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"


@pytest.mark.parametrize("page", doc_files(), ids=rel)
def test_relative_links_reach_a_file_and_a_heading(page):
    bad = []
    for number, target in links(page):
        if re.match(r"^[a-z][\w+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            bad.append(f"{rel(page)}:{number}: link to {target}: no file {path_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{rel(page)}:{number}: link to {target}: no heading #{anchor} in {rel(dest)}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", doc_files(), ids=rel)
def test_documented_commands_name_real_scripts_and_flags(page):
    bad = []
    for number, command in commands(page):
        bad += [f"{rel(page)}:{number}: {command.strip()}\n    {problem}" for problem in problems_of(command)]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_should():
    """The reader itself: a wrong flag, a missing script, a missing required option, a key of another entry point."""
    assert problems_of("python train.py --lrr 0.1")
    assert not problems_of("python train.py --lr 0.1 --config configs/quickstart.yaml")
    assert problems_of("python export.py --epochs 3")  # a train: key is not export.py's
    assert problems_of("python nothere.py")
    assert problems_of("python -m benchmarks.nothere --x 1")
    assert not problems_of("python -m pytest -q -m 'not slow'")
    assert problems_of("python -m src.deploy.arm.prepare --model m.ms --input_shape 1 3 224 224 a.jpg")  # no --out_dir
    assert problems_of("bash scripts/run_distribute_train.sh --epochs 2")
    assert not problems_of("bash scripts/run_distribute_train.sh --worker_num 2 -- --epochs 2")
    assert problems_of("bash scripts/run_distribute_train.sh --worker_num 2 -- --epoch 2")
    assert not problems_of("bash scripts/quickstart.sh --skip_install --epochs 2")
    assert slug("Plug-and-play Ghost modules (`ghostify`)") == "plug-and-play-ghost-modules-ghostify"
    assert slug("Backbone API (`features_only`)") == "backbone-api-features_only"
    assert slug("MindSpore 2.10 pitfalls handled in the model code") == "mindspore-210-pitfalls-handled-in-the-model-code"
    lines = shell_lines("bash", [(1, "python train.py --lr 0.1 \\"), (2, "  --epochs 2   # a comment --bad")])
    assert len(lines) == 1 and lines[0][0] == 1 and lines[0][1].split() == "python train.py --lr 0.1 --epochs 2".split()
