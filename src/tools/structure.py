"""Import graph, layers and flows of the code, read with ``ast`` (nothing imported): ``python -m src.tools.structure``.

It lists the entry scripts and the modules and packages under ``src/``, the imports between them (top-level and
function-local ones, relative imports resolved), the import cycles between modules and between packages, every
function-local import, the arrows that run up against :data:`LAYERS`, and the walk of ``cfg`` from every entry
flow. ``--json`` prints the same as JSON, ``--root DIR`` reads another checkout (e.g. ``git archive`` of an older
commit). ``tests/test_structure.py`` holds the rules: no cycles, no arrow up, function-local imports only with a
reason.

Words used in the output:

- *room*: an entry script, a package directly under ``src/`` (``src.deploy``) or a module directly under it
  (``src.config``). Layers are declared per room.
- *function-local import*: an ``import`` inside a function. It hides an edge of the graph until the function runs,
  so it is allowed only with a ``# lazy: <reason>`` comment on its line or the line above (e.g. MindSpore kept out
  of the path that runs a ``.ms`` file). Imports in an ``if __name__ == "__main__":`` block are the module's own
  entry point (``python -m ...``): listed apart, never counted as a library's import.
- *cfg walk*: from every flow an entry point runs (``run_cli(flow, ...)``), follow each call that passes the
  configuration object on, depth first in source order, noting the module the walk is in after each call and each
  return. A *re-entry* is arriving in a module the walk has already left (a flow that calls five library functions
  in turn re-enters itself four times: that is its job, so re-entries into the flow's own module are counted
  apart); a *call-back* calls into a module that is already on the call stack below the caller (A -> B -> A); an
  *upward call* passes ``cfg`` from a lower layer to a higher one.
"""
import argparse
import ast
import json
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Layers, top first. A room may import rooms of lower layers only; rooms sharing a layer are independent of each
# other (neither imports the other). Entry scripts parse the configuration and call a flow; flows (the command
# layer, and the MindSpore Hub entry) orchestrate the libraries; libraries never import a flow.
LAYERS = (
    ("entry scripts", ("train", "eval", "export", "infer", "mindspore_hub_conf")),
    ("flows", ("src.flows", "src.hub")),
    ("train", ("src.train",)),
    ("quant", ("src.quant",)),
    ("convert", ("src.convert",)),          # reads class-name lists with src.deploy.labels
    ("deploy", ("src.deploy",)),
    ("tools", ("src.tools",)),              # the profiler measures src.models networks
    ("data / models", ("src.data", "src.models")),
    ("base", ("src.runtime", "src.config", "src.record", "src.extras")),
    ("files", ("src.files",)),
    ("errors", ("src.errors",)),
)
FLOW_ROOMS = ("src.flows",)
LIBRARY_ROOMS = ("src.train", "src.quant", "src.convert", "src.deploy", "src.tools", "src.data", "src.models")
LAZY_MARK = "# lazy:"


