"""Live-stream lucky draws (定时抽奖): the provably fair selection and its public randomness.

fairness.py is the algorithm (leadkit-draw-v1, docs/draws.md) as pure functions; drand.py
fetches and verifies drand rounds. Neither touches the database or the web framework.
"""
