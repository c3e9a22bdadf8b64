"""A TRPO step: conjugate gradient on Fisher-vector products of the mean KL, then a
backtracking line search that enforces the KL bound and a surrogate improvement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

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
    fisher_product: Literal["exact", "finite_difference"] = "exact",
) -> TRPOResult:
    """Update ``params`` in place to increase the surrogate subject to mean KL <= max_kl.

    ``objective(create_graph)`` returns (surrogate to maximize, mean KL from the sampling
    policy), both functions of ``params``; ``create_graph`` says whether higher derivatives
    will be taken (for the Fisher-vector products). ``curvature_kl()``, if given, is a KL
    (zero with zero gradient at the current parameters) whose Hessian stands in for the
    objective's in the Fisher-vector products, e.g. the KL on a subsample of the data; the
    line search still checks the objective's own KL.

    ``fisher_product``: 'exact' differentiates the KL's gradient again (Pearlmutter's
    product); 'finite_difference' is the official MB-MPO code's product, a symmetric finite
    difference of the KL's gradient, (g(theta + eps v) - g(theta - eps v)) / (2 eps) with
    eps = 1 / |theta| (``FiniteDifferenceHvp`` in sandbox_maml/rocky/tf/optimizers/
    conjugate_gradient_optimizer.py, whose base_eps receives num_slices = 1): the KL
    (``curvature_kl`` if given, else the objective's) is evaluated afresh at each shifted theta.
    """
    params = list(params)
    surrogate, kl = objective(True)
    surrogate_before = float(surrogate.detach())
    if fisher_product == "finite_difference":
        grad = flat(torch.autograd.grad(surrogate, params))
        del surrogate, kl  # the graph is not needed again: products re-evaluate the KL
        fvp = finite_difference_fvp(
            params, curvature_kl or (lambda: objective(True)[1]), cg_damping
        )
    elif fisher_product == "exact":
        grad = flat(torch.autograd.grad(surrogate, params, retain_graph=curvature_kl is None))
        if curvature_kl is not None:
            kl = curvature_kl()
        kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True))

        def fvp(v: torch.Tensor) -> torch.Tensor:
            hv = torch.autograd.grad(kl_grad @ v, params, retain_graph=True)
            return flat(hv) + cg_damping * v

    else:
        raise ValueError(f"unknown fisher_product {fisher_product!r}")

    direction = conjugate_gradient(fvp, grad, cg_iters)
    shs = direction @ fvp(direction)
    old = flat([p.detach() for p in params]).clone()
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


def finite_difference_fvp(
    params: list[torch.Tensor], kl: Callable[[], torch.Tensor], damping: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The official code's Fisher-vector product: a symmetric finite difference of the KL's
    gradient with step eps = 1 / |theta| (theta fixed when the product is built), plus
    ``damping`` v. ``params`` are restored after each product."""
    theta = flat([p.detach() for p in params]).clone()
    eps = float(1.0 / (theta.norm() + 1e-8))

    def kl_grad_at(point: torch.Tensor) -> torch.Tensor:
        set_flat(params, point)
        return flat(torch.autograd.grad(kl(), params))

    def fvp(v: torch.Tensor) -> torch.Tensor:
        try:
            plus, minus = kl_grad_at(theta + eps * v), kl_grad_at(theta - eps * v)
        finally:
            set_flat(params, theta)
        return (plus - minus) / (2 * eps) + damping * v

    return fvp
