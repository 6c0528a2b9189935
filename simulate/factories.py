"""Module factories: a user's ``torch.nn.Module`` architecture, named so that a run can record it
and another process can rebuild it.

A factory is a callable ``factory(in_shape, c) -> torch.nn.Module`` whose module maps a batch of
inputs ``(batch, *in_shape)`` to logits ``(batch, c)``. :class:`Factory` names one of three kinds:

- built in: ``"cnn"`` (:func:`small_cnn`, a two-layer convolutional network for images);
- a user's file, ``"FILE.py:NAME"``: the file is executed (``importlib``, once per process) only
  when a spec names it, and the run records the file's SHA-256; a process that rebuilds the
  factory (a worker) loads the same file by path and name and refuses it when its SHA-256 has
  changed since the run started;
- a Python callable (``AuditSpec(student=my_factory)``): recorded by its qualified name and the
  SHA-256 of its source file (of its source text where there is no file, e.g. in a notebook); it
  reaches worker processes by pickling, i.e. when it is importable by module and name.

A run's identity names the factory (its name, the SHA-256 and the module's parameter names and
shapes for the run's ``in_shape`` and ``c``: :func:`factory_identity`), never a Python object's
repr. Modules are built under :func:`built_module`: ``torch.manual_seed(seed)`` inside a forked
generator, so a replica's initial weights depend on its seed only and the global random state is
left as it was.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["BUILTIN", "Factory", "built_module", "factory_identity", "small_cnn"]


def small_cnn(in_shape: tuple[int, ...], c: int):
    """The built-in ``cnn``: two 3x3 convolutions (16 and 32 channels, padding 1, ReLU), a 2x2
    average pool and a linear read-out, for images ``(C, H, W)`` (digits: (1, 8, 8), 12,778
    parameters)."""
    import torch.nn as nn

    if len(in_shape) != 3:
        raise ValueError(
            f"the cnn architecture needs image inputs (C, H, W); these inputs have shape "
            f"{tuple(in_shape)} (give --input-shape C,H,W, or use mlp)"
        )
    C, H, W = (int(v) for v in in_shape)
    if H < 2 or W < 2:
        raise ValueError(f"the cnn architecture needs images of at least 2x2, got {H}x{W}")
    return nn.Sequential(
        nn.Conv2d(C, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (H // 2) * (W // 2), c),
    )


#: Built-in factories by name.
BUILTIN: dict[str, Callable] = {"cnn": small_cnn}

# Loaded user files: (resolved path, sha256) -> module namespace (each file runs once per process).
_LOADED: dict[tuple[str, str | None], object] = {}


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Factory:
    """A named module factory (see the module docstring). Build one with :meth:`of`."""

    def __init__(
        self,
        name: str,
        path: str | None = None,
        sha256: str | None = None,
        fn: Callable | None = None,
    ):
        self.name, self.path, self.sha256, self._fn = name, path, sha256, fn

    # construction -----------------------------------------------------------------------------
    @classmethod
    def of(cls, value) -> Factory:
        """A factory from a built-in name, ``"FILE.py:NAME"``, a record (:meth:`describe`), a
        callable or a Factory. Raises ValueError (one line) for anything else."""
        if isinstance(value, Factory):
            return value
        if isinstance(value, dict):
            return cls.of(value["name"] if value.get("path") is None else value["spec"])
        if isinstance(value, str):
            text = value.strip()
            if text in BUILTIN:
                return cls(text)
            path, sep, name = text.rpartition(":")
            if not sep or not path.endswith(".py") or not name.isidentifier():
                known = ", ".join(sorted(BUILTIN))
                raise ValueError(
                    f"unknown architecture {value!r}: use {known} or FILE.py:NAME (a function "
                    "NAME(in_shape, c) in your file that returns a torch.nn.Module)"
                )
            return cls.from_file(path, name)
        if callable(value):
            return cls.from_callable(value)
        raise ValueError(f"a factory is a name, FILE.py:NAME or a callable, got {value!r}")

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str) -> Factory:
        """The function ``name`` of the Python file ``path`` (loaded when first called)."""
        p = Path(os.path.expandvars(os.path.expanduser(str(path))))
        if not p.is_file():
            raise ValueError(f"no such factory file: {p}")
        return cls(name, str(p.resolve()), file_sha256(p))

    @classmethod
    def from_callable(cls, fn: Callable) -> Factory:
        """A Python callable: its qualified name and the SHA-256 of its file (or source text)."""
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        module = getattr(fn, "__module__", None) or ""
        try:
            where = inspect.getsourcefile(fn)
        except TypeError:
            where = None
        if where and os.path.isfile(where):
            sha = file_sha256(where)
        else:
            try:
                sha = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
            except (OSError, TypeError):
                sha = None
        return cls(f"{module}.{name}" if module else name, None, sha, fn)

    # use -------------------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        """What names it on the command line (``cnn``, ``FILE.py:NAME``) or in Python."""
        return f"{self.path}:{self.name}" if self.path is not None else self.name

    def function(self) -> Callable:
        """The callable ``(in_shape, c) -> module`` (a user's file is executed on first use)."""
        if self._fn is not None:
            return self._fn
        if self.path is None:
            return BUILTIN[self.name]
        key = (self.path, self.sha256)
        if key not in _LOADED:
            if not Path(self.path).is_file():
                raise ValueError(f"factory file {self.path} is gone")
            if file_sha256(self.path) != self.sha256:
                raise ValueError(f"factory file {self.path} changed since this run started")
            _LOADED[key] = _load_file(self.path)
        fn = getattr(_LOADED[key], self.name, None)
        if not callable(fn):
            raise ValueError(f"{self.path} defines no function {self.name!r}")
        return fn

    def describe(self) -> dict:
        """The record of a run's config: name, file (or None), SHA-256 and ``spec``."""
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "spec": self.spec}

    def __reduce__(self):
        if self._fn is not None:  # pickled by reference: importable callables only
            return (Factory, (self.name, self.path, self.sha256, self._fn))
        return (Factory, (self.name, self.path, self.sha256))

    def _key(self) -> tuple:
        return (self.name, self.sha256, None if self._fn is None else id(self._fn))

    def __eq__(self, other) -> bool:
        return isinstance(other, Factory) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Factory({self.spec!r})"


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception raised by a user's code."""
    first = str(err).strip().splitlines()
    return type(err).__name__ + (f": {first[0]}" if first else "")


