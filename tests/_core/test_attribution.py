import numpy as np
import pytest

from lava_sc._core.attribution import (
    CallableEncoder,
    CorpusSimilarity,
    LinearEncoder,
    SelfInnerProduct,
    attribute,
    fd_gradient,
    linear_gradient,
)
from lava_sc._core.gradients import midpoints

G, D = 12, 4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(G, D))
    X = rng.gamma(2.0, 1.0, size=(8, G))
    centre = X.mean(axis=0) * 0.5
    corpus = rng.normal(size=(15, D)) + 1.0
    foil = rng.normal(size=(20, D)) - 0.5
    return W, X, centre, corpus, foil


def cocoa_by_hand(z, corpus, foil):
    """Mean cosine similarity to the corpus minus mean cosine similarity to the foil, literally."""

    def cos(a, b):
        return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))

    return np.mean([cos(z, c) for c in corpus]) - np.mean([cos(z, f) for f in foil])


def test_corpus_similarity_matches_mean_cosines(data):
    W, X, centre, corpus, foil = data
    target = CorpusSimilarity(corpus, foil)
    Z = X @ W
    expected = [cocoa_by_hand(z, corpus, foil) for z in Z]
    np.testing.assert_allclose(target.value(Z), expected, rtol=1e-12)


def test_cocoa_gradient_matches_finite_differences(data):
    W, X, centre, corpus, foil = data
    enc = LinearEncoder(W, centre)
    target = CorpusSimilarity(corpus, foil)
    genes = np.arange(G)
    exact = linear_gradient(enc, target, X, None, genes)
    numeric = fd_gradient(enc, target, X, None, genes, step=1e-5)
    np.testing.assert_allclose(numeric, exact, rtol=1e-5, atol=1e-8)
    # and by hand, central differences of the literal definition for one cell and gene
    h = 1e-6
    e = np.zeros(G)
    e[3] = h
    by_hand = (
        cocoa_by_hand((X[0] + e - centre) @ W, corpus, foil) - cocoa_by_hand((X[0] - e - centre) @ W, corpus, foil)
    ) / (2 * h)
    assert exact[0, 3] == pytest.approx(by_hand, rel=1e-5)


def test_label_free_linear_exact(data):
    """f(x) = x W, zero baseline: attribution_i = x_i (W W^T x)_i, summing to |x W|^2."""
    W, X, _, _, _ = data
    enc = LinearEncoder(W, np.zeros(G))
    target = SelfInnerProduct(X @ W)
    rows = np.arange(len(X))
    attr, t_x, t_b = attribute(enc, target, X, np.zeros(G), rows, np.arange(G), n_steps=5)
    expected = X * (X @ W @ W.T)
    np.testing.assert_allclose(attr, expected, rtol=1e-12)
    np.testing.assert_allclose(attr.sum(axis=1), np.sum((X @ W) ** 2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(t_b, 0.0)
    # gradient x input is the same for a target linear in x
    gxi, _, _ = attribute(enc, target, X, np.zeros(G), rows, np.arange(G), method="gradient_x_input")
    np.testing.assert_allclose(gxi, attr, rtol=1e-12)


@pytest.mark.parametrize("kind", ["cocoa", "label_free"])
def test_ig_completeness_linear(data, kind):
    W, X, centre, corpus, foil = data
    enc = LinearEncoder(W, centre)
    target = CorpusSimilarity(corpus, foil) if kind == "cocoa" else SelfInnerProduct(enc(X))
    baseline = np.full(G, 0.3)
    attr, t_x, t_b = attribute(enc, target, X, baseline, np.arange(len(X)), np.arange(G), n_steps=64)
    delta = t_x - t_b
    np.testing.assert_allclose(attr.sum(axis=1), delta, rtol=1e-3, atol=1e-3 * np.abs(delta).max())


@pytest.mark.parametrize("kind", ["cocoa", "label_free"])
def test_ig_completeness_nonlinear_callable(data, kind):
    W, X, _, corpus, foil = data
    # the bias keeps f(baseline) away from 0, where cosine similarity is undefined
    enc = CallableEncoder(lambda A: np.tanh(0.3 * A @ W + 0.5), G)
    target = CorpusSimilarity(corpus, foil) if kind == "cocoa" else SelfInnerProduct(enc(X))
    baseline = np.zeros(G)
    attr, t_x, t_b = attribute(enc, target, X, baseline, np.arange(len(X)), np.arange(G), n_steps=64)
    delta = t_x - t_b
    np.testing.assert_allclose(attr.sum(axis=1), delta, rtol=1e-3, atol=1e-3 * np.abs(delta).max())


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
@pytest.mark.parametrize("kind", ["cocoa", "label_free"])
def test_callable_pca_agrees_with_closed_form(data, method, kind):
    W, X, centre, corpus, foil = data
    linear = LinearEncoder(W, centre)
    as_callable = CallableEncoder(lambda A: (A - centre) @ W, G)
    target = CorpusSimilarity(corpus, foil) if kind == "cocoa" else SelfInnerProduct(linear(X))
    genes = np.array([0, 4, 7, 11])
    rows = np.arange(len(X))
    exact, tx1, tb1 = attribute(linear, target, X, np.zeros(G), rows, genes, method=method, n_steps=16)
    numeric, tx2, tb2 = attribute(as_callable, target, X, np.zeros(G), rows, genes, method=method, n_steps=16)
    np.testing.assert_allclose(numeric, exact, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(tx1, tx2)
    np.testing.assert_allclose(tb1, tb2)


def test_fd_gradient_batching_does_not_change_result(data):
    W, X, centre, corpus, foil = data
    enc = CallableEncoder(lambda A: np.tanh(0.3 * A @ W), G)
    target = CorpusSimilarity(corpus, foil)
    genes = np.arange(G)
    one = fd_gradient(enc, target, X, None, genes)
    tiny = fd_gradient(enc, target, X, None, genes, max_elements=3 * G)
    np.testing.assert_allclose(one, tiny, rtol=0, atol=0)


def test_midpoints():
    np.testing.assert_allclose(midpoints(4), [0.125, 0.375, 0.625, 0.875])


def test_bad_encoder_output(data):
    W, X, *_ = data
    enc = CallableEncoder(lambda A: A[:2] @ W, G)
    with pytest.raises(ValueError, match="cells x dimensions"):
        enc(X)
    with pytest.raises(ValueError, match="NaN or inf"):
        CallableEncoder(lambda A: np.full((len(A), 2), np.nan), G)(X)
    with pytest.raises(TypeError, match="callable"):
        CallableEncoder("umap", G)
    with pytest.raises(ValueError, match="method"):
        attribute(LinearEncoder(W, np.zeros(G)), SelfInnerProduct(X @ W), X, np.zeros(G), np.arange(8), [0], method="x")
