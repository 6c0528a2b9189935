"""Any ``torch.nn.Module`` architecture as R replicas of the trainer's model protocol.

:class:`ModuleReplicas` holds R copies of the module a factory (``simulate.factories``) builds, one
per seed, with their parameters stacked along a leading replica axis
(``torch.func.stack_module_state``). It has what ``simulate.train.fit`` needs -- ``params`` (the
stacked leaves Adam updates in place), ``replicas`` and ``forward(X) -> (R, n, c)`` -- and no
analytic backward, so ``fit`` trains it through autograd: the one training loop, unchanged.

Two engines compute the forward pass, both through ``torch.func.functional_call`` on one
parameter-less copy of the module (on the ``meta`` device):

- ``vmap``: ``torch.func.vmap`` over the replicas' stacked parameters and buffers, the inputs
  shared (PyTorch's documented model-ensembling pattern);
- ``loop``: the replicas one after another on views of the same stacked tensors.

They agree to float32 round-off. ``engine="auto"`` takes the faster one as measured side by side
by ``benchmarks/bench_module_engine.py`` (this 2-core CPU, 1 thread, medians, engines alternating):
``loop`` on a CPU, where the vmapped step was slower for both kinds measured (an MLP 64-256-10 and
the built-in ``cnn`` on digits, 8 replicas on 700 rows: :data:`MEASURED`); ``vmap`` on CUDA
(assumed, not measured: one kernel per layer for all replicas instead of R launches). A module that vmap cannot run
(data-dependent control flow, in-place updates of unbatched state) falls back to ``loop`` with one
log line, and so does one whose training forward draws random numbers (dropout): under vmap the
replicas would share or interleave one generator, and a replica's noise would depend on its
batch. In the loop each replica draws from its own generator state, seeded from its seed, so a
replica trains exactly as it would alone.

Inputs stay flat -- ``(n, d)`` shared by all replicas, or ``(R, n, d)`` one set per replica, as
for ``ReplicaMLP`` -- and are viewed as ``(n, *in_shape)`` (images ``(C, H, W)``) for the module.

Cross-sample operations. A module whose output for one row depends on the other rows of its batch
(batch norm in training mode) would see, in a batch that masks rows, rows outside its student's
set -- held-out canaries or members included. The engines here never mask: every caller trains a
replica batch on exactly its students' own training rows (the audit's ``unit.train``; one batch
per (teacher, rho, rho_c) in the canary experiment), so training-mode batch statistics are the
student's own, as they would be for one student trained alone, and such modules are allowed
(:attr:`ModuleReplicas.cross_sample` records that they are). Evaluation runs in eval mode in row
chunks; a module whose eval-mode output still mixes rows is refused in one line
(:func:`check_module`), since its predictions for a held-out row would depend on its batch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Sequence

import torch

from softleak.simulate.factories import Factory, built_module, one_line
from softleak.simulate.seeds import derive_seed

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES",
    "MEASURED",
    "ModuleReplicas",
    "check_module",
    "evaluating",
    "module_flops",
    "replicas_of",
]

ENGINES = ("auto", "vmap", "loop")

#: Time of a vmapped training step over a looped one (forward, soft-label cross-entropy, autograd
#: backward, Adam) of 8 replicas on 700 rows of digits, 1 torch thread, medians of 5 and 7 steps
#: in two runs of ``benchmarks/bench_module_engine.py`` on a shared machine (load 2 and 8): loop
#: 19.5 / 33.4 ms (MLP), 201 / 500 ms (cnn). Why ``auto`` means ``loop`` on a CPU.
MEASURED = {"mlp": (1.54, 1.68), "cnn": (2.74, 2.35)}

#: Tolerance of the row-independence probe: float32 GEMMs over batches of different size may
#: reorder a reduction (relative differences ~1e-7); a row that depends on others moves far more.
PROBE_RTOL = 1e-4


def _flat_to_batch(X: torch.Tensor, in_shape: tuple[int, ...], lead: int) -> torch.Tensor:
    return X.reshape(*X.shape[:lead], *in_shape)


def check_module(module, in_shape: tuple[int, ...], c: int, name: str) -> dict:
    """Probe one freshly built module: its output shape, whether eval-mode outputs mix rows
    (refused), whether training-mode outputs mix rows (batch norm: allowed, see the module
    docstring) and whether its training forward draws random numbers. Returns
    ``{"cross_sample": bool, "stochastic": bool}``; ValueError (one line) on a refusal."""
    param = next(module.parameters())
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(4, *in_shape, generator=gen, dtype=torch.float64).to(param.dtype)
    Y = X.clone()
    Y[1:] = torch.randn(3, *in_shape, generator=gen, dtype=torch.float64).to(param.dtype)
    X, Y = X.to(param.device), Y.to(param.device)
    was = module.training
    try:
        with torch.no_grad():
            module.eval()
            out = _call(module, X, name)
            if tuple(out.shape) != (4, c):
                raise ValueError(
                    f"factory {name}: its module maps inputs {(4, *in_shape)} to outputs "
                    f"{tuple(out.shape)}; it must return logits (batch, c) = (4, {c})"
                )
            if not torch.allclose(out[0], _call(module, Y, name)[0], rtol=PROBE_RTOL, atol=1e-6):
                raise ValueError(
                    f"factory {name}: in eval mode its output for one input depends on the other "
                    "inputs of the batch; a student's predictions must not (remove the "
                    "cross-sample operation)"
                )
            module.train()
            state = copy.deepcopy(module.state_dict())  # probes must not move running stats
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(1)
                a = _call(module, X, name)
                torch.manual_seed(1)
                b = _call(module, Y, name)
                torch.manual_seed(2)
                a2 = _call(module, X, name)
            module.load_state_dict(state)
    finally:
        module.train(was)
    return {
        "cross_sample": not torch.allclose(a[0], b[0], rtol=PROBE_RTOL, atol=1e-6),
        "stochastic": not torch.equal(a, a2),
    }


def _call(module, X: torch.Tensor, name: str) -> torch.Tensor:
    try:
        out = module(X)
    except Exception as err:  # the user's code
        raise ValueError(
            f"factory {name}: its module fails on inputs {tuple(X.shape)}: {one_line(err)}"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"factory {name}: its module must return a tensor of logits")
    return out


class ModuleReplicas:
    """R replicas of one module architecture (see the module docstring).

    params: the stacked parameters, each (R, *shape), in the module's registration order.
    buffers: the stacked buffers (batch norm's running statistics ...), updated in training mode.
    """

    def __init__(
        self,
        base,
        names: list[str],
        params: list[torch.Tensor],
        buffer_names: list[str],
        buffers: list[torch.Tensor],
        in_shape: tuple[int, ...],
        *,
        engine: str = "loop",
        noise_seeds: Sequence[int] | None = None,
        cross_sample: bool = False,
        flops: int = 0,
    ):
        self.base, self.names, self.params = base, names, params
        self.buffer_names, self.buffers = buffer_names, buffers
        self.in_shape = tuple(in_shape)
        self.n_classes = 0  # the logits' width (set by init)
        self.engine = engine
        self.cross_sample = cross_sample
        self.training = True
        self._flops = flops
        self._noise: list[torch.Tensor] | None = None
        if noise_seeds is not None:
            self._noise = []
            for seed in noise_seeds:
                self._noise.append(torch.Generator().manual_seed(int(seed)).get_state())

    @classmethod
    def init(
        cls,
        factory,
        seeds: Sequence[int],
        in_shape: tuple[int, ...],
        c: int,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        engine: str = "auto",
    ) -> ModuleReplicas:
        """One module per seed (``simulate.factories.built_module``), checked
        (:func:`check_module`) and stacked. ``engine``: ``auto``, ``vmap`` or ``loop``."""
        from torch.func import stack_module_state

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        factory = Factory.of(factory)
        in_shape = tuple(int(v) for v in in_shape)
        modules = [built_module(factory, in_shape, c, s).to(dtype=dtype) for s in seeds]
        shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in modules]
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError(f"factory {factory.name} builds modules of different shapes per seed")
        probe = check_module(modules[0], in_shape, c, factory.name)
        flops = module_flops(modules[0], in_shape)
        modules = [m.to(device) for m in modules]
        params, buffers = stack_module_state(modules)
        base = copy.deepcopy(modules[0]).to("meta")
        device = torch.device(device)
        if engine == "auto":
            engine = "vmap" if device.type == "cuda" else "loop"
        if engine == "vmap" and probe["stochastic"]:
            log.info(
                "factory %s draws random numbers in training (dropout?): its replicas train one "
                "after another, each from its own generator",
                factory.name,
            )
            engine = "loop"
        model = cls(
            base,
            list(params),
            [p.detach() for p in params.values()],
            list(buffers),
            [b.detach() for b in buffers.values()],
            in_shape,
            engine=engine,
            noise_seeds=[derive_seed(s, "module-noise") for s in seeds]
            if probe["stochastic"]
            else None,
            cross_sample=probe["cross_sample"],
            flops=flops,
        )
        model.n_classes = int(c)
        if engine == "vmap":
            model._check_vmap(factory.name)
        return model

    def _check_vmap(self, name: str) -> None:
        """Fall back to the loop (one log line) when vmap cannot run this module."""
        X = torch.zeros(2, _numel(self.in_shape), dtype=self.params[0].dtype)
        state = [b.clone() for b in self.buffers]
        try:
            with torch.no_grad():
                self._vmapped(X.to(self.params[0].device))
        except Exception as err:  # vmap's refusals are RuntimeErrors of several kinds
            log.info(
                "factory %s cannot be vmapped (%s): its replicas train one after another",
                name,
                str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__,
            )
            self.engine = "loop"
        finally:
            for b, s in zip(self.buffers, state, strict=True):
                b.copy_(s)

    # the trainer's protocol ------------------------------------------------------------------
    @property
    def replicas(self) -> int:
        return int(self.params[0].shape[0])

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (R, n, c) of every replica; X (n, d) shared or (R, n, d) per replica (flat rows,
        viewed as (n, *in_shape))."""
        self.base.train(self.training)
        if self.engine == "vmap":
            return self._vmapped(X)
        per_replica = X.dim() == 3
        outs = []
        for r in range(self.replicas):
            x = _flat_to_batch(X[r] if per_replica else X, self.in_shape, 1)
            with self._noise_scope(r):
                outs.append(self._call_one(r, x))
        return torch.stack(outs)

    def _call_one(self, r: int, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        state = {n: p[r] for n, p in zip(self.names, self.params, strict=True)}
        state.update({n: b[r] for n, b in zip(self.buffer_names, self.buffers, strict=True)})
        return functional_call(self.base, state, (x,))

    def _vmapped(self, X: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        names, buffer_names, base = self.names, self.buffer_names, self.base

        def one(params, buffers, x):
            state = dict(zip(names, params, strict=True))
            state.update(zip(buffer_names, buffers, strict=True))
            return functional_call(base, state, (x,))

        lead = 2 if X.dim() == 3 else 1
        x = _flat_to_batch(X, self.in_shape, lead)
        in_x = 0 if lead == 2 else None
        return vmap(one, in_dims=(0, 0, in_x))(list(self.params), list(self.buffers), x)

    @contextlib.contextmanager
    def _noise_scope(self, r: int) -> Iterator[None]:
        """Replica r's own generator state around its training forward (stochastic modules)."""
        if self._noise is None or not self.training:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._noise[r])
            yield
            self._noise[r] = torch.get_rng_state()

    def train(self, mode: bool = True) -> ModuleReplicas:
        self.training = bool(mode)
        return self

    def eval(self) -> ModuleReplicas:
        return self.train(False)

    # sizes ----------------------------------------------------------------------------------
    def empty_like_logits(self, n: int, k: int, shared: bool = True, **kw) -> torch.Tensor:
        return torch.empty(self.replicas, n, k, **kw)

    def n_params(self) -> int:
        """Parameters of one replica."""
        return sum(p[0].numel() for p in self.params)

    def flops_per_sample(self) -> int:
        """FLOPs of one replica's forward pass on one sample (torch's flop counter: matrix
        multiplies and convolutions)."""
        return self._flops

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"param.{n}": p.detach().cpu() for n, p in zip(self.names, self.params, strict=True)}
        out.update(
            {f"buffer.{n}": b.cpu() for n, b in zip(self.buffer_names, self.buffers, strict=True)}
        )
        return out

    def load(self, params: Sequence[torch.Tensor]) -> None:
        """Set the stacked parameters (each (R, *shape), in ``names`` order) in place."""
        if len(params) != len(self.params):
            raise ValueError(f"expected {len(self.params)} parameter tensors, got {len(params)}")
        with torch.no_grad():
            for p, v in zip(self.params, params, strict=True):
                p.copy_(v.reshape(p.shape))


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for v in shape:
        out *= int(v)
    return out


def module_flops(module, in_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one sample, counted by ``torch.utils.flop_counter`` (eval
    mode, a CPU copy; 0 where the counter fails)."""
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(module).cpu().eval()
    X = torch.zeros(1, *in_shape, dtype=next(probe.parameters()).dtype)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            probe(X)
    except Exception:  # noqa: BLE001 - an estimate only
        return 0
    return int(counter.get_total_flops())


@contextlib.contextmanager
def evaluating(model) -> Iterator:
    """``model`` in eval mode for the block (dropout off, batch norm on its running statistics),
    then back in training mode; a model without modes (``ReplicaMLP``) is left as it is."""
    if not hasattr(model, "eval"):
        yield model
        return
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def replicas_of(
    arch,
    seeds: Sequence[int],
    in_shape: tuple[int, ...],
    c: int,
    *,
    widths: tuple[int, ...] = (),
    bias: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    engine: str = "auto",
):
    """R models for the trainer: ``"mlp"`` (or ``"linear"``) is the replica-batched
    ``simulate.models.ReplicaMLP`` (analytic backward; ``widths`` its hidden layers, none for
    linear), anything else a factory trained as :class:`ModuleReplicas`."""
    from softleak.simulate.models import ReplicaMLP

    if isinstance(arch, str) and arch in ("mlp", "linear"):
        d = _numel(in_shape)
        hidden = tuple(widths) if arch == "mlp" else ()
        return ReplicaMLP.init(seeds, d, c, hidden, bias, dtype, device)
    return ModuleReplicas.init(arch, seeds, in_shape, c, dtype, device, engine)
