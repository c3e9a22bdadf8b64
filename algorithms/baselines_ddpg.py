"""OpenAI baselines' DDPG as the MB-MPO paper's model-free comparison ran it, on
Stable-Baselines3's DDPG.

The official script (``experiments/run_scripts/mf_comparison/ddpg_train.py`` of
jonasrothfuss/model_ensemble_meta_learning) trains ``baselines/ddpg`` with settings SB3's DDPG
cannot express; each lives here:

- networks (``baselines/ddpg/models.py``): an actor of two tanh layers and a critic of two ReLU
  layers, LayerNorm after every hidden layer, the action entering the critic at its second
  layer, output weights and biases drawn from U(-3e-3, 3e-3), hidden layers Glorot-uniform with
  zero biases (TensorFlow's defaults): :class:`LayerNormActor`, :class:`ActionInSecondLayerCritic`;
- separate Adam learning rates for actor and critic, and an L2 penalty on the critic's hidden
  weights only (``tc.layers.l2_regularizer`` on kernels, not biases, LayerNorm or the output
  layer; its gradient is Adam's ``weight_decay`` on those weights): :class:`BaselinesDDPGPolicy`;
- adaptive parameter-space noise (Plappert et al. 2018, ``AdaptiveParamNoiseSpec``): the
  environment is driven by a copy of the actor whose weights and biases (LayerNorm's
  excepted) carry Gaussian noise, redrawn at every episode end (the policy's
  ``predict(deterministic=False)``); before every ``adaption_interval`` gradient steps a fresh
  probe perturbation is measured on a replay batch, and the noise's std is divided by 1.01
  when it moves the actions (root mean square, in [-1, 1] units) by more than the desired
  std, else multiplied by 1.01: :class:`BaselinesDDPG`.

Observation normalization (running mean and std, clipped at +-5) is SB3's ``VecNormalize``,
set by the preset. The rest (replay of 1e6, batch 64, tau 0.01, discount 0.99, 50 gradient
steps after every 200 environment steps) are SB3 DDPG arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

LAYER_NORM_EPS = 1e-12
"""TensorFlow's ``layer_norm`` variance epsilon."""


def _hidden(n_in: int, n_out: int) -> nn.Linear:
    """A hidden layer initialised as TensorFlow's ``tf.layers.dense``."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _output(n_in: int, n_out: int) -> nn.Linear:
    """An output layer initialised as baselines' (weights and biases in +-3e-3)."""
    layer = nn.Linear(n_in, n_out)
    nn.init.uniform_(layer.weight, -3e-3, 3e-3)
    nn.init.uniform_(layer.bias, -3e-3, 3e-3)
    return layer


class LayerNormActor(Actor):
    """SB3's DDPG actor with baselines' network: ``[Linear, LayerNorm, activation] x
    len(net_arch)``, then a Linear output squashed by tanh."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        layers: list[nn.Module] = []
        n_in = self.features_dim
        for width in self.net_arch:
            layers += [_hidden(n_in, width), nn.LayerNorm(width, eps=LAYER_NORM_EPS)]
            layers.append(self.activation_fn())
            n_in = width
        layers += [_output(n_in, get_action_dim(self.action_space)), nn.Tanh()]
        self.mu = nn.Sequential(*layers)


class ActionInSecondLayerQ(nn.Module):
    """Q(s, a) with the action concatenated to the first hidden layer's output (baselines'
    critic): ``[Linear, LayerNorm, ReLU]`` per hidden width, then a Linear output."""

    def __init__(self, features_dim: int, action_dim: int, net_arch: list[int]) -> None:
        super().__init__()
        if len(net_arch) < 2:
            raise ValueError(f"the critic needs at least two hidden layers, got {net_arch}")
        first, *rest = net_arch
        self.first = nn.Sequential(
            _hidden(features_dim, first), nn.LayerNorm(first, eps=LAYER_NORM_EPS), nn.ReLU()
        )
        layers: list[nn.Module] = []
        n_in = first + action_dim
        for width in rest:
            layers += [_hidden(n_in, width), nn.LayerNorm(width, eps=LAYER_NORM_EPS), nn.ReLU()]
            n_in = width
        layers.append(_output(n_in, 1))
        self.rest = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.rest(torch.cat([self.first(features), actions], dim=1))


class ActionInSecondLayerCritic(ContinuousCritic):
    """SB3's continuous critic with :class:`ActionInSecondLayerQ` networks."""

    def __init__(self, *args: Any, net_arch: list[int], **kwargs: Any) -> None:
        super().__init__(*args, net_arch=net_arch, **kwargs)
        action_dim = get_action_dim(self.action_space)
        features_dim = self.features_extractor.features_dim
        self.q_networks = []
        for idx in range(self.n_critics):
            q_net = ActionInSecondLayerQ(features_dim, action_dim, list(net_arch))
            self.add_module(f"qf{idx}", q_net)  # replaces the MLP of the same name
            self.q_networks.append(q_net)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(obs, self.features_extractor)
        return tuple(q_net(features, actions) for q_net in self.q_networks)

    def q1_forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.extract_features(obs, self.features_extractor)
        return self.q_networks[0](features, actions)


