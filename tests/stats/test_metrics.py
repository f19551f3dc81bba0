from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
from hypothesis import given, settings

from mlchecks.exceptions import InvalidInput
from mlchecks.stats import metrics as m
from mlchecks.stats.metrics import METRICS, Metric, custom_metric, get_metric, predicted_labels


def softmax_rows(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    logits = rng.normal(size=(n, c))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(0, 4, size=300), softmax_rows(rng, 300, 4)


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=200)
    return y, np.clip(0.3 * y + rng.random(200) * 0.7, 0.0, 1.0)


class TestPredictedLabels:
    def test_argmax_takes_the_first_maximum(self) -> None:
        """Ties in a row resolve to the lowest class, as np.argmax does."""
        assert [0, 2, 1] == predicted_labels([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0, 1, 1]]).tolist()

    def test_binary_scores_threshold_strictly_above_half(self) -> None:
        """A score of exactly 0.5 gives class 0, consistent with the 2-D argmax."""
        assert [0, 0, 1] == predicted_labels([0.1, 0.5, 0.51]).tolist()

    def test_integer_labels_pass_through(self) -> None:
        """1-D integers are already labels."""
        assert [3, 0, 2] == predicted_labels(np.array([3, 0, 2])).tolist()

    def test_scores_outside_unit_interval_rejected(self) -> None:
        """1-D floats must be probabilities, so logits raise a clear error."""
        with pytest.raises(InvalidInput, match=r"'y_pred' must be probabilities in \[0, 1\]"):
            predicted_labels([-2.0, 3.0])


