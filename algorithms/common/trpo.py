"""A TRPO step: conjugate gradient on Fisher-vector products of the mean KL, then a
backtracking line search that enforces the KL bound and a surrogate improvement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def set_flat(params: Sequence[torch.Tensor], vector: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(vector[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def conjugate_gradient(
    fvp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int, tol: float = 1e-10
) -> torch.Tensor:
    """Solve F x = b for symmetric positive definite F given as a product function."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        fp = fvp(p)
        step = rr / (p @ fp)
        x += step * p
        r -= step * fp
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


@dataclass
class TRPOResult:
    surrogate_before: float
    surrogate_after: float
    kl: float
    backtracks: int
    accepted: bool


def trpo_step(
    params: Sequence[torch.Tensor],
    objective: Callable[[bool], tuple[torch.Tensor, torch.Tensor]],
    max_kl: float,
    cg_iters: int = 10,
    cg_damping: float = 1e-5,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
    curvature_kl: Callable[[], torch.Tensor] | None = None,
) -> TRPOResult:
    """Update ``params`` in place to increase the surrogate subject to mean KL <= max_kl.

    ``objective(create_graph)`` returns (surrogate to maximize, mean KL from the sampling
    policy), both functions of ``params``; ``create_graph`` says whether higher derivatives
    will be taken (for the Fisher-vector products). ``curvature_kl()``, if given, is a KL
    (zero with zero gradient at the current parameters) whose Hessian stands in for the
    objective's in the Fisher-vector products, e.g. the KL on a subsample of the data; the
    line search still checks the objective's own KL.
    """
    params = list(params)
    surrogate, kl = objective(True)
    grad = flat(torch.autograd.grad(surrogate, params, retain_graph=curvature_kl is None))
    if curvature_kl is not None:
        kl = curvature_kl()
    kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True))

    def fvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(kl_grad @ v, params, retain_graph=True)
        return flat(hv) + cg_damping * v

    direction = conjugate_gradient(fvp, grad, cg_iters)
    shs = direction @ fvp(direction)
    old = flat([p.detach() for p in params]).clone()
    surrogate_before = float(surrogate.detach())
    if not torch.isfinite(shs) or shs <= 0:
        return TRPOResult(surrogate_before, surrogate_before, 0.0, 0, False)
    full_step = torch.sqrt(2 * max_kl / shs) * direction
    for i in range(max_backtracks):
        set_flat(params, old + backtrack_ratio**i * full_step)
        new_surrogate, new_kl = (float(v.detach()) for v in objective(False))
        if new_kl <= max_kl and new_surrogate > surrogate_before:
            return TRPOResult(surrogate_before, new_surrogate, new_kl, i, True)
    set_flat(params, old)
    return TRPOResult(surrogate_before, surrogate_before, 0.0, max_backtracks, False)
