"""Parts shared by the algorithms: dynamics ensemble, imagined rollouts, policies, TRPO."""