class TestClassificationMetrics:
    def test_accuracy_and_error_rate_match_sklearn(
        self, multiclass: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Accuracy on probabilities equals sklearn on the argmax; error rate is its complement."""
        y, p = multiclass
        expected = skm.accuracy_score(y, p.argmax(axis=1))
        assert expected == pytest.approx(m.accuracy(y, p))
        assert 1 - expected == pytest.approx(m.error_rate(y, p))

    @pytest.mark.parametrize("fn", ["precision", "recall", "f1"])
    @pytest.mark.parametrize("average", ["binary", "macro"])
    def test_precision_recall_f1_match_sklearn(self, fn: str, average: str) -> None:
        """Binary and macro averages equal sklearn's with zero_division=0."""
        rng = np.random.default_rng(3)
        k = 2 if average == "binary" else 5
        y = rng.integers(0, k, size=150)
        pred = np.where(rng.random(150) < 0.6, y, rng.integers(0, k, size=150))
        reference = getattr(skm, f"{fn}_score")(y, pred, average=average, zero_division=0)
        assert reference == pytest.approx(getattr(m, fn)(y, pred, average=average))

    @pytest.mark.parametrize("fn", ["precision", "recall", "f1"])
    def test_undefined_ratios_count_zero(self, fn: str) -> None:
        """With no predicted or no true positives the score is 0, as sklearn zero_division=0."""
        y = np.array([0, 0, 1, 1])
        pred = np.zeros(4, dtype=int)
        reference = getattr(skm, f"{fn}_score")(y, pred, zero_division=0)
        assert reference == getattr(m, fn)(y, pred)

    def test_macro_uses_classes_in_truth_or_prediction(self) -> None:
        """A class that is only predicted still enters the macro average (sklearn's rule)."""
        y = np.array([0, 0, 1, 1])
        pred = np.array([0, 2, 1, 1])
        reference = skm.f1_score(y, pred, average="macro", zero_division=0)
        assert reference == pytest.approx(m.f1(y, pred, average="macro"))

    def test_single_class(self) -> None:
        """Only one class everywhere: a perfect prediction scores 1 in every metric."""
        y = np.ones(5, dtype=int)
        assert 1.0 == m.accuracy(y, y)
        assert 1.0 == m.f1(y, y)
        assert 1.0 == m.f1(y, y, average="macro")

    def test_binary_average_rejects_three_classes(self) -> None:
        """average='binary' with class 2 points at 'macro'."""
        with pytest.raises(InvalidInput, match="use average='macro'"):
            m.precision([0, 1, 2], [0, 1, 2])

    def test_unknown_average_rejected(self) -> None:
        """A misspelt average is named in the error."""
        with pytest.raises(InvalidInput, match="'average' must be 'binary' or 'macro'"):
            m.recall([0, 1], [0, 1], average="micro")  # type: ignore[arg-type]

    def test_n_equals_one(self) -> None:
        """One example gives a 0/1 accuracy."""
        assert 1.0 == m.accuracy([2], [[0.1, 0.2, 0.7]])
        assert 0.0 == m.accuracy([0], [[0.1, 0.2, 0.7]])

    @given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
    @settings(max_examples=40, deadline=None)
    def test_macro_f1_matches_sklearn_property(self, pairs: list[tuple[int, int]]) -> None:
        """Macro F1 equals sklearn's for any small label vectors."""
        y, pred = np.array(pairs).T
        expected = skm.f1_score(y, pred, average="macro", zero_division=0)
        assert expected == pytest.approx(m.f1(y, pred, average="macro"))


class TestProbabilisticMetrics:
    def test_log_loss_matches_sklearn(self, multiclass: tuple[np.ndarray, np.ndarray]) -> None:
        """Multi-class log loss equals sklearn's."""
        y, p = multiclass
        assert skm.log_loss(y, p, labels=range(4)) == pytest.approx(m.log_loss(y, p))

    def test_binary_log_loss_matches_sklearn(self, binary: tuple[np.ndarray, np.ndarray]) -> None:
        """1-D probabilities of class 1 give sklearn's binary log loss."""
        y, p = binary
        assert skm.log_loss(y, p) == pytest.approx(m.log_loss(y, p))

    def test_log_loss_of_a_certain_mistake_is_finite(self) -> None:
        """A zero probability on the true class is clipped at the dtype's epsilon."""
        value = m.log_loss([0], np.array([[0.0, 1.0]], dtype=np.float32))
        assert -math.log(np.finfo(np.float32).eps) == pytest.approx(value)

    def test_log_loss_rejects_unnormalised_rows(self) -> None:
        """Rows must sum to 1: scores need a softmax first."""
        with pytest.raises(InvalidInput, match="row 1 sums to 0.5"):
            m.log_loss([0, 1], [[0.5, 0.5], [0.25, 0.25]])

    def test_log_loss_rejects_label_out_of_range(self) -> None:
        """A label with no column is named with the valid range."""
        with pytest.raises(InvalidInput, match=r"class indices in \[0, 2\)"):
            m.log_loss([2], [[0.5, 0.5]])

    def test_brier_binary_matches_sklearn(self, binary: tuple[np.ndarray, np.ndarray]) -> None:
        """1-D Brier is sklearn's brier_score_loss."""
        y, p = binary
        assert skm.brier_score_loss(y, p) == pytest.approx(m.brier(y, p))

    def test_brier_multiclass_brute_force(self, multiclass: tuple[np.ndarray, np.ndarray]) -> None:
        """2-D Brier is the mean squared distance to the one-hot outcome, summed over classes."""
        y, p = multiclass
        expected = np.mean(np.sum((p - np.eye(4)[y]) ** 2, axis=1))
        assert expected == pytest.approx(m.brier(y, p))

    def test_brier_two_columns_is_twice_binary(self, binary: tuple[np.ndarray, np.ndarray]) -> None:
        """For C = 2 the multi-class score is twice the 1-D one (documented)."""
        y, p = binary
        assert 2 * m.brier(y, p) == pytest.approx(m.brier(y, np.column_stack([1 - p, p])))

    def test_roc_auc_matches_sklearn_with_ties(self) -> None:
        """Tied scores count one half, as sklearn's roc_auc_score."""
        rng = np.random.default_rng(4)
        y = rng.integers(0, 2, size=400)
        scores = np.round(rng.random(400) + 0.3 * y, 1)
        assert skm.roc_auc_score(y, scores) == pytest.approx(m.roc_auc(y, scores))

    def test_roc_auc_matches_mann_whitney(self, binary: tuple[np.ndarray, np.ndarray]) -> None:
        """AUC equals U / (n1 n0) from scipy's Mann-Whitney test."""
        y, p = binary
        u = scipy.stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
        assert u / ((y == 1).sum() * (y == 0).sum()) == pytest.approx(m.roc_auc(y, p))

    def test_roc_auc_constant_scores(self) -> None:
        """Constant scores give 0.5."""
        assert 0.5 == m.roc_auc([0, 1, 1, 0], [0.3, 0.3, 0.3, 0.3])

    def test_roc_auc_two_columns_uses_column_one(self) -> None:
        """(n, 2) probabilities score class 1 by the second column."""
        p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        assert m.roc_auc([0, 1, 0], p[:, 1]) == m.roc_auc([0, 1, 0], p)

    def test_roc_auc_single_class_undefined(self) -> None:
        """One class only: AUC is undefined and the error says so."""
        with pytest.raises(InvalidInput, match="only class 1 in 3 examples"):
            m.roc_auc([1, 1, 1], [0.2, 0.4, 0.9])

    def test_roc_auc_multiclass_rejected(self) -> None:
        """More than two columns is not binary."""
        with pytest.raises(InvalidInput, match="got 3 columns"):
            m.roc_auc([0, 1], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])