@dataclass
class Import:
    """One imported name: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str            # a project module, or the top-level name of an outside package
    line: int
    kind: str              # "top", "local" (inside a function) or "main" (an ``if __name__ == "__main__"`` block)
    project: bool = True
    reason: str = ""       # the ``# lazy:`` comment of a function-local import


@dataclass
class Walk:
    """The walk of ``cfg`` from one flow."""

    entry: str
    flow: str
    calls: int = 0
    trail: list = field(default_factory=list)     # the modules the walk is in, consecutive repeats merged
    upward_calls: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)  # calls into a module already on the call stack below

    @property
    def visits(self):
        return Counter(self.trail)

    @property
    def reentries(self):
        return len(self.trail) - len(set(self.trail))

    @property
    def library_reentries(self):
        """Re-entries into library modules: not the flow's own module nor any other of ``src.flows`` (an
        orchestrator returns to itself after each call by design)."""
        own = self.flow.split(":")[0]
        return sum(n - 1 for m, n in self.visits.items() if m != own and Project.room(m) not in FLOW_ROOMS)


class Project:
    """The parsed sources of one checkout."""

    def __init__(self, root=ROOT):
        self.root = os.path.abspath(root)
        self.files = {}            # module name -> path
        self.packages = set()      # module names that are packages (their __init__.py)
        for name in sorted(os.listdir(self.root)):
            if name.endswith(".py") and os.path.isfile(os.path.join(self.root, name)):
                self.files[name[:-3]] = os.path.join(self.root, name)
        for folder, dirs, names in os.walk(os.path.join(self.root, "src")):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(folder, name), self.root)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                    self.packages.add(".".join(rel))
                self.files[".".join(rel)] = os.path.join(folder, name)
        self.trees, self.lines = {}, {}
        for module, path in self.files.items():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            try:
                self.trees[module] = ast.parse(text, path)
            except SyntaxError as exc:
                raise SystemExit(f"error: cannot parse {path}: {exc}") from None
            self.lines[module] = text.splitlines()
        self.imports = [imp for module in self.files for imp in self._imports(module)]

    # --- rooms and layers ------------------------------------------------------------------------------------

    @staticmethod
    def room(module):
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "src" and len(parts) > 1 else module

    def rooms(self):
        return sorted({self.room(m) for m in self.files if m != "src"})

    @staticmethod
    def layer(room):
        for index, (_, rooms) in enumerate(LAYERS):
            if room in rooms:
                return index
        return None

    # --- imports ---------------------------------------------------------------------------------------------

    def _package_of(self, module):
        return module if module in self.packages else module.rpartition(".")[0]

    def _project_target(self, dotted):
        """The longest prefix of ``dotted`` that is a project module, or None."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in self.files and name != "src":
                return name
        return None

    def _targets(self, module, node):
        """``[(dotted module, bound name, imported name or None)]`` of an import statement (relative imports
        resolved): ``from a import b`` gives ``(a.b, b, None)`` when ``a.b`` is a module, else ``(a, b, b)``;
        ``import a.b as c`` gives ``(a.b, c, None)``."""
        if isinstance(node, ast.Import):
            return [(a.name, a.asname or a.name.split(".")[0], None) for a in node.names]
        base = node.module or ""
        if node.level:
            package = self._package_of(module).split(".")
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        out = []
        for alias in node.names:
            full = f"{base}.{alias.name}"
            bound = alias.asname or alias.name
            out.append((full, bound, None) if full in self.files else (base, bound, alias.name))
        return out

    def _reason(self, module, node, previous=None):
        """The ``# lazy:`` reason of an import statement: on its own lines or on a comment line directly above it;
        an import that follows another import (blank lines between allowed) shares that one's reason."""
        lines = self.lines[module]
        for number in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            if LAZY_MARK in lines[number - 1]:
                return lines[number - 1].split(LAZY_MARK, 1)[1].strip()
        if previous is not None and not any(line.strip() for line in lines[previous[0]:node.lineno - 1]):
            return previous[1]
        above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
        return above.split(LAZY_MARK, 1)[1].strip() if above.startswith(LAZY_MARK) else ""

    def _imports(self, module):
        found = []

        def visit(node, kind):
            previous = None  # (last line, reason) of the import statement just before, for a run of imports
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.Import, ast.ImportFrom)):
                    previous = None
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    reason = self._reason(module, child, previous) if kind == "local" else ""
                    previous = (child.end_lineno or child.lineno, reason)
                    for dotted, _, _ in self._targets(module, child):
                        target = self._project_target(dotted)
                        if target is not None:
                            found.append(Import(module, target, child.lineno, kind, True, reason))
                        elif kind != "top":
                            found.append(Import(module, dotted.split(".")[0], child.lineno, kind, False, reason))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, "local" if kind != "main" else "main")
                elif isinstance(child, ast.If) and kind == "top" and _is_main_guard(child.test):
                    for stmt in child.body:
                        visit(ast.Module(body=[stmt], type_ignores=[]), "main")
                    for stmt in child.orelse:
                        visit(ast.Module(body=[stmt], type_ignores=[]), kind)
                else:
                    visit(child, kind)

        visit(self.trees[module], "top")
        unique = {(i.target, i.line, i.kind): i for i in found if i.target != module}  # one per statement
        return list(unique.values())

    def edges(self, kinds=("top", "local")):
        """``{(source, target)}`` between project modules through imports of ``kinds``."""
        return {(i.source, i.target) for i in self.imports if i.project and i.kind in kinds}

    def room_edges(self, kinds=("top", "local")):
        return {(self.room(s), self.room(t)) for s, t in self.edges(kinds) if self.room(s) != self.room(t)}

    def local_imports(self):
        return [i for i in self.imports if i.kind == "local"]

    # --- rules -----------------------------------------------------------------------------------------------

    def cycles(self, edges):
        """Every import circle: one shortest cycle per strongly connected component, as a node list."""
        graph = {}
        for s, t in edges:
            graph.setdefault(s, set()).add(t)
            graph.setdefault(t, set())
        return [_shortest_cycle(graph, scc) for scc in _sccs(graph) if len(scc) > 1]

    def arrows_up(self):
        """Imports (not ``__main__`` blocks) from a room to one of a higher or the same layer; an import of a room
        without a declared layer is listed too."""
        out = []
        for imp in self.imports:
            if not imp.project or imp.kind == "main":
                continue
            src, dst = self.room(imp.source), self.room(imp.target)
            if src == dst or src == "src" or dst == "src":
                continue
            ls, ld = self.layer(src), self.layer(dst)
            if ls is None or ld is None or ld <= ls:
                out.append(imp)
        return out

    def flow_imports(self):
        """Imports of a flow by a library (``__main__`` blocks apart)."""
        return [i for i in self.imports if i.project and i.kind != "main" and self.room(i.target) in FLOW_ROOMS
                and self.room(i.source) not in FLOW_ROOMS and self.layer(self.room(i.source)) != 0]

    # --- cfg walks -------------------------------------------------------------------------------------------

    def _scope(self, module):
        """``{name: entity}`` of a module's top level: ("module", m), ("func", m, qualname), ("class", m, name),
        ("symbol", m, name) for a name imported from module m."""
        cache = self.__dict__.setdefault("_scopes", {})
        if module not in cache:
            table = {}
            for node in self.trees[module].body:
                self._bind(module, node, table)
            cache[module] = table
        return cache[module]

    def _bind(self, module, node, table):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            table[node.name] = ("func", module, node.name)
        elif isinstance(node, ast.ClassDef):
            table[node.name] = ("class", module, node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for dotted, bound, name in self._targets(module, node):
                if name is not None and dotted in self.files:
                    table[bound] = ("symbol", dotted, name)
                elif name is None and self._project_target(dotted):
                    plain = isinstance(node, ast.Import) and bound == dotted.split(".")[0]
                    table[bound] = ("module", bound if plain else dotted)
        elif isinstance(node, (ast.If, ast.Try)):
            for child in node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", []):
                self._bind(module, child, table)

    def _lookup(self, entity, depth=0):
        """Follow re-exports to a function, class or module."""
        while entity and entity[0] == "symbol" and depth < 20:
            entity = self._scope(entity[1]).get(entity[2])
            if entity is None:
                return None
            depth += 1
        return entity

    def _resolve(self, expr, scope):
        if isinstance(expr, ast.Name):
            return self._lookup(scope.get(expr.id))
        if isinstance(expr, ast.Attribute):
            base = self._resolve(expr.value, scope)
            if base is None:
                return None
            if base[0] == "module":
                sub = f"{base[1]}.{expr.attr}"
                if sub in self.files:
                    return ("module", sub)
                return self._lookup(self._scope(base[1]).get(expr.attr))
            if base[0] == "class":
                return ("func", base[1], f"{base[2]}.{expr.attr}")
        return None

    def _function(self, module, qualname):
        node = self.trees[module]
        for part in qualname.split("."):
            node = next((n for n in getattr(node, "body", []) if isinstance(
                n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
            if node is None:
                return None
        return node

    def _callee(self, call, scope):
        """``(module, qualname, def node, bound)`` of a project function ``call`` runs, or None; ``bound``: the
        first parameter is filled by Python (a method called on its class: classmethod, or a constructor)."""
        entity = self._resolve(call.func, scope)
        if entity is None or entity[0] not in ("func", "class"):
            return None
        module, qualname = entity[1], entity[2]
        if entity[0] == "class":
            qualname += ".__init__"
        node = self._function(module, qualname)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        bound = entity[0] == "class" or (
            "." in qualname and any(isinstance(d, ast.Name) and d.id == "classmethod" for d in node.decorator_list))
        return module, qualname, node, bound

    @staticmethod
    def _receiving(call, var, node, bound):
        """The parameter of ``node`` that receives ``var`` in ``call``, or None when ``var`` is not passed."""
        params = [a.arg for a in node.args.posonlyargs + node.args.args][1 if bound else 0:]
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Name) and arg.id == var:
                return params[index] if index < len(params) else None
        for keyword in call.keywords:
            if isinstance(keyword.value, ast.Name) and keyword.value.id == var and keyword.arg:
                return keyword.arg
        return None

    def _local_scope(self, module, node):
        scope = dict(self._scope(module))
        for child in ast.walk(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                self._bind(module, child, scope)
        return scope

    def flows(self):
        """``[(entry, "module:function")]``: every ``run_cli(flow, ...)`` of an entry script or a ``__main__``
        block."""
        out = []
        for module, tree in self.trees.items():
            guarded = [n for n in tree.body if isinstance(n, ast.If) and _is_main_guard(n.test)]
            for block in guarded:
                for call in (c for c in ast.walk(block) if isinstance(c, ast.Call)):
                    if isinstance(call.func, ast.Name) and call.func.id == "run_cli" and call.args:
                        scope = self._local_scope(module, block)
                        entity = self._resolve(call.args[0], scope)
                        if entity and entity[0] == "func":
                            out.append((module, f"{entity[1]}:{entity[2]}"))
        return out

    def walk(self, entry, flow, var="cfg"):
        """The walk of ``var`` from ``flow`` ("module:function"); ``var`` None follows every project call instead,
        walking each function's body once (a later call of it counts as a visit)."""
        module, qualname = flow.split(":")
        result = Walk(entry, flow)
        expanded = set()

        def go(module, qualname, node, var, stack, modules):
            result.trail.append(module)
            if var is None and (module, qualname) in expanded:
                return
            expanded.add((module, qualname))
            scope = self._local_scope(module, node)
            calls = sorted((c for c in ast.walk(node) if isinstance(c, ast.Call)),
                           key=lambda c: (c.lineno, c.col_offset))
            for call in calls:
                callee = self._callee(call, scope)
                if callee is None or (callee[0], callee[1]) in stack:
                    continue
                param = self._receiving(call, var, callee[2], callee[3]) if var is not None else None
                if param is None and var is not None:
                    continue
                result.calls += 1
                up, down = self.layer(self.room(module)), self.layer(self.room(callee[0]))
                if up is not None and down is not None and down < up:
                    result.upward_calls.append(f"{module}:{qualname} -> {callee[0]}:{callee[1]}")
                if callee[0] != module and callee[0] in modules:
                    result.callbacks.append(" -> ".join(modules[modules.index(callee[0]):] + [callee[0]]))
                go(callee[0], callee[1], callee[2], param, stack | {(callee[0], callee[1])},
                   modules + ([callee[0]] if callee[0] != module else []))
                result.trail.append(module)

        node = self._function(module, qualname)
        go(module, qualname, node, var, {(module, qualname)}, [module])
        merged = [m for i, m in enumerate(result.trail) if i == 0 or result.trail[i - 1] != m]
        result.trail = merged
        return result

    def walks(self, var="cfg"):
        return [self.walk(entry, flow, var) for entry, flow in self.flows()]


def _is_main_guard(test):
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _sccs(graph):
    """Tarjan's strongly connected components (iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    scc.add(top)
                    if top == node:
                        break
                out.append(scc)
    return out


def _shortest_cycle(graph, scc):
    """A shortest cycle through the first node of ``scc`` (breadth first inside the component)."""
    start = min(scc)
    parents, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & scc):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [start] + path[::-1][1:] + [start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return sorted(scc)


def measure(root=ROOT):
    """Everything the report prints, as plain data."""
    project = Project(root)
    rooms = project.rooms()
    locals_ = project.local_imports()

    def walks(var):
        return [{"entry": w.entry, "flow": w.flow, "calls": w.calls, "trail": w.trail, "visits": dict(w.visits),
                 "reentries": w.reentries, "library_reentries": w.library_reentries, "callbacks": w.callbacks,
                 "upward_calls": w.upward_calls} for w in project.walks(var)]

    return {
        "root": project.root,
        "rooms": rooms,
        "undeclared_rooms": [r for r in rooms if project.layer(r) is None],
        "modules": sorted(m for m in project.files if m.startswith("src")),
        "packages": sorted(project.packages - {"src"}),
        "module_edges": sorted(project.edges()),
        "room_edges": sorted(project.room_edges()),
        "main_block_imports": [asdict(i) for i in project.imports if i.kind == "main" and i.project],
        "module_cycles": project.cycles(project.edges()),
        "room_cycles": project.cycles(project.room_edges()),
        "local_imports": [asdict(i) for i in locals_],
        "unexplained_local_imports": [asdict(i) for i in locals_ if not i.reason],
        "arrows_up": [asdict(i) for i in project.arrows_up()],
        "library_imports_of_flows": [asdict(i) for i in project.flow_imports()],
        "walks": walks("cfg"),
        "call_walks": walks(None),
    }


def _where(imp):
    return f"{imp['source']}:{imp['line']}"


def report(data, out=sys.stdout):
    def say(text=""):
        print(text, file=out)

    modules = data["modules"]
    entries = [r for r in data["rooms"] if not r.startswith("src")]
    say(f"structure of {data['root']} (read with ast; nothing imported)")
    say(f"rooms: {len(data['rooms'])} ({len(entries)} entry scripts, {len(data['rooms']) - len(entries)} under "
        f"src/); {len(modules)} modules in {len(data['packages'])} packages")
    for name, rooms in LAYERS:
        say(f"  layer {name}: {', '.join(rooms)}")
    if data["undeclared_rooms"]:
        say(f"  rooms without a layer: {', '.join(data['undeclared_rooms'])}")
    project_locals = [i for i in data["local_imports"] if i["project"]]
    say(f"imports between project modules: {len(data['module_edges'])} module pairs, "
        f"{len(data['room_edges'])} room pairs")
    for label, key in (("import cycles between modules", "module_cycles"),
                       ("import cycles between rooms", "room_cycles")):
        say(f"{label}: {len(data[key])}")
        for cycle in data[key]:
            say("  " + " -> ".join(cycle))
    say(f"arrows running up (against the layers): {len(data['arrows_up'])}")
    for imp in data["arrows_up"]:
        say(f"  {_where(imp)} {imp['kind']} import of {imp['target']}")
    say(f"library imports of a flow: {len(data['library_imports_of_flows'])}")
    for imp in data["library_imports_of_flows"]:
        say(f"  {_where(imp)} imports {imp['target']}")
    say(f"function-local imports: {len(data['local_imports'])} ({len(project_locals)} of project modules, "
        f"{len(data['local_imports']) - len(project_locals)} of outside packages); without a '{LAZY_MARK}' "
        f"reason: {len(data['unexplained_local_imports'])}")
    for imp in data["local_imports"]:
        why = imp["reason"] or "NO REASON"
        say(f"  {_where(imp)} {imp['target']}{'' if imp['project'] else ' (outside)'}: {why}")
    say(f"entry points inside modules (__main__ blocks) importing project modules: "
        f"{len(data['main_block_imports'])}")
    for imp in data["main_block_imports"]:
        say(f"  {_where(imp)} imports {imp['target']}")
    say("cfg walks (calls passing cfg on, depth first; re-entry = arriving in a module already left; call-back = "
        "calling into a module already on the stack):")
    _walks(say, data["walks"])
    say("call walks (every project call, each function walked once):")
    _walks(say, data["call_walks"], visits=False)


def _walks(say, walks, visits=True):
    for w in walks:
        say(f"  {w['entry']} -> {w['flow']}: {w['calls']} calls, {len(w['visits'])} modules, {w['reentries']} "
            f"re-entries ({w['library_reentries']} into libraries), {len(w['callbacks'])} call-backs, "
            f"{len(w['upward_calls'])} upward calls")
        if visits:
            say("    visits: " + ", ".join(f"{m} {n}" for m, n in sorted(w["visits"].items(), key=lambda kv: -kv[1])))
        for call in w["callbacks"]:
            say(f"    call-back: {call}")
        for call in w["upward_calls"]:
            say(f"    upward: {call}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=ROOT, help="the checkout to read (default: this one)")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)
    data = measure(args.root)
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        report(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
