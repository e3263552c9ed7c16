"""Output-level measures (science.md §3.1): what an outsider without θ_r sees, and how the outputs compare.

Forget / retain / test accuracy and MIA-efficacy decide the output side of the verdict (under-unlearned when a
model deviates towards θ_o, over-unlearned when it deviates away); in sample-wise forgetting, where θ_r still
classifies most forget samples, the mean true-label probability on D_f carries the direction too. The JS
divergence to θ_r's posteriors is context: it says how *differently* a model forgot, not which way.
"""
from __future__ import annotations

from .. import metrics
from .base import Probe, ProbeContext, Readings, register


class _Accuracy(Probe):
    family = "output"
    direction = +1
    abs_tol = 0.02
    part: str = ""

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        X, y = getattr(ctx.data, self.part)
        return self._readings({n: [metrics.accuracy(m, X, y)] for n, m in models.items()}, None, 1.0 / max(len(y), 1))


@register
class ForgetAccuracy(_Accuracy):
    name, part = "forget_acc", "forget"
    label = "forget accuracy"
    caption = "Accuracy on the forget set D_f: what 'looks forgotten' means from the outside."


@register
class RetainAccuracy(_Accuracy):
    name, part = "retain_acc", "retain"
    label = "retain accuracy"
    caption = "Accuracy on the retain set D_r: what the model must keep. Below the retrain band = over-unlearned."


@register
class TestAccuracy(_Accuracy):
    name, part = "test_acc", "test"
    label = "test accuracy"
    caption = ("Accuracy on the held-out test set (every class, the forgotten one included): utility, and, in "
               "class-wise forgetting, whether the model still recognises unseen images of the forgotten class.")


@register
class TrueLabelProbability(Probe):
    name = "true_prob"
    label = "true-label probability on D_f"
    family = "output"
    direction = +1
    forgetting = "sample"
    abs_tol = 0.01
    caption = ("Mean probability of the true label on D_f. In sample-wise forgetting θ_r still classifies most forget "
               "samples, so accuracy hardly moves; the confidence shows whether a model still knows them like θ_o.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        X, y = ctx.data.forget
        return self._readings({n: [float(metrics.probs(m, X).gather(1, y.view(-1, 1)).mean())]
                               for n, m in models.items()}, None, 0.0)


@register
class MiaEfficacyProbe(Probe):
    name = "mia_efficacy"
    label = "MIA-efficacy"
    family = "output"
    direction = -1
    abs_tol = 0.02
    caption = ("Share of D_f that an SVC on the model's confidence, trained to tell retain (member) from test "
               "(non-member) samples, calls non-member (Jia et al. / SalUn): high for θ_r, low for θ_o.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        from ..attacks.mia import efficacy_sets, mia_efficacy

        split = ctx.split
        retain, fit_test, _ = efficacy_sets(split, ctx.seed)
        parts = (split.tensors(retain), split.tensors(fit_test), split.tensors("forget"))
        n = len(split.forget)
        return self._readings({k: [mia_efficacy(m, *parts)["efficacy"]] for k, m in models.items()}, None,
                              1.0 / max(n, 1))


@register
class JsToRetrain(Probe):
    name = "js_to_retrain"
    label = "JS divergence to θ_r on D_f"
    family = "context"
    direction = +1
    unit = "nats"
    hi = 0.6931471805599453  # ln 2
    against_retrain = True
    caption = ("Mean Jensen-Shannon divergence between the model's and θ_r's posteriors on D_f: how differently it "
               "answers from the retrain, whichever way. Context: two models can forget equally and answer "
               "differently.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        X = ctx.data.forget[0]
        ref = ctx.shared("p_retrain", lambda: metrics.probs(ctx.retrain, X))
        out = {n: [metrics.js_divergence(ref, metrics.probs(m, X)) if m is not ctx.retrain else 0.0]
               for n, m in models.items()}
        return self._readings(out, None, 0.0)