class TestRegressionMetrics:
    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [
            (m.mse, skm.mean_squared_error),
            (m.mae, skm.mean_absolute_error),
            (m.rmse, skm.root_mean_squared_error),
            (m.r2, skm.r2_score),
        ],
    )
    def test_match_sklearn(self, ours: object, theirs: object) -> None:
        """MSE, MAE, RMSE and R² equal sklearn's."""
        rng = np.random.default_rng(5)
        y = rng.normal(size=100)
        pred = y + rng.normal(scale=0.5, size=100)
        assert theirs(y, pred) == pytest.approx(ours(y, pred))  # type: ignore[operator]

    def test_r2_constant_target(self) -> None:
        """Constant y_true: 1.0 for a perfect prediction, 0.0 otherwise (sklearn's default)."""
        assert 1.0 == m.r2([2.0, 2.0], [2.0, 2.0])
        assert skm.r2_score([2.0, 2.0], [2.0, 3.0]) == m.r2([2.0, 2.0], [2.0, 3.0])

    def test_r2_needs_two_examples(self) -> None:
        """R² of one example is undefined."""
        with pytest.raises(InvalidInput, match="at least 2 examples for r2"):
            m.r2([1.0], [1.0])

    def test_n_equals_one(self) -> None:
        """Errors of one example are that example's error."""
        assert 4.0 == m.mse([1.0], [3.0])
        assert 2.0 == m.mae([1.0], [3.0])


def shaped(name: str, *arrays: object) -> list[np.ndarray]:
    """1-D inputs as they are; for a multi-label metric, as (n, 1) indicator columns."""
    out = [np.asarray(a, dtype=float) for a in arrays]
    if METRICS[name].kind == "multilabel":
        return [a.reshape(-1, 1) for a in out]
    return out


class TestValidation:
    @pytest.mark.parametrize("name", sorted(METRICS))
    def test_nan_rejected(self, name: str) -> None:
        """Every metric rejects NaN predictions with an error naming 'y_pred'."""
        with pytest.raises(InvalidInput, match="'y_pred' must be finite"):
            METRICS[name](*shaped(name, [0, 1], [0.5, float("nan")]))

    @pytest.mark.parametrize("name", sorted(METRICS))
    def test_empty_rejected(self, name: str) -> None:
        """Empty inputs are an error, not NaN."""
        with pytest.raises(InvalidInput, match="at least 1 rows"):
            METRICS[name](*shaped(name, [], []))

    @pytest.mark.parametrize("name", sorted(METRICS))
    def test_mismatched_lengths_rejected(self, name: str) -> None:
        """Labels and predictions of different lengths name both lengths."""
        with pytest.raises(InvalidInput, match=r"same number of rows \(got 3 and 2\)"):
            METRICS[name](*shaped(name, [0, 1, 1], [0.2, 0.7]))

    def test_non_integer_labels_rejected(self) -> None:
        """Classification labels must be whole numbers."""
        with pytest.raises(InvalidInput, match="integer class indices"):
            m.accuracy([0.5, 1.0], [0, 1])


