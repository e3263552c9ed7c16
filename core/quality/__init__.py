"""Forgetting quality as the NeurIPS 2023 unlearning competition scores it (issue 23).

From raw arrays (pools trained anywhere):
    from core.quality import forgetting_quality, logit_scaled_confidence
    score = forgetting_quality(unlearned_conf, retrained_conf)     # (N, E) confidences -> Score (F, ε, error bar)

On an experiment (pools trained, batched and cached here, with the ceiling and floor anchors):
    from core.quality import quality
    report = quality(exp, n=32, protocol="A")                      # -> QualityReport (to_dict() for results.json)
"""
from .pools import PROTOCOL_NOTE, PROTOCOLS, MethodQuality, Pool, QualityReport, quality
from .score import (DELTA, EPSILON_CAP, RULES, Score, epsilon_table, epsilons, forget_score, forgetting_quality,
                    logit_scaled_confidence, n_bins, points)

__all__ = ["DELTA", "EPSILON_CAP", "PROTOCOLS", "PROTOCOL_NOTE", "RULES", "MethodQuality", "Pool", "QualityReport",
           "Score", "epsilon_table", "epsilons", "forget_score", "forgetting_quality", "logit_scaled_confidence",
           "n_bins", "points", "quality"]
