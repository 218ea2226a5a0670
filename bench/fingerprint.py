"""Source fingerprints: what of the code a cell's key depends on.

A cell's result depends on its architecture's module and on the project modules that
module imports (transitively), on the graph-building code and on the training code.
The last two carry explicit behaviour versions (``GRAPH_CODE_VERSION`` in
:mod:`bench.graphs.cache`, ``TRAINING_CODE_VERSION`` in :mod:`bench.training`), pinned by
known-answer tests, so an architecture's closure stops at them. Every other module is
fingerprinted by its *normalised* source: the syntax tree without docstrings, comments,
formatting or line numbers. Editing ``architectures/cgcnn.py`` therefore makes exactly
the cgcnn cells pending, while re-wording a docstring or re-formatting keeps every cell.

Why the syntax tree and not the text or the bytecode: text changes with every comment;
bytecode changes with the Python version. :func:`normalised_dump` writes the tree in our
own form that leaves out empty fields, so new optional fields of later Python versions
(e.g. ``type_params=[]`` since 3.12) do not change a fingerprint; a grid started under
one Python continues under another.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

from bench import defaults

#: Packages whose modules are followed; the architecture module's own top-level package too.
PROJECT_PACKAGES = ("architectures", "bench")
#: Modules covered by an explicit behaviour version: (module prefix, "module:ATTRIBUTE").
VERSIONED = {"bench.graphs": "bench.graphs.cache:GRAPH_CODE_VERSION",
             "bench.training": "bench.training:TRAINING_CODE_VERSION"}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_dump(node) -> str:
    """A canonical text of a syntax tree: node names and non-empty fields, no positions."""
    if isinstance(node, ast.AST):
        parts = []
        for name in node._fields:
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            parts.append(f"{name}={normalised_dump(value)}")
        return f"{type(node).__name__}({','.join(parts)})"
    if isinstance(node, list):
        return "[" + ",".join(normalised_dump(x) for x in node) + "]"
    return repr(node)


def source_digest(source: str) -> str:
    """sha256 of the normalised syntax tree of ``source`` (docstrings and comments dropped)."""
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(normalised_dump(tree).encode()).hexdigest()


def locate(module: str, roots: tuple[Path, ...] = ()) -> Path | None:
    """Source file of ``module``: looked up under ``roots`` first (a package is its ``__init__.py``),
    then through the import system (plugins installed elsewhere); None if it has no source file."""
    rel = Path(*module.split("."))
    for root in roots:
        for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names of every module ``source`` imports, at any depth of the file.

    ``from pkg import name`` yields ``pkg.name`` as well as ``pkg``: the caller keeps
    whichever exists as a file (``name`` may be a submodule or an attribute).
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - (node.level - 1)] if node.level > 1 else parent
                base = ".".join([*parent, base] if base else parent)
            names.update(f"{base}.{alias.name}" for alias in node.names)
            names.add(base)
    return names


def _versioned(module: str) -> str | None:
    for prefix, target in VERSIONED.items():
        if module == prefix or module.startswith(prefix + "."):
            return target
    return None


def _version_value(target: str) -> str:
    import importlib

    mod, attr = target.split(":")
    return str(getattr(importlib.import_module(mod), attr))


def module_closure(module: str, roots: tuple[Path, ...] = ()) -> dict[str, str]:
    """``{name: digest}`` of ``module`` and every project module it imports, transitively.

    Followed: modules of :data:`PROJECT_PACKAGES` and of ``module``'s own top-level package.
    A module covered by :data:`VERSIONED` contributes its behaviour version instead of its
    source (``"version:<value>"`` under the version's name) and is not followed further.
    Parent packages are not added implicitly (``architectures/__init__.py`` imports every
    architecture, which would tie all of them together).
    """
    follow = set(PROJECT_PACKAGES) | {module.split(".")[0]}
    out: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        target = _versioned(name)
        if target is not None:
            out[target] = f"version:{_version_value(target)}"
            out[name] = "versioned"
            continue
        path = locate(name, roots)
        if path is None:
            continue
        source = path.read_text(encoding="utf-8")
        out[name] = source_digest(source)
        for dep in imported_modules(source, name, path.name == "__init__.py"):
            if dep.split(".")[0] in follow and dep not in out:
                if _versioned(dep) is not None or locate(dep, roots) is not None:
                    todo.append(dep)
    return {k: v for k, v in out.items() if v != "versioned"}


@functools.cache
def module_fingerprint(module: str, roots: tuple[Path, ...] = ()) -> str:
    """One short digest of :func:`module_closure` (sorted by module name)."""
    closure = module_closure(module, roots)
    text = "\n".join(f"{k}={v}" for k, v in sorted(closure.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_module(name: str) -> str:
    import architectures

    return architectures.REGISTRY.get(name).cls.__module__


def architecture_fingerprint(name: str, roots: tuple[Path, ...] | None = None) -> str:
    """Fingerprint of the module that registered architecture ``name`` (and what it imports).

    ``roots`` defaults to the project root, so the files of this checkout are what counts.
    """
    return module_fingerprint(architecture_module(name), (defaults.PROJECT_ROOT,) if roots is None else roots)
