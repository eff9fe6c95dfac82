"""tl.modules at its defaults on data with real nuisance structure: a realistic simulated atlas, real
PBMCs and real images. The thresholds are what the defaults achieve, measured (see benchmarks/atlas.py
for the grid), not what they should one day achieve."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

import lava_sc as lv
from lava_sc._core.chance import uniform_chance_support


@pytest.fixture(scope="module")
def atlas_lava():
    adata = lv.datasets.simulate_atlas(random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def module_sizes(adata) -> pd.Series:
    return lv.get.module_genes(adata).groupby("module", observed=True).size()


def test_realistic_atlas_programmes_are_recovered(atlas_lava):
    table, summary = lv.datasets.recovery(atlas_lava)
    print(f"\nsimulate_atlas at defaults: {summary}\n{table.to_string()}")
    assert summary["n_unmatched"] <= 2
    assert summary["mean_jaccard"] >= 0.7
    assert summary["median_module_size"] <= 40 and summary["max_module_size"] <= 150
    jac = table.set_index("program")["jaccard"]
    auroc = table.set_index("program")["auroc"]
    for program in ("recurring", "straddle", "small", "gradient", "response"):
        assert jac[program] >= 0.8, program
        assert auroc[program] >= 0.9, program
    # signed = two anti-correlated halves; alternative="greater" finds each half as its own module
    # (two-sided testing keeps it whole: test_two_sided_testing_keeps_a_signed_programme_whole...)
    assert jac["signed"] >= 0.4


@pytest.fixture(scope="module")
def atlas_two_sided(atlas_lava):
    adata = atlas_lava.copy()
    lv.tl.correlations(adata, alternative="two-sided", random_state=0)
    lv.tl.modules(adata, random_state=0)
    return adata


def test_two_sided_testing_keeps_a_signed_programme_whole_with_its_halves_as_signs(atlas_two_sided):
    table, summary = lv.datasets.recovery(atlas_two_sided)
    print(f"\ntwo-sided: {summary}\n{table.to_string()}")
    module = table.set_index("program").loc["signed", "module"]
    assert table.set_index("program").loc["signed", "jaccard"] >= 0.8
    genes = lv.get.module_genes(atlas_two_sided)
    genes = genes.loc[genes["module"] == module].set_index("gene")
    planted = [g for g in atlas_two_sided.uns["planted"]["signed"] if g in genes.index]
    half = np.array([int(g.split("_")[1]) < 7 for g in planted])  # the simulator's + half: signed_0..6
    sign = genes.loc[planted, "sign"].to_numpy()
    assert half.any() and (~half).any()
    assert len(set(sign[half])) == 1 and len(set(sign[~half])) == 1 and sign[half][0] == -sign[~half][0]
    # the network draws the anti-correlated pairs in their own colour
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    pairs = lv.get.modules(atlas_two_sided)
    pairs = pairs[pairs["module"] == module]
    ax = lv.pl.module_network(atlas_two_sided, module, max_genes=100, show=False)
    edges = next(c for c in ax.collections if hasattr(c, "get_segments"))
    blue = sum(mcolors.to_hex(c[:3]) == "#2166ac" for c in edges.get_colors())
    assert blue == int((pairs["weight"] < 0).sum()) > 0
    plt.close(ax.figure)
    # all other modules are programmes of correlated genes only
    others = lv.get.module_genes(atlas_two_sided)
    assert (others.loc[others["module"] != module, "sign"] == 1).mean() > 0.9


def test_a_signed_module_transfers_through_its_signed_gene_set(atlas_two_sided):
    """get.gene_sets carries the sign; tl.score weights each pair by s_a s_b, so the halves add up."""
    table, _ = lv.datasets.recovery(atlas_two_sided)
    module = table.set_index("program").loc["signed", "module"]
    net = lv.get.gene_sets(atlas_two_sided)
    net = net.loc[net["source"] == module]
    assert (net["weight"] < 0).any() and (net["weight"] > 0).any()
    active = atlas_two_sided.obs["active_signed"].to_numpy(dtype=bool)
    aurocs = {}
    for name, given in {"signed": net, "unsigned": net.assign(weight=net["weight"].abs())}.items():
        scored = atlas_two_sided.copy()
        lv.tl.score(scored, given, key="lava", key_added="transfer")
        act = lv.get.activity(scored, key="transfer")[module].to_numpy()
        ranks = pd.Series(act).rank().to_numpy()
        aurocs[name] = (ranks[active].sum() - active.sum() * (active.sum() + 1) / 2) / (active.sum() * (~active).sum())
    print(aurocs)
    assert aurocs["signed"] >= 0.95 and aurocs["signed"] > aurocs["unsigned"] + 0.1


def test_recurring_programme_is_active_in_both_distant_types(atlas_lava):
    table, _ = lv.datasets.recovery(atlas_lava)
    module = table.set_index("program").loc["recurring", "module"]
    act = lv.get.activity(atlas_lava)[module].groupby(atlas_lava.obs["cell_type"], observed=True).mean()
    others = act.drop(["A1", "D"])
    assert act["A1"] > 3 * others.max() and act["D"] > 3 * others.max()


def test_without_dense_removal_state_genes_flood_the_modules(atlas_lava):
    """The defaults' reason to exist: the old per-locality test on raw correlations merges programmes
    into large modules of state genes on the same data."""
    adata = atlas_lava.copy()
    lv.tl.correlations(adata, remove_dense=False, fdr_scope="locality")
    support = adata.uns["lava"]["pairs"]["support"].to_numpy()
    n_pairs = len(adata.uns["lava"]["genes"]) * (len(adata.uns["lava"]["genes"]) - 1) / 2
    uniform = uniform_chance_support(float(np.sum(support == 1)), n_pairs)  # the old threshold too
    lv.tl.modules(adata, max_genes=None, min_support=uniform, random_state=0)
    _, old = lv.datasets.recovery(adata)
    _, new = lv.datasets.recovery(atlas_lava)
    print(f"\nold test: {old}\ndefaults: {new}")
    assert old["n_unmatched"] > new["n_unmatched"] + 5
    assert old["median_module_size"] > 2 * new["median_module_size"]
    assert new["mean_jaccard"] > old["mean_jaccard"]


def test_a_between_population_difference_is_not_a_module():
    """Two touching populations differing in 8 marker genes (too few to be dense) and a programme
    varying within each: with groupby, the markers' straddle correlation is dropped, the programme kept."""
    rng = np.random.default_rng(0)
    n, n_genes = 3000, 300
    pop = (np.arange(n) >= n // 2).astype(int)
    log_mean = rng.uniform(-1.5, 1.0, n_genes) + np.zeros((n, n_genes))
    log_mean[:, :8] += 1.5 * pop[:, None]  # markers of population 1
    log_mean[:, 8:20] += 0.9 * rng.standard_normal((n, 1))  # a programme in every cell
    x = np.log1p(rng.poisson(np.exp(log_mean))).astype(np.float32)
    # an embedding where the populations touch: localities on the border straddle them
    position = np.where(pop == 1, rng.uniform(0.8, 2.0, n), rng.uniform(0.0, 1.2, n))
    emb = np.column_stack([position, rng.uniform(0, 1, n)]).astype(np.float32)
    import anndata as ad

    adata = ad.AnnData(x, obs=pd.DataFrame({"cell_type": pd.Categorical(np.array(["P0", "P1"])[pop])}))
    adata.obs_names = [f"c{i}" for i in range(n)]
    adata.var_names = [f"mk{i}" for i in range(8)] + [f"prog{i}" for i in range(12)] + [f"g{i}" for i in range(280)]
    adata.obsm["X_umap"] = emb
    markers, programme = {f"mk{i}" for i in range(8)}, {f"prog{i}" for i in range(12)}

    def modules(**kwargs):
        out = adata.copy()
        lv.tl.modules(out, random_state=0, **kwargs)
        genes = lv.get.module_genes(out)
        return {m: set(g["gene"]) for m, g in genes.groupby("module", observed=True)}, out

    kept, kept_adata = modules(between_populations="keep")
    assert any(len(g & markers) >= 4 for g in kept.values())  # the straddle makes a marker "module"
    stats = kept_adata.uns["lava"]["module_stats"].set_index("module")
    marker_module = next(m for m, g in kept.items() if len(g & markers) >= 4)
    programme_module = next(m for m, g in kept.items() if len(g & programme) >= 8)
    assert stats.loc[marker_module, "within_group_ratio"] < 0.5
    assert stats.loc[programme_module, "within_group_ratio"] > 0.8
    dropped, dropped_adata = modules()
    assert not any(len(g & markers) >= 4 for g in dropped.values())
    assert any(len(g & programme) >= 8 for g in dropped.values())
    assert dropped_adata.uns["lava"]["params"]["modules"]["groupby"] == "cell_type"  # found by groupby="auto"
    assert dropped_adata.uns["lava"]["params"]["modules"]["n_between_population"] >= 1
    comp = lv.get.locality_composition(dropped_adata)
    assert (comp["purity"] < 0.8).any() and (comp["purity"] == 1).any()
    ungrouped, _ = modules(groupby=None)
    assert any(len(g & markers) >= 4 for g in ungrouped.values())


@pytest.mark.parametrize("name", ["pbmc", "digits", "mnist", "kidney"])
def test_readable_module_sizes_at_defaults(name, pbmc_lava, digits_lava, mnist_lava):
    if name == "kidney":
        adata = lv.datasets.kidney()
        lv.tl.modules(adata, random_state=0)
    else:
        adata = {"pbmc": pbmc_lava, "digits": digits_lava, "mnist": mnist_lava}[name]
    sizes = module_sizes(adata)
    print(f"\n{name}: {len(sizes)} modules, median {sizes.median()} genes, largest {sizes.max()}")
    assert len(sizes) >= 3
    assert sizes.median() <= 40 and sizes.max() <= 150


def test_mnist_modules_are_compact_parts_that_recur_across_digits(mnist_lava):
    adata = mnist_lava
    rows, cols = (int(s) for s in adata.uns["image_shape"])
    grid = {name: divmod(i, cols) for i, name in enumerate(adata.var_names)}
    rng = np.random.default_rng(0)
    labels = adata.obs["digit"].astype(str)
    act = lv.get.activity(adata)
    inked = [g for g in adata.var_names if np.asarray(adata[:, g].X).std() > 0]
    compact, recurring = 0, 0
    sets = lv.get.module_genes(adata).groupby("module", observed=True)["gene"].agg(list)
    for module, genes in sets.items():
        rc = np.array([grid[g] for g in genes], dtype=float)
        spread = cKDTree(rc).query(rc, k=2)[0][:, 1].mean()
        random = []
        for _ in range(100):
            pick = np.array([grid[g] for g in rng.choice(inked, len(genes), replace=False)], dtype=float)
            random.append(cKDTree(pick).query(pick, k=2)[0][:, 1].mean())
        compact += spread < np.quantile(random, 0.05)
        by_digit = act[module].groupby(labels).mean()
        low, high = by_digit.min(), by_digit.max()
        recurring += int((by_digit >= low + 0.5 * (high - low)).sum() >= 2)
    print(
        f"\nMNIST: {len(sets)} modules, {compact} more compact than 95% of random pixel sets, {recurring} active in 2+ digits"
    )
    assert compact >= 0.9 * len(sets)
    assert recurring >= 0.3 * len(sets)


def test_pbmc_top_group_expresses_the_module_or_is_flagged(pbmc_lava):
    """A module whose highest mean activity lies in a population that hardly expresses its genes must
    carry the ``mixed`` flag (its activity there comes from localities that straddle populations)."""
    stats = pbmc_lava.uns["lava"]["module_stats"].set_index("module")
    genes = lv.get.module_genes(pbmc_lava)
    raw = pbmc_lava.raw.to_adata()
    labels = pbmc_lava.obs["bulk_labels"].astype(str).to_numpy()
    for module, row in stats.iterrows():
        members = genes.loc[genes["module"] == module, "gene"].astype(str).tolist()
        x = raw[:, members].X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        detected = pd.DataFrame(x > 0, columns=members).groupby(labels).mean().mean(axis=1)
        expressed = detected[row["top_group"]] >= 0.5 * detected.max()
        print(
            f"{module}: top {row['top_group']}, detection there {detected[row['top_group']]:.2f} "
            f"(max {detected.max():.2f} in {detected.idxmax()}), mixed={row['mixed']}"
        )
        assert expressed or row["mixed"], module
