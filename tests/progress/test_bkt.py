"""Bayesian knowledge tracing: hand-computed forward updates, long-sequence accuracy, and the EM fit
checked by parameter recovery on simulated students. No database."""

from __future__ import annotations

import itertools
from decimal import Decimal, localcontext

import numpy as np
import pytest

from progress.bkt import (
    EMISSION_MAX,
    BKTParams,
    fit_em,
    fit_em_detailed,
    forward_many,
    p_known_after,
    pad_sequences,
    simulate,
    state_after,
)

DEFAULTS = BKTParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1)


def test_defaults():
    assert BKTParams() == DEFAULTS
    assert BKTParams().forget == 0.0


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        # No responses: the prior.
        ([], 0.2),
        # Correct: posterior 0.2*0.9 / (0.2*0.9 + 0.8*0.2) = 0.18/0.34 = 9/17;
        # learning 9/17 + (8/17)*0.15 = 10.2/17 = 0.6.
        ([1], 0.6),
        # Incorrect: posterior 0.2*0.1 / (0.2*0.1 + 0.8*0.8) = 0.02/0.66 = 1/33;
        # learning 1/33 + (32/33)*0.15 = 5.8/33.
        ([0], 5.8 / 33),
        # Then correct from 0.6: 0.6*0.9 / (0.54 + 0.4*0.2) = 0.54/0.62 = 27/31;
        # learning 27/31 + (4/31)*0.15 = 27.6/31.
        ([1, 1], 27.6 / 31),
        # Then incorrect from 0.6: 0.6*0.1 / (0.06 + 0.4*0.8) = 0.06/0.38 = 3/19;
        # learning 3/19 + (16/19)*0.15 = 5.4/19.
        ([1, 0], 5.4 / 19),
    ],
)
def test_p_known_after_hand_computed(sequence, expected):
    assert p_known_after(sequence, DEFAULTS) == pytest.approx(expected, abs=1e-9)


def test_p_known_after_with_forgetting():
    params = BKTParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1, forget=0.05)
    # Posterior after a correct answer is 9/17 as above; then
    # P = (9/17)*(1 - 0.05) + (8/17)*0.15 = (8.55 + 1.2)/17 = 9.75/17.
    assert p_known_after([1], params) == pytest.approx(9.75 / 17, abs=1e-9)


def test_state_after_returns_both_states_summing_to_one():
    known, unknown = state_after([1, 0, 1], DEFAULTS)
    assert known + unknown == pytest.approx(1.0, abs=1e-15)


def _reference_state(sequence, params, precision=60):
    """The forward update in Decimal arithmetic at 60 significant digits: the high-precision truth."""
    with localcontext() as context:
        context.prec = precision
        prior, learn, guess, slip, forget = (
            Decimal(repr(value))
            for value in (params.prior, params.learn, params.guess, params.slip, params.forget)
        )
        known, unknown = prior, 1 - prior
        for response in sequence:
            if response:
                known, unknown = known * (1 - slip), unknown * guess
            else:
                known, unknown = known * slip, unknown * (1 - guess)
            total = known + unknown
            known, unknown = known / total, unknown / total
            known, unknown = known * (1 - forget) + unknown * learn, unknown * (1 - learn) + known * forget
        return known, unknown


def test_long_sequence_matches_high_precision_reference():
    rng = np.random.default_rng(7)
    sequence = (rng.random(5_000) < 0.7).astype(int)
    params = BKTParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1, forget=0.02)
    for length in (100, 1_000, 5_000):
        known, unknown = state_after(sequence[:length], params)
        reference_known, reference_unknown = _reference_state(sequence[:length], params)
        assert np.isfinite(known) and np.isfinite(unknown)
        assert 0.0 <= known <= 1.0 and 0.0 <= unknown <= 1.0
        assert known == pytest.approx(float(reference_known), abs=1e-12)
        assert unknown == pytest.approx(float(reference_unknown), abs=1e-12)


def test_unknown_stays_accurate_where_one_minus_known_collapses():
    # 200 correct answers: P(unknown) shrinks about x0.19 per step (0.2/0.9 * 0.85) to ~1e-145.
    sequence = [1] * 200
    known, unknown = state_after(sequence, DEFAULTS)
    _, reference_unknown = _reference_state(sequence, DEFAULTS)
    assert known == 1.0
    assert 1.0 - known == 0.0  # what a 1-minus implementation would carry forward
    assert 0.0 < unknown < 1e-100
    assert unknown == pytest.approx(float(reference_unknown), rel=1e-9)


def test_long_sequence_of_5000_steps_stays_in_range():
    rng = np.random.default_rng(11)
    sequence = (rng.random(5_000) < 0.5).astype(int)
    for response_count in (1, 2_500, 5_000):
        known, unknown = state_after(sequence[:response_count], DEFAULTS)
        assert 0.0 <= known <= 1.0 and 0.0 <= unknown <= 1.0
        assert known + unknown == pytest.approx(1.0, abs=1e-12)


