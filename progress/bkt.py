"""Bayesian knowledge tracing: the forward update, and a fit by expectation-maximisation.

Pure: NumPy only, no Django import. One competency is a two-state hidden Markov model: the student
either knows it (*known*) or not (*unknown*). Parameters (``BKTParams``):

- ``prior``: P(known) before the first response.
- ``learn``: P(unknown -> known) between two responses.
- ``forget``: P(known -> unknown) between two responses (0 in classic BKT, and by default).
- ``guess``: P(correct | unknown).
- ``slip``: P(incorrect | known).

Forward update per response (DOMAIN.md): the posterior given the response, then the learning step::

    correct:   P(L|obs) = P(L)(1-slip) / (P(L)(1-slip) + (1-P(L)) guess)
    incorrect: P(L|obs) = P(L) slip    / (P(L) slip    + (1-P(L)) (1-guess))
    P(L) <- P(L|obs)(1-forget) + (1-P(L|obs)) learn

Numerics: every pass here carries P(known) and P(unknown) as two separate quantities and renormalises
them by their sum; neither is ever computed as 1 minus the other. After a long run of correct answers
P(unknown) is tiny (1e-100 is ordinary); ``1 - P(known)`` cannot represent it (it is exactly 0.0 once
P(known) rounds to 1), and the error feeds into every later step. ``1 - prior`` is the only subtraction,
and it is the definition of the starting state.

Fitting (``fit_em``): Baum-Welch over all students' sequences of one competency, batched as a padded
(students x steps) matrix with a mask, so each iteration is a loop over *steps*, never over students.
Forward and backward passes are scaled per step (the scale factors give the log-likelihood). Guess and
slip are clamped below 0.5 (``EMISSION_MAX``): the two-state model is symmetric under swapping the state
labels, and without the clamp EM can settle on the mirror solution where the "known" state answers worse
than the "unknown" one (guess > 1 - slip), which would read as nonsense mastery. Prior and learn are
kept inside (0, 1) so that no state becomes impossible and sticks at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MASTERY_THRESHOLD = 0.95
EMISSION_MAX = 0.499  # guess and slip stay below 0.5: see the module docstring (label switching)
EMISSION_MIN = 1e-4
PROBABILITY_MIN = 1e-6
PROBABILITY_MAX = 1 - 1e-6


@dataclass(frozen=True)
class BKTParams:
    """The parameters of one competency's knowledge-tracing model (see the module docstring)."""

    prior: float = 0.2
    learn: float = 0.15
    guess: float = 0.2
    slip: float = 0.1
    forget: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prior", "learn", "forget"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"BKT {name} must be between 0 and 1, got {value}")
        for name in ("guess", "slip"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"BKT {name} must be strictly between 0 and 1, got {value}")

    def as_dict(self) -> dict[str, float]:
        return {
            "prior": self.prior,
            "learn": self.learn,
            "guess": self.guess,
            "slip": self.slip,
            "forget": self.forget,
        }


@dataclass(frozen=True)
class BKTFit:
    """The outcome of ``fit_em_detailed``: the parameters and how the fit went.

    ``log_likelihood`` is that of the data under the parameters of the last E-step (the ones the final
    M-step started from); ``converged`` is False when ``max_iter`` ran out first.
    """

    params: BKTParams
    log_likelihood: float
    iterations: int
    converged: bool
    students: int
    responses: int


def _as_binary(sequence: Sequence[int] | npt.ArrayLike) -> npt.NDArray[np.int8]:
    array = np.asarray(sequence)
    if array.ndim != 1:
        raise ValueError("a response sequence must be one-dimensional")
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError("responses must be 0 (incorrect) or 1 (correct)")
    return array.astype(np.int8)


def _step(
    known: FloatArray | float,
    unknown: FloatArray | float,
    correct: npt.NDArray[np.bool_] | bool,
    params: BKTParams,
) -> tuple[FloatArray, FloatArray]:
    """One forward update (posterior, then learning/forgetting), both states kept separately."""
    known_obs = np.where(correct, known * (1.0 - params.slip), known * params.slip)
    unknown_obs = np.where(correct, unknown * params.guess, unknown * (1.0 - params.guess))
    total = known_obs + unknown_obs
    known_obs = known_obs / total
    unknown_obs = unknown_obs / total
    known_next = known_obs * (1.0 - params.forget) + unknown_obs * params.learn
    unknown_next = unknown_obs * (1.0 - params.learn) + known_obs * params.forget
    total = known_next + unknown_next
    return known_next / total, unknown_next / total


def state_after(correct_sequence: Sequence[int] | npt.ArrayLike, params: BKTParams) -> tuple[float, float]:
    """(P(known), P(unknown)) after the responses (1 correct, 0 incorrect), oldest first.

    The two numbers sum to 1 up to rounding, but each is accurate on its own: P(unknown) of 1e-150
    after a long run of correct answers is returned as such, not as 0.
    """
    responses = _as_binary(correct_sequence)
    known = np.float64(params.prior)
    unknown = np.float64(1.0 - params.prior)
    for response in responses:
        known, unknown = _step(known, unknown, bool(response), params)
    return float(known), float(unknown)


