"""Final evaluation on the test set: accuracy, loss, confusion matrix and error analysis.

scikit-learn computes the metrics; this module only gathers them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss


@dataclasses.dataclass
class Evaluation:
    """Test-set results of one model (Chapter 9)."""

    accuracy: float
    loss: float
    probabilities: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray
    class_names: tuple

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave its predicted class, per image (Chapter 9)."""
        return self.probabilities.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        """Whether each prediction is right (Chapter 9)."""
        return self.predictions == self.labels

    @property
    def confusion(self) -> np.ndarray:
        """Confusion matrix: rows are true classes, columns predicted (Chapter 9)."""
        return confusion_matrix(self.labels, self.predictions, labels=range(len(self.class_names)))

    def report(self, as_dict: bool = False):
        """scikit-learn's per-class precision, recall and F1 (Chapter 9)."""
        return classification_report(self.labels, self.predictions, labels=range(len(self.class_names)),
                                     target_names=list(self.class_names), digits=3,
                                     output_dict=as_dict, zero_division=0)

    def per_class_accuracy(self) -> dict:
        """Fraction of each class's test images classified correctly (Chapter 9)."""
        matrix = self.confusion
        totals = np.maximum(matrix.sum(axis=1), 1)
        return {name: float(matrix[i, i] / totals[i]) for i, name in enumerate(self.class_names)}

    def most_confused(self, top: int = 5) -> list[tuple[str, str, int]]:
        """The (true, predicted, count) pairs the model mixes up most often (Chapter 9)."""
        matrix = self.confusion.copy()
        np.fill_diagonal(matrix, 0)
        order = np.argsort(matrix, axis=None)[::-1][:top]
        pairs = [np.unravel_index(index, matrix.shape) for index in order]
        return [(self.class_names[t], self.class_names[p], int(matrix[t, p])) for t, p in pairs if matrix[t, p]]

    def misclassified(self) -> np.ndarray:
        """Indices of the test images the model got wrong, most confident mistakes first (Chapter 9)."""
        wrong = np.flatnonzero(self.predictions != self.labels)
        confidence = self.probabilities[wrong, self.predictions[wrong]]
        return wrong[np.argsort(confidence)[::-1]]


def evaluate(model, x_test: np.ndarray, y_test: np.ndarray, class_names, batch_size: int = 500) -> Evaluation:
    """Predict the test set once and compute accuracy and loss from the predictions (Chapter 9)."""
    probabilities = np.asarray(model.predict(x_test, batch_size=batch_size, verbose=0), dtype=np.float64)
    probabilities /= probabilities.sum(axis=1, keepdims=True)  # float32 softmax sums to 1 only roughly
    predictions = probabilities.argmax(axis=1)
    labels = np.asarray(y_test).reshape(-1)
    return Evaluation(
        accuracy=float(accuracy_score(labels, predictions)),
        loss=float(log_loss(labels, probabilities, labels=range(len(class_names)))),
        probabilities=probabilities, predictions=predictions, labels=labels,
        class_names=tuple(class_names),
    )