def test_forward_many_equals_one_at_a_time():
    rng = np.random.default_rng(3)
    sequences = [(rng.random(rng.integers(0, 20)) < 0.6).astype(int) for _ in range(300)]
    responses, mask = pad_sequences(sequences)
    many = forward_many(responses, mask, DEFAULTS)
    one_at_a_time = np.array([p_known_after(sequence, DEFAULTS) for sequence in sequences])
    np.testing.assert_allclose(many, one_at_a_time, rtol=0, atol=1e-12)


def test_forward_many_skips_masked_cells_anywhere():
    responses = np.array([[1, 0, 1], [0, 1, 1]])
    mask = np.array([[True, False, True], [False, False, True]])
    many = forward_many(responses, mask, DEFAULTS)
    assert many[0] == pytest.approx(p_known_after([1, 1], DEFAULTS), abs=1e-12)
    assert many[1] == pytest.approx(p_known_after([1], DEFAULTS), abs=1e-12)
    np.testing.assert_allclose(forward_many(responses, None, DEFAULTS)[0], p_known_after([1, 0, 1], DEFAULTS))


def test_pad_sequences_left_aligns_with_mask():
    responses, mask = pad_sequences([[1, 0], [], [1, 1, 1]])
    assert responses.tolist() == [[1, 0, 0], [0, 0, 0], [1, 1, 1]]
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": 1.2}, "prior must be between 0 and 1"),
        ({"learn": -0.1}, "learn must be between 0 and 1"),
        ({"guess": 0.0}, "guess must be strictly between 0 and 1"),
        ({"slip": 1.0}, "slip must be strictly between 0 and 1"),
        ({"forget": 2.0}, "forget must be between 0 and 1"),
    ],
)
def test_params_out_of_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BKTParams(**kwargs)


def test_responses_must_be_binary():
    with pytest.raises(ValueError, match="0 \\(incorrect\\) or 1 \\(correct\\)"):
        p_known_after([1, 2], DEFAULTS)


TRUTH = BKTParams(prior=0.3, learn=0.2, guess=0.15, slip=0.1)
RECOVERY_TOLERANCE = 0.05  # each fitted parameter within 0.05 of the truth (issue 4)


def test_em_recovers_parameters_from_2000_simulated_students():
    responses = simulate(TRUTH, students=2_000, steps=12, rng=np.random.default_rng(20240314))
    fit = fit_em_detailed(list(responses))
    # With this seed: prior 0.296, learn 0.193, guess 0.157, slip 0.097 after 19 iterations.
    assert fit.converged
    assert fit.students == 2_000 and fit.responses == 24_000
    for name in ("prior", "learn", "guess", "slip"):
        assert abs(getattr(fit.params, name) - getattr(TRUTH, name)) < RECOVERY_TOLERANCE, name
    assert fit.params.forget == 0.0


def test_em_recovers_from_ragged_sequences():
    rng = np.random.default_rng(5)
    responses = simulate(TRUTH, students=2_000, steps=15, rng=rng)
    lengths = rng.integers(3, 16, size=2_000)
    sequences = [row[:length] for row, length in zip(responses, lengths, strict=True)]
    fitted = fit_em(sequences)
    for name in ("prior", "learn", "guess", "slip"):
        assert abs(getattr(fitted, name) - getattr(TRUTH, name)) < RECOVERY_TOLERANCE, name


def test_em_log_likelihood_never_decreases():
    responses = list(simulate(TRUTH, students=300, steps=10, rng=np.random.default_rng(1)))
    log_likelihoods = [
        fit_em_detailed(responses, max_iter=iterations, tol=0.0).log_likelihood for iterations in range(1, 12)
    ]
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(log_likelihoods))


def test_em_clamps_guess_and_slip_below_one_half():
    # Start from the mirror image (the "known" state answering worse than the "unknown" one).
    responses = list(simulate(TRUTH, students=500, steps=10, rng=np.random.default_rng(2)))
    fitted = fit_em(responses, initial=BKTParams(prior=0.7, learn=0.2, guess=0.9, slip=0.85))
    assert fitted.guess <= EMISSION_MAX < 0.5
    assert fitted.slip <= EMISSION_MAX < 0.5


def test_em_can_fit_forgetting():
    truth = BKTParams(prior=0.3, learn=0.2, guess=0.15, slip=0.1, forget=0.05)
    responses = list(simulate(truth, students=3_000, steps=15, rng=np.random.default_rng(9)))
    fitted = fit_em(responses, initial=BKTParams(forget=0.1), fit_forget=True)
    assert abs(fitted.forget - truth.forget) < RECOVERY_TOLERANCE
    assert abs(fitted.learn - truth.learn) < RECOVERY_TOLERANCE


def test_em_without_responses_returns_the_initial_parameters():
    initial = BKTParams(prior=0.25)
    assert fit_em([], initial=initial) == initial
    assert fit_em([[], np.array([], dtype=int)], initial=initial) == initial


def test_em_keeps_forget_fixed_unless_asked():
    responses = list(simulate(TRUTH, students=200, steps=8, rng=np.random.default_rng(4)))
    assert fit_em(responses, initial=BKTParams(forget=0.03)).forget == 0.03