def _load_file(path: str):
    """Execute a user's factory file as a module; any error is one line (ValueError)."""
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"softleak_factory_{digest}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: any error is theirs, reported in one line
        raise ValueError(f"loading {path} failed: {one_line(err)}") from None
    return module


def built_module(factory: Factory, in_shape: tuple[int, ...], c: int, seed: int):
    """``factory(in_shape, c)`` built with the global generator seeded by ``seed`` inside a fork
    (the caller's random state is left unchanged). ValueError (one line) when the factory fails
    or returns no ``torch.nn.Module`` with parameters."""
    import torch

    fn = factory.function()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            module = fn(tuple(int(v) for v in in_shape), int(c))
        except ValueError as err:
            raise ValueError(f"factory {factory.name}: {err}") from None
        except Exception as err:  # the user's code
            raise ValueError(
                f"factory {factory.name}({tuple(in_shape)}, {c}) failed: {one_line(err)}"
            ) from None
    if not isinstance(module, torch.nn.Module):
        raise ValueError(
            f"factory {factory.name} must return a torch.nn.Module, got {type(module).__name__}"
        )
    if not any(True for _ in module.parameters()):
        raise ValueError(f"factory {factory.name} returned a module without parameters")
    return module


def parameter_shapes(module) -> list[list]:
    """``[[name, [shape...]], ...]`` of a module's parameters, in registration order."""
    return [[name, list(p.shape)] for name, p in module.named_parameters()]


def factory_identity(factory: Factory, in_shape: tuple[int, ...], c: int) -> dict:
    """What a run's identity records of a factory: its name, SHA-256 and the parameter names and
    shapes of the module it builds for ``in_shape`` and ``c`` (never a repr). The module is
    checked first (``simulate.module_engine.check_module``: ValueError, one line)."""
    from softleak.simulate.module_engine import check_module

    module = built_module(factory, in_shape, c, 0)
    check_module(module, tuple(in_shape), c, factory.name)  # a wrong output shape: refused now
    return {"name": factory.name, "sha256": factory.sha256, "params": parameter_shapes(module)}