class TestMetricRegistry:
    def test_every_builtin_is_a_metric_named_by_its_key(self) -> None:
        """METRICS maps each name to a Metric of that name."""
        assert all(isinstance(v, Metric) and v.name == k for k, v in METRICS.items())

    @pytest.mark.parametrize("name", [k for k, v in METRICS.items() if v.per_example is not None])
    def test_per_example_mean_equals_metric(
        self, name: str, multiclass: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """A metric's per-example values average to the metric itself."""
        metric = METRICS[name]
        y, p = multiclass
        if metric.kind == "regression":
            y, p = y.astype(float), p[:, 0]
        if metric.kind == "multilabel":
            y = (y[:, None] == np.arange(4)).astype(int)
        assert metric(y, p) == pytest.approx(float(np.mean(metric.per_example(y, p))))  # type: ignore[misc]

    def test_count_based_flags(self) -> None:
        """Confusion-count metrics are count-based; log loss and AUC are not."""
        assert METRICS["accuracy"].count_based
        assert METRICS["f1_macro"].count_based
        assert not METRICS["log_loss"].count_based
        assert not METRICS["roc_auc"].count_based

    def test_unknown_name_lists_known(self) -> None:
        """An unknown name lists the known metrics."""
        with pytest.raises(InvalidInput, match="unknown metric 'acc'; known metrics: accuracy"):
            get_metric("acc")

    def test_callable_becomes_metric(self) -> None:
        """A plain function becomes a higher-is-better metric named after it."""

        def top_score(y_true: object, y_pred: object) -> float:
            return 0.25

        metric = get_metric(top_score)
        assert ("top_score", True, 0.25) == (metric.name, metric.higher_is_better, metric(0, 0))

    def test_custom_metric_options(self) -> None:
        """custom_metric sets name and direction."""
        metric = custom_metric(lambda y, p: 3, name="cost", higher_is_better=False)
        assert ("cost", False, 3.0) == (metric.name, metric.higher_is_better, metric([0], [0]))

    def test_lambda_needs_a_name(self) -> None:
        """A lambda has no useful name, so one must be given."""
        with pytest.raises(InvalidInput, match="'name' is needed"):
            custom_metric(lambda y, p: 1.0)

    def test_non_number_result_rejected(self) -> None:
        """A metric returning a non-number raises TypeError naming the metric."""
        metric = custom_metric(lambda y, p: "high", name="bad")
        with pytest.raises(TypeError, match="metric 'bad' must return a number"):
            metric([0], [0])

    def test_non_callable_rejected(self) -> None:
        """Neither a name nor a callable is an error."""
        with pytest.raises(InvalidInput, match="must be a metric name, a Metric or a callable"):
            get_metric(3)  # type: ignore[arg-type]


class TestMultiLabelAndRegressionAgainstScikitLearn:
    """The task metrics agree with scikit-learn on the same inputs."""

    @pytest.fixture
    def multilabel(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(3)
        y = rng.integers(0, 2, size=(400, 5))
        probs = np.clip(0.6 * y + rng.random((400, 5)) * 0.5, 0.0, 1.0)
        return y, probs, (probs > 0.5).astype(int)

    def test_hamming_loss(self, multilabel: tuple[np.ndarray, ...]) -> None:
        """Hamming loss of indicators and of probabilities (thresholded at 0.5)."""
        y, probs, hard = multilabel
        assert skm.hamming_loss(y, hard) == pytest.approx(m.hamming_loss(y, hard))
        assert skm.hamming_loss(y, hard) == pytest.approx(m.hamming_loss(y, probs))

    def test_subset_accuracy(self, multilabel: tuple[np.ndarray, ...]) -> None:
        """Subset accuracy is scikit-learn's accuracy_score on indicator matrices."""
        y, probs, hard = multilabel
        assert skm.accuracy_score(y, hard) == pytest.approx(m.subset_accuracy(y, probs))

    def test_per_label_accuracy(self, multilabel: tuple[np.ndarray, ...]) -> None:
        """One accuracy per label column."""
        y, _, hard = multilabel
        expected = [skm.accuracy_score(y[:, k], hard[:, k]) for k in range(y.shape[1])]
        assert expected == pytest.approx(m.per_label_accuracy(y, hard).tolist())

    def test_multilabel_shapes_must_match(self) -> None:
        """Different label counts are an error naming both shapes."""
        with pytest.raises(InvalidInput, match=r"same labels \(got shapes \(2, 2\) and \(2, 3\)"):
            m.hamming_loss([[0, 1], [1, 0]], [[0, 1, 0], [1, 0, 0]])

    def test_multilabel_rejects_non_indicators(self) -> None:
        """Labels other than 0/1 are not multi-label indicators."""
        with pytest.raises(InvalidInput, match="0/1 label indicators"):
            m.subset_accuracy([[0, 2]], [[0, 1]])

    def test_regression_metrics_on_diabetes_scale(self) -> None:
        """MSE, MAE and R² at the scale of load_diabetes targets match scikit-learn."""
        rng = np.random.default_rng(4)
        y = rng.uniform(25, 346, size=300)
        p = y + rng.normal(scale=55, size=300)
        assert skm.mean_squared_error(y, p) == pytest.approx(m.mse(y, p))
        assert skm.mean_absolute_error(y, p) == pytest.approx(m.mae(y, p))
        assert skm.r2_score(y, p) == pytest.approx(m.r2(y, p))
