"""Root causes: links made on the run's evidence, shown cause first; never on the ids alone."""

from __future__ import annotations

import pytest

from summary_doctor.causes import LINKS, explained_order, link_causes
from summary_doctor.engine import diagnose
from summary_doctor.findings import Finding, Severity
from summary_doctor.symptoms import BY_ID


def finding(symptom: str, step: int | None, severity: Severity = Severity.ERROR, **evidence: object) -> Finding:
    return Finding(symptom, severity, symptom, "message", "hint", step=step, evidence=dict(evidence))


def causes_of(findings: list[Finding]) -> dict[str, str | None]:
    return {f.id: f.caused_by for f in link_causes(findings)}


def test_every_declared_pair_names_known_ids() -> None:
    assert all(link.cause in BY_ID and link.effect in BY_ID and link.cause != link.effect for link in LINKS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "exploding_gradient",
            {
                "loss.nan-inf": None,
                "gradient.exploding": "loss.nan-inf",
                "weight.overflow": "gradient.exploding",
                "weight.update-ratio": "loss.nan-inf",
            },
        ),
        ("cnn_lr_too_large_adam", {"hparam.lr-too-large": None, "loss.plateau": "hparam.lr-too-large"}),
        ("oscillating", {"hparam.lr-too-large": None, "loss.oscillating": "hparam.lr-too-large"}),
        ("mlp_tanh_loss_inf_momentum", {"hparam.lr-too-large": None, "loss.nan-inf": "hparam.lr-too-large"}),
        ("mlp_naive_bce_log_nan", {"loss.nan-inf": None, "weight.overflow": "loss.nan-inf"}),
        (
            "lr_too_small",
            {
                "hparam.lr-too-small": None,
                "loss.plateau": "hparam.lr-too-small",
                "weight.update-ratio": "hparam.lr-too-small",
            },
        ),
        ("vanishing_gradient", {"gradient.vanishing": None, "loss.plateau": "gradient.vanishing"}),
        (
            "cnn_dead_relu_bn",
            {"activation.dead": None, "loss.plateau": "activation.dead", "weight.update-ratio": "activation.dead"},
        ),
        (
            "overfitting",
            {
                "dataset.too-few-samples": None,
                "hparam.too-many-epochs": None,
                "metric.overfitting": "hparam.too-many-epochs",
            },
        ),
        ("plateau", {"dataset.label-errors": None, "loss.plateau": "dataset.label-errors"}),
        (
            "mlp_input_nan",
            {
                "dataset.missing-values": None,
                "loss.nan-inf": "dataset.missing-values",
                "weight.overflow": "loss.nan-inf",
            },
        ),
        ("mlp_input_spike_outliers", {"dataset.outliers": None, "loss.nan-inf": "dataset.outliers"}),
        (
            "cnn_raw_pixels_unnormalized",
            {
                "preprocess.not-normalized": None,
                "loss.nan-inf": "preprocess.not-normalized",
                "weight.update-ratio": "loss.nan-inf",
            },
        ),
        (
            "mlp_batch_std_div_zero",
            {"api.div-no-nan": None, "loss.nan-inf": "api.div-no-nan", "weight.overflow": "loss.nan-inf"},
        ),
        ("mlp_softmax_before_crossentropyloss", {"graph.loss-function": None, "loss.plateau": "graph.loss-function"}),
        ("mlp_dropout_p09", {"api.dropout-keep-prob": None, "loss.nan-inf": "api.dropout-keep-prob"}),
        (
            "mlp_nllloss_on_logits",
            {
                "graph.loss-function": None,
                "hparam.lr-too-large": "graph.loss-function",
                "loss.nan-inf": "hparam.lr-too-large",
                "weight.overflow": "loss.nan-inf",
                "weight.update-ratio": "hparam.lr-too-large",
            },
        ),
    ],
)
def test_fault_fixtures_link_their_consequences_to_the_cause(fixture_run, name: str, expected: dict) -> None:
    found = diagnose(fixture_run(name)).findings
    assert {f.id: f.caused_by for f in found if f.severity.rank >= 1} == expected


def test_each_finding_is_linked_on_its_own_evidence() -> None:
    # two findings of one id: updates too large follow the lr's large updates; updates too small do not
    lr = finding("hparam.lr-too-large", 9, Severity.WARNING, first_large_update_step=3)
    large = finding("weight.update-ratio", 5, Severity.WARNING, direction="too-large")
    small = finding("weight.update-ratio", 2, Severity.WARNING, direction="too-small")
    linked = link_causes([lr, large, small])
    assert [f.caused_by for f in linked] == [None, "hparam.lr-too-large", None]


def test_the_order_of_first_steps_decides_not_the_ids() -> None:
    nan_then_weights = [finding("loss.nan-inf", 5), finding("weight.overflow", 5)]
    weights_first = [finding("loss.nan-inf", 9), finding("weight.overflow", 5)]
    assert causes_of(nan_then_weights)["weight.overflow"] == "loss.nan-inf"
    assert causes_of(weights_first)["weight.overflow"] is None


def test_a_learning_rate_verdict_without_measured_updates_explains_nothing() -> None:
    loss_only = finding("hparam.lr-too-large", 7, Severity.WARNING)
    measured = finding("hparam.lr-too-large", 7, Severity.WARNING, first_large_update_step=2)
    diverging = finding("loss.diverging", 3)
    assert causes_of([loss_only, diverging])["loss.diverging"] is None
    assert causes_of([measured, diverging])["loss.diverging"] == "hparam.lr-too-large"


def test_info_findings_neither_explain_nor_are_explained() -> None:
    found = causes_of([finding("loss.nan-inf", 1, Severity.INFO), finding("weight.overflow", 2)])
    assert found == {"loss.nan-inf": None, "weight.overflow": None}


def test_explained_order_puts_the_cause_first_and_its_consequences_under_it() -> None:
    stray = finding("init.all-zero", 1, Severity.WARNING)
    lr = finding("hparam.lr-too-large", 7, Severity.WARNING, first_large_update_step=2)
    linked = link_causes([stray, finding("loss.diverging", 3), finding("loss.nan-inf", 7), lr])
    rows = [(f.id, depth) for f, depth in explained_order(linked)]
    # the warning that explains errors leads; the unrelated warning follows
    assert rows == [
        ("hparam.lr-too-large", 0),
        ("loss.diverging", 1),
        ("loss.nan-inf", 2),
        ("init.all-zero", 0),
    ]


def test_a_loop_of_causes_still_shows_every_finding() -> None:
    a = Finding("loss.nan-inf", Severity.ERROR, "a", "m", "h", step=1, caused_by="weight.overflow")
    b = Finding("weight.overflow", Severity.ERROR, "b", "m", "h", step=1, caused_by="loss.nan-inf")
    assert sorted(f.id for f, _ in explained_order([a, b])) == ["loss.nan-inf", "weight.overflow"]


@pytest.mark.parametrize("name", ["healthy_mlp", "healthy_cnn", "healthy_overlapping_classes_sgd"])
def test_healthy_runs_have_nothing_to_link(fixture_run, name: str) -> None:
    assert all(f.caused_by is None for f in diagnose(fixture_run(name)).findings)
