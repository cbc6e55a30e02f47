"""Blind pairwise rating of a sweep's outputs and the ranking it gives.

- `entries`: what is compared (version, model, temperature, grid, column) and which runs pair up.
- `pairs`: pair selection, identical-output ties, votes and the card a rater sees.
- `ranking`: Bradley-Terry scores, bootstrap intervals, Elo scale, win matrix (pure statistics).
- `btfit`: the batched Bradley-Terry fits behind `ranking` (optionally with a length covariate).
- `agreement`: position bias and rater agreement.
- `leaderboard`: the ranking beside each entry's automatic scores, cost and latency.
"""
