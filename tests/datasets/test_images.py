"""Real image data: modules are readable, spatially coherent pixel groups that recur across digit classes."""

import numpy as np
import pytest

import lava_sc as lv


def pixel_coords(names):
    return np.array([[int(p) for p in name.split("_")[1:]] for name in names])


def mean_nearest_distance(coords):
    d = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1).mean()


def coherence(adata, seed=0):
    """Per module: mean distance of a module pixel to its nearest module pixel, and the same for random sets."""
    rng = np.random.default_rng(seed)
    tested = pixel_coords(adata.uns["lava"]["genes"])
    out = {}
    for module, genes in lv.get.module_genes(adata).groupby("module", observed=True):
        coords = pixel_coords(genes["gene"])
        random = [mean_nearest_distance(tested[rng.choice(len(tested), len(coords), replace=False)]) for _ in range(20)]
        out[module] = (mean_nearest_distance(coords), float(np.mean(random)))
    return out


def classes_per_module(adata):
    """Digit classes (majority class of the locality) where each module reaches half its peak activity."""
    member = adata.obsm["lava_localities"].tocsc()
    digit = adata.obs["digit"].to_numpy()
    majority = []
    for i in range(member.shape[1]):
        values, counts = np.unique(digit[member[:, i].indices], return_counts=True)
        majority.append(values[counts.argmax()])
    majority = np.array(majority)
    activity = lv.get.activity(adata, level="localities")
    return {m: set(majority[activity[m].to_numpy() >= 0.5 * activity[m].max()]) for m in activity.columns}


def test_loaders_layout():
    adata = lv.datasets.digits(embed=False)
    assert adata.shape == (1797, 64)
    assert adata.var_names[9] == "px_1_1" and adata.var["row"].iloc[9] == 1
    assert list(adata.uns["image_shape"]) == [8, 8]
    assert list(adata.obs["digit"].cat.categories) == [str(d) for d in range(10)]


@pytest.mark.parametrize("fixture", ["digits_lava", "mnist_lava"])
def test_image_modules_are_readable_coherent_and_recurring(request, fixture):
    adata = request.getfixturevalue(fixture)
    if fixture == "digits_lava":
        # 8 x 8 digits: the defaults give 6 broad modules of 20-33 of the 61 pixels, no more compact than
        # random pixel sets (a known limit of the default granularity on tiny images, in the README);
        # a finer resolution gives stroke-sized ones
        adata = adata.copy()
        lv.tl.modules(adata, resolution=3, random_state=0)
    sizes = lv.get.module_genes(adata).groupby("module", observed=True).size()
    coh = coherence(adata)
    classes = classes_per_module(adata)
    ratio = np.array([own / rnd for own, rnd in coh.values()])
    n_recurring = sum(len(c) >= 3 for c in classes.values())
    print(
        f"\n{fixture}: {len(sizes)} modules, median {sizes.median():.0f} pixels; nearest-pixel distance / random "
        f"median {np.median(ratio):.2f}; modules active in >= 3 digit classes: {n_recurring}"
    )
    assert len(sizes) >= 3
    assert sizes.median() <= 60
    assert np.median(ratio) < 0.8 and (ratio < 1).mean() >= 0.8
    assert n_recurring >= 1