def _hidden_weights(module: nn.Module) -> list[nn.Parameter]:
    """The weight matrices of every Linear layer but the last (the critic's L2 set)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return [m.weight for m in linears[:-1]]


class BaselinesDDPGPolicy(TD3Policy):
    """TD3Policy with baselines' actor and critic networks, the critic's own learning rate
    and its L2 penalty, and the perturbed actor that acts during training (its weights and
    the current noise std are part of the policy's state, so a checkpoint holds them)."""

    def __init__(
        self,
        *args: Any,
        critic_learning_rate: float = 1e-3,
        critic_l2: float = 0.01,
        param_noise_std: float = 0.2,
        **kwargs: Any,
    ) -> None:
        self.critic_learning_rate = critic_learning_rate
        self.critic_l2 = critic_l2
        self.initial_param_noise_std = param_noise_std
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: Any = None) -> LayerNormActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return LayerNormActor(**actor_kwargs).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> ActionInSecondLayerCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return ActionInSecondLayerCritic(**critic_kwargs).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        decayed = _hidden_weights(self.critic)
        others = [p for p in self.critic.parameters() if all(p is not d for d in decayed)]
        self.critic.optimizer = self.optimizer_class(
            [{"params": decayed, "weight_decay": self.critic_l2}, {"params": others}],
            lr=self.critic_learning_rate,
            **self.optimizer_kwargs,
        )
        self.perturbed_actor = self.make_actor(features_extractor=None)
        self.perturbed_actor.set_training_mode(False)
        self.register_buffer("param_noise_std", torch.tensor(float(self.initial_param_noise_std)))

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """The actor's action, or with ``deterministic=False`` the perturbed actor's: the
        exploring policy that collects the training data (SB3's ``_sample_action``) and
        whose return the official DDPG curves report (``paper_return``)."""
        actor = self.actor if deterministic else self.perturbed_actor
        return actor(observation)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            critic_learning_rate=self.critic_learning_rate,
            critic_l2=self.critic_l2,
            param_noise_std=self.initial_param_noise_std,
        )
        return data


class BaselinesDDPG(DDPG):
    """SB3's DDPG driven by adaptive parameter-space noise (baselines' ``adaptive-param``).

    ``learning_rate`` is the actor's; the critic's is the policy's ``critic_learning_rate``.
    Both stay constant, as in baselines (SB3 would reset both to ``learning_rate``).
    """

    policy_aliases = {"MlpPolicy": BaselinesDDPGPolicy}  # noqa: RUF012 - SB3's class attribute
    policy: BaselinesDDPGPolicy

    def __init__(
        self,
        *args: Any,
        desired_action_std: float = 0.2,
        adoption_coefficient: float = 1.01,
        adaption_interval: int = 50,
        **kwargs: Any,
    ) -> None:
        self.desired_action_std = desired_action_std
        self.adoption_coefficient = adoption_coefficient
        self.adaption_interval = adaption_interval
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        # Built once here, not per measurement: a resumed run builds it at the same point of
        # the random stream (its weights are overwritten before every use).
        self._probe_actor = self.policy.make_actor(features_extractor=None)
        self._perturb(self.policy.perturbed_actor)

    def _perturb(self, target: Actor) -> None:
        """``target`` := the actor plus N(0, std^2) on every Linear weight and bias."""
        target.load_state_dict(self.actor.state_dict())
        std = float(self.policy.param_noise_std)
        with torch.no_grad():
            for module in target.modules():
                if isinstance(module, nn.Linear):
                    for parameter in module.parameters():
                        parameter.add_(torch.randn_like(parameter) * std)

    def adapt_param_noise(self) -> float:
        """Measure a probe perturbation on a replay batch and move the std towards the one
        that shifts actions by ``desired_action_std``; returns the measured distance."""
        batch = self.replay_buffer.sample(self.batch_size, env=self._vec_normalize_env)
        self._perturb(self._probe_actor)
        with torch.no_grad():
            moved = self._probe_actor(batch.observations) - self.actor(batch.observations)
            distance = float(torch.sqrt(torch.mean(moved**2)))
        std = self.policy.param_noise_std
        if distance > self.desired_action_std:
            std.div_(self.adoption_coefficient)
        else:
            std.mul_(self.adoption_coefficient)
        self.logger.record("train/param_noise_std", float(std))
        self.logger.record("train/param_noise_distance", distance)
        return distance

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        if dones.any():  # baselines' agent.reset() at every episode end
            self._perturb(self.policy.perturbed_actor)

    def _update_learning_rate(self, optimizers: Any) -> None:
        """Constant learning rates, each network its own."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        for start in range(0, gradient_steps, self.adaption_interval):
            if self.replay_buffer.size() >= batch_size:
                self.adapt_param_noise()
            super().train(min(self.adaption_interval, gradient_steps - start), batch_size)
