"""Planning in learned dynamics: random-shooting model-predictive control.

A planner sees the dynamics only as a :data:`Predictor`, a batched function
``(state [N, d], act [N, a]) -> next_state [N, d]``, and the task's reward and termination
functions (:data:`benchmark.tasks.RewardFn`, :data:`benchmark.tasks.TerminationFn`): MB-MPC
plans with the ensemble (:func:`random_member_predictor` or :func:`grouped_predictor`), GrBAL
and ReBAL with their adapted model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from algorithms.common.ensemble import FrozenEnsemble
from benchmark.tasks import RewardFn, TerminationFn

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Batched dynamics: ``(state [N, d], act [N, a]) -> next_state [N, d]``."""


def grouped_predictor(ensemble: FrozenEnsemble) -> Predictor:
    """``(state [N, d], act [N, a]) -> next_state`` with the N rows split into K equal groups,
    group k predicted by model k (sequences are i.i.d., so this is a random member per
    sequence)."""
    k = ensemble.num_models

    def predict(state: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        grouped = ensemble.predict_grouped(
            state.view(k, -1, state.shape[-1]), act.reshape(k, -1, act.shape[-1])
        )
        return grouped.view_as(state)

    return predict


def random_member_predictor(ensemble: FrozenEnsemble, generator: torch.Generator) -> Predictor:
    """``(state [N, d], act [N, a]) -> next_state`` with every row predicted by a model drawn
    at random at every call, i.e. per candidate and planning step (the official MB-MPC's
    ``predict(pred_type='rand')``)."""

    def predict(state: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        ids = torch.randint(ensemble.num_models, (state.shape[0],), generator=generator)
        return ensemble.predict_assigned(state, act, ids.to(state.device))

    return predict


@torch.no_grad()
def random_shooting(
    predict: Predictor,
    obs: torch.Tensor,
    reward_fn: RewardFn,
    termination_fn: TerminationFn,
    action_low: torch.Tensor,
    action_high: torch.Tensor,
    num_candidates: int,
    horizon: int,
    discount: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The first action of the best of ``num_candidates`` uniform random action sequences,
    rolled out with ``predict(state [N, d], act [N, a]) -> next_state`` (one batched call per
    planning step). A sequence stops earning reward once the task says it terminated.
    """
    act_dim = action_low.shape[0]
    uniform = torch.rand(num_candidates, horizon, act_dim, generator=generator).to(obs)
    actions = action_low + (action_high - action_low) * uniform
    state = obs.expand(num_candidates, -1).contiguous()
    score = torch.zeros(num_candidates, dtype=obs.dtype, device=obs.device)
    alive = torch.ones(num_candidates, dtype=torch.bool, device=obs.device)
    for h in range(horizon):
        act = actions[:, h]
        next_state = predict(state, act)
        score += (discount**h) * reward_fn(state, act, next_state) * alive
        alive &= ~termination_fn(state, act, next_state)
        state = next_state
    return actions[torch.argmax(score), 0]