def p_known_after(correct_sequence: Sequence[int] | npt.ArrayLike, params: BKTParams) -> float:
    """P(known) after the responses (1 correct, 0 incorrect), oldest first; the prior when empty."""
    return state_after(correct_sequence, params)[0]


def pad_sequences(
    sequences: Sequence[Sequence[int] | npt.ArrayLike],
) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """Left-aligned padded matrix (students x longest sequence) of 0/1 responses, and its mask."""
    arrays = [_as_binary(sequence) for sequence in sequences]
    lengths = np.array([array.size for array in arrays], dtype=np.int64)
    width = int(lengths.max()) if lengths.size else 0
    mask = np.arange(width)[None, :] < lengths[:, None]
    responses = np.zeros((len(arrays), width), dtype=np.int8)
    if arrays and width:
        responses[mask] = np.concatenate(arrays)
    return responses, mask


def forward_many(
    responses: npt.ArrayLike,
    mask: npt.ArrayLike | None,
    params: BKTParams,
) -> FloatArray:
    """P(known) per student after their responses, for many students of one competency at once.

    ``responses`` is a (students x steps) 0/1 matrix, oldest step first; ``mask`` says which cells are
    real responses (None: all). A masked cell leaves that student's state unchanged, so padding may sit
    anywhere. A student with no responses gets the prior. Loops over steps, vectorised over students.
    """
    matrix = np.asarray(responses)
    if matrix.ndim != 2:
        raise ValueError("responses must be a (students x steps) matrix")
    present = np.ones(matrix.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if present.shape != matrix.shape:
        raise ValueError("mask must have the shape of responses")
    if not np.isin(matrix[present], (0, 1)).all():
        raise ValueError("responses must be 0 (incorrect) or 1 (correct)")
    students = matrix.shape[0]
    known = np.full(students, params.prior, dtype=np.float64)
    unknown = np.full(students, 1.0 - params.prior, dtype=np.float64)
    for step in range(matrix.shape[1]):
        known_next, unknown_next = _step(known, unknown, matrix[:, step] == 1, params)
        active = present[:, step]
        known = np.where(active, known_next, known)
        unknown = np.where(active, unknown_next, unknown)
    return known


def simulate(params: BKTParams, students: int, steps: int, rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """A (students x steps) 0/1 matrix of responses drawn from the model (for tests and demo data)."""
    knows = rng.random(students) < params.prior
    responses = np.empty((students, steps), dtype=np.int8)
    for step in range(steps):
        draw = rng.random(students)
        responses[:, step] = np.where(knows, draw >= params.slip, draw < params.guess)
        move = rng.random(students)
        knows = np.where(knows, move >= params.forget, move < params.learn)
    return responses


def _clamp(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def fit_em_detailed(
    sequences: Sequence[Sequence[int] | npt.ArrayLike],
    initial: BKTParams | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
    fit_forget: bool = False,
) -> BKTFit:
    """Fit one competency's parameters to all students' 0/1 sequences by expectation-maximisation.

    Stops when no parameter moves by more than ``tol`` in an iteration, or after ``max_iter``
    iterations. ``forget`` stays at its initial value unless ``fit_forget``. Empty sequences are
    ignored; with no responses at all the initial parameters come back unchanged.
    """
    params = initial or BKTParams()
    params = BKTParams(
        prior=_clamp(params.prior, PROBABILITY_MIN, PROBABILITY_MAX),
        learn=_clamp(params.learn, PROBABILITY_MIN, PROBABILITY_MAX),
        guess=_clamp(params.guess, EMISSION_MIN, EMISSION_MAX),
        slip=_clamp(params.slip, EMISSION_MIN, EMISSION_MAX),
        forget=params.forget,
    )
    non_empty = [sequence for sequence in sequences if np.asarray(sequence).size]
    responses, mask = pad_sequences(non_empty)
    students, steps = responses.shape
    total_responses = int(mask.sum())
    if total_responses == 0:
        return BKTFit(params, 0.0, 0, True, 0, 0)

    correct = responses == 1
    # A transition t -> t+1 is counted only when step t+1 is a real response.
    transition_mask = mask[:, 1:]
    log_likelihood = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        # Emission probabilities per cell; a padded cell emits with probability 1 in both states,
        # so the padding adds nothing to the likelihood and leaves the backward pass at 1.
        emit_known = np.where(mask, np.where(correct, 1.0 - params.slip, params.slip), 1.0)
        emit_unknown = np.where(mask, np.where(correct, params.guess, 1.0 - params.guess), 1.0)

        # Scaled forward pass: alpha_known, alpha_unknown sum to 1 at every step; scale = their sum
        # before normalising, and the log-likelihood is the sum of log scales.
        alpha_known = np.empty((students, steps))
        alpha_unknown = np.empty((students, steps))
        scale = np.empty((students, steps))
        known = params.prior * emit_known[:, 0]
        unknown = (1.0 - params.prior) * emit_unknown[:, 0]
        for step in range(steps):
            if step:
                previous_known = alpha_known[:, step - 1]
                previous_unknown = alpha_unknown[:, step - 1]
                known = (
                    previous_known * (1.0 - params.forget) + previous_unknown * params.learn
                ) * emit_known[:, step]
                unknown = (
                    previous_unknown * (1.0 - params.learn) + previous_known * params.forget
                ) * emit_unknown[:, step]
            total = known + unknown
            scale[:, step] = total
            alpha_known[:, step] = known / total
            alpha_unknown[:, step] = unknown / total

        # Scaled backward pass with the same scale factors.
        beta_known = np.ones((students, steps))
        beta_unknown = np.ones((students, steps))
        for step in range(steps - 2, -1, -1):
            next_known = emit_known[:, step + 1] * beta_known[:, step + 1] / scale[:, step + 1]
            next_unknown = emit_unknown[:, step + 1] * beta_unknown[:, step + 1] / scale[:, step + 1]
            beta_known[:, step] = (1.0 - params.forget) * next_known + params.forget * next_unknown
            beta_unknown[:, step] = params.learn * next_known + (1.0 - params.learn) * next_unknown

        # State posteriors (gamma), renormalised by their sum rather than trusted to be 1.
        gamma_known = alpha_known * beta_known
        gamma_unknown = alpha_unknown * beta_unknown
        gamma_total = gamma_known + gamma_unknown
        gamma_known /= gamma_total
        gamma_unknown /= gamma_total

        # Expected transitions between consecutive real steps (xi), per from->to pair.
        if steps > 1:
            following_known = emit_known[:, 1:] * beta_known[:, 1:] / scale[:, 1:]
            following_unknown = emit_unknown[:, 1:] * beta_unknown[:, 1:] / scale[:, 1:]
            xi_unknown_known = alpha_unknown[:, :-1] * params.learn * following_known
            xi_unknown_unknown = alpha_unknown[:, :-1] * (1.0 - params.learn) * following_unknown
            xi_known_unknown = alpha_known[:, :-1] * params.forget * following_unknown
            xi_known_known = alpha_known[:, :-1] * (1.0 - params.forget) * following_known
            xi_sum = xi_unknown_known + xi_unknown_unknown + xi_known_unknown + xi_known_known
            learned = float((xi_unknown_known / xi_sum)[transition_mask].sum())
            stayed_unknown = float((xi_unknown_unknown / xi_sum)[transition_mask].sum())
            forgot = float((xi_known_unknown / xi_sum)[transition_mask].sum())
            stayed_known = float((xi_known_known / xi_sum)[transition_mask].sum())
        else:
            learned = stayed_unknown = forgot = stayed_known = 0.0

        new_log_likelihood = float(np.log(scale[mask]).sum())

        # M-step.
        weight_known = gamma_known[mask]
        weight_unknown = gamma_unknown[mask]
        observed_correct = correct[mask]
        new_prior = float(gamma_known[:, 0].mean())
        from_unknown = learned + stayed_unknown
        new_learn = learned / from_unknown if from_unknown > 0 else params.learn
        from_known = forgot + stayed_known
        new_forget = params.forget
        if fit_forget and from_known > 0:
            new_forget = forgot / from_known
        unknown_weight = float(weight_unknown.sum())
        known_weight = float(weight_known.sum())
        new_guess = (
            float(weight_unknown[observed_correct].sum()) / unknown_weight
            if unknown_weight > 0
            else params.guess
        )
        new_slip = (
            float(weight_known[~observed_correct].sum()) / known_weight if known_weight > 0 else params.slip
        )
        updated = BKTParams(
            prior=_clamp(new_prior, PROBABILITY_MIN, PROBABILITY_MAX),
            learn=_clamp(new_learn, PROBABILITY_MIN, PROBABILITY_MAX),
            guess=_clamp(new_guess, EMISSION_MIN, EMISSION_MAX),
            slip=_clamp(new_slip, EMISSION_MIN, EMISSION_MAX),
            forget=_clamp(new_forget, 0.0, PROBABILITY_MAX),
        )
        change = max(abs(updated.as_dict()[name] - value) for name, value in params.as_dict().items())
        params = updated
        log_likelihood = new_log_likelihood
        if change < tol:
            converged = True
            break

    return BKTFit(params, log_likelihood, iterations, converged, students, total_responses)


def fit_em(
    sequences: Sequence[Sequence[int] | npt.ArrayLike],
    initial: BKTParams | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
    fit_forget: bool = False,
) -> BKTParams:
    """Fitted parameters for one competency (see ``fit_em_detailed``)."""
    return fit_em_detailed(sequences, initial, max_iter=max_iter, tol=tol, fit_forget=fit_forget).params
