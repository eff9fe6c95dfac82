"""``tl.differential``: does a module's activity differ between conditions, within each cell type,
with donors (replicates) as the unit when given."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .. import _logging as logg
from .._adata import covariates as covariate_matrix
from .._adata import writable
from .._core.distributed import gather_columns, is_dask
from .._core.expression import gene_matrix
from .._core.score import module_set_activity
from .._docs import doc
from .._keys import DEFAULT_KEY, Keys, module_names
from .._params import CorrelationsSettings, store_params, stored_params
from .._utils import log_added, progress, store
from .._validate import check_adata, check_bool, check_choice, check_float, check_int, check_key, expression
from ._differential_design import (
    check_columns,
    check_nested,
    labels,
    mean_activity,
    reference_level,
    smoother_of,
    units_of,
)
from ._differential_stats import comparison_rows, result_table
from ._score import ModulePairs, pairs_from_table

#: what is compared per replicate (see :func:`differential`)
STATISTICS = ("correlation", "activity")


@doc()
def differential(
    adata: AnnData,
    groupby: str = "condition",
    *,
    reference: str | None = None,
    replicate: str | None = "donor",
    within: str | None = "cell_type",
    statistic: str | None = None,
    key: str = DEFAULT_KEY,
    min_cells: int = 10,
    min_effect: float = 0.0,
    moderated: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Differential module activity between conditions, with replicates (donors) as the unit.

    For every module and every group of ``within`` (e.g. each cell type), each level of ``groupby``
    is compared with ``reference``. Each replicate (donor) gets one value per group, computed as set
    by ``statistic`` (replicate-groups with fewer than ``min_cells`` cells are dropped), and the
    replicate values of a condition are compared with those of the reference by Welch's t-test, each
    side's variance moderated towards the module's variance in the group's other conditions
    (``moderated``, see Notes).
    Cells are never treated as replicates unless ``replicate=None``: cells of one donor share that
    donor's biology, so a test on cells counts donor-to-donor variation as a condition effect and
    gives far too small p-values. With ``replicate=None`` the cells are the units, but a cell's
    activity is a mean over the localities covering it, so the test counts only as many independent
    units as those localities allow (``n_eff``, see Notes), never the number of cells.

    Parameters
    ----------
    adata
        Annotated data matrix with LAVA modules from :func:`lava_sc.tl.modules` (``uns[key]["modules"]``
        and the expression LAVA used, for ``statistic="correlation"``; ``obsm[f"{key}_activity"]``
        for ``statistic="activity"``).
    groupby
        Column of ``adata.obs`` with the conditions (e.g. ``"condition"`` with levels
        ``reference``, ``AKI``, ``CKD``).
    reference
        Level of ``groupby`` every other level is compared with. Default: a level named
        ``reference``, ``control``, ``healthy`` or ``normal`` (case-insensitive, in this order) if
        there is one, else the first level (categories order, or sorted values).
    replicate
        Column of ``adata.obs`` with the biological replicate (e.g. ``"donor"``, ``"sample"``).
        Each replicate must belong to a single ``groupby`` level (replicates nested in
        conditions). ``None`` makes the cells the units (``unit`` is ``"cells"``, a warning is logged)
        and only ``statistic="activity"`` is possible. Cells that share localities share their
        smoothed activity, so each side of a test has the effective size ``n_eff`` its covering
        localities allow (see Notes; ``n_eff_condition``, ``n_eff_reference``), and a group about one
        locality in size cannot be tested. Donor-to-donor variation is still read as a condition
        effect: with donors in the data, pass them.
    within
        Column of ``adata.obs`` to test separately in each group of (e.g. ``"cell_type"``);
        ``None`` tests all cells together (group ``"all"``).
    statistic
        What each replicate contributes per module and group:

        ``"correlation"`` (default with ``replicate``)
            The module's activity recomputed from that replicate's cells in that group alone: the
            weighted mean Pearson ``r`` of the module's gene pairs (weights of
            ``uns[key]["modules"]``), a pair counting as 0 where one of its genes is detected in fewer
            than ``min_detected`` of the cells — the locality activity of :func:`~lava_sc.tl.modules`,
            with the donor's cells of one cell type as the "locality" (same expression layer,
            ``min_detected`` and ``partial_out`` as recorded in ``uns[key]["params"]``). Each value
            comes from one donor's cells only, so donors are independent replicates and the test
            keeps its nominal false-positive rate. ``effect`` is in correlation units.
        ``"activity"``
            The mean of the smoothed cell activity ``obsm[f"{key}_activity"]`` over the replicate's
            cells. Faster (no expression is read), but **anti-conservative**: a cell's activity is a
            mean over localities that pool the cells of many donors, so replicate means share cells'
            information and are not independent; small effects come out with tiny p-values. Use it
            for a quick look, or with ``replicate=None`` (the only choice there; the effective sample
            size of each side is then set by the localities, see Notes).

        With ``replicate=None``, ``"correlation"`` is refused: a single cell has no correlation, and
        the correlation of a whole side would be one unit. With replicates, each replicate's
        correlation is computed from its own cells only, so the replicates are independent units and
        no locality correction applies (``n_eff`` = replicates).
    {key}
    min_cells
        Replicate-groups (a donor's cells of one cell type) with fewer cells are dropped; at least 3
        for ``statistic="correlation"``. With ``replicate=None``, a condition with fewer cells in a
        group is not tested there.
    min_effect
        Test whether the effect is larger than this, H0: ``|effect| <= min_effect`` (TREAT, McCarthy &
        Smyth 2009, with Welch's standard error), instead of H0: ``effect = 0``. Effects are in the
        units of ``measure`` (correlation for the default statistic). With many units (cells, with
        ``replicate=None`` and groups much larger than a locality) small effects can be significant
        against 0; e.g. ``min_effect=0.05`` keeps only those credibly above 0.05. TREAT uses the same
        standard error and degrees of freedom as the test (``n_eff`` with cells as units).
    moderated
        Moderate each side's variance (Smyth 2004's empirical Bayes, as limma's moderated t, with a
        variance per side): a side's variance is shrunk towards the same module's variance in the
        group's other conditions, by as much as the variances of all groups and modules say such
        sides agree, and gains those degrees of freedom (see Notes). With few replicates on a side
        (2 or 3 donors) a variance estimated from 1 or 2 degrees of freedom is often far too small by
        chance, and plain Welch then calls small, unreplicated differences significant. ``False``:
        plain Welch (TREAT) on each side's own variance.
    {copy}

    Returns
    -------
    ``None`` or the copy. Writes ``uns[key]["differential"]``, a DataFrame with one row per module,
    ``within`` group and non-reference condition, columns in this order:

    ``module``
        Module name (``M1``, ...).
    ``<within>``
        The group, in a column named after ``within`` (``"group"`` with value ``"all"`` when
        ``within=None``).
    ``condition``, ``reference``
        The level tested and the level it is compared with.
    ``unit``
        The unit of replication: the ``replicate`` column name (e.g. ``"donor"``) or ``"cells"``.
    ``measure``
        What was compared: ``"correlation"`` or ``"activity"`` (``statistic``).
    ``n_condition``, ``n_reference``
        Replicates (or cells) on each side after dropping those with fewer than ``min_cells`` cells.
    ``n_cells_condition``, ``n_cells_reference``
        Cells on each side in the replicates used.
    ``n_eff_condition``, ``n_eff_reference``
        Effective number of independent units on each side, what the standard error and degrees of
        freedom use: the replicates (``n_condition``, ``n_reference``) with a ``replicate``; with
        cells as units the effective size the localities covering the cells allow (see Notes;
        between 1 and the number of cells; the number of cells when no localities are stored under
        ``key``).
    ``mean_condition``, ``mean_reference``
        Mean of the replicate values (or of the cells) on each side.
    ``effect``
        ``mean_condition - mean_reference``.
    ``effect_standardised``
        ``effect`` divided by the pooled standard deviation of the replicate values (Cohen's d).
    ``statistic``, ``pvalue``
        Welch's t statistic and two-sided p-value (of ``|effect| <= min_effect`` when ``min_effect``
        is above 0), on ``n_eff`` units per side, with moderated variances (``moderated``); NaN
        where the test is not possible (fewer than 2 replicates on a side, ``n_eff`` below 2 on a
        side, or no variance), with the reason in ``note``.
    ``qvalue``
        Benjamini–Hochberg adjusted p-value over all rows with a finite p-value.
    ``note``
        Empty, or why a row was not tested and how many replicates were dropped.

    Parameters are recorded in ``uns[key]["params"]["differential"]``.

    Notes
    -----
    **Cells as units** (``replicate=None``). Let ``M`` be the cells x localities membership
    (``obsm[f"{key}_localities"]``; for the activity of :func:`~lava_sc.tl.score`, that of its
    ``key``), ``s_l`` the number of cells of locality ``l`` and ``A_l`` its activity. A cell's activity
    is ``a_i = sum_l P_il A_l`` with ``P_il = 1/k_i`` for the ``k_i`` localities containing cell ``i``
    (a cell in none takes its nearest probe's locality, ``P_il = 1``). To first order (delta method;
    exact for a mean, the linearisation of the weighted mean Pearson ``r``) a locality's activity is a
    mean of independent per-cell contributions ``z_j`` with variance ``tau^2``:
    ``A_l = alpha + (1/s_l) sum_{j in l} z_j``. So ``a_i = alpha + sum_j c_ij z_j`` with
    ``c_ij = sum_l P_il M_jl / s_l``, and for a side of ``N`` cells with mean ``abar`` and
    ``u = (1/N) sum_i c_i``:

    ``Var(abar) = tau^2 |u|^2`` and ``E[B] = tau^2 (mean_i |c_i|^2 - |u|^2)``,

    where ``B`` is the variance of the ``a_i`` over the side (``ddof=0``). With

    ``n_eff = mean_i |c_i|^2 / |u|^2``  (``1 <= n_eff <= N``),

    ``B / (n_eff - 1) = s^2 / n_eff``, ``s^2 = B n_eff / (n_eff - 1)``, is an unbiased estimate of
    ``Var(abar)``: the variance is estimated from the cells, the standard error and the degrees of
    freedom come from ``n_eff`` instead of ``N``. Welch's test (and TREAT) then uses
    ``se^2 = V_x + V_y`` and ``df = (V_x + V_y)^2 / (V_x^2 / (n_x - 1) + V_y^2 / (n_y - 1))`` with
    ``V = s^2 / n`` and ``n = n_eff`` of each side. Special cases: every cell its own locality gives
    ``n_eff = N`` (plain Welch on the cells); disjoint localities holding ``w_l`` of the side's cells
    give ``n_eff = N sum_l (w_l / s_l) / sum_l (w_l^2 / s_l)``, which for localities of equal size (as
    LAVA's, ``n_cells`` each) is Kish's ``(sum_l w_l)^2 / sum_l w_l^2``, at most the number of
    localities, and the test is then the weighted Welch test of the localities' activities with
    weights ``w_l``. Overlapping localities count less than their number, since they share cells
    (a region covered by localities of ``n`` cells gives ``n_eff`` of the order of its cells / ``n``);
    Kish's formula on the localities' cell counts would count them as independent and stays
    anti-conservative there, because the cells' spread ``B`` of a smoothed activity is small. A side
    with ``n_eff < 2`` is not tested. Localities shared by both sides make the two means positively
    correlated, which Welch's standard error ignores: the test is then conservative. Without
    localities under ``key``, ``n_eff = N`` (independent cells; a warning says so).

    **Replicates.** Each replicate's value is one unit (``n_eff`` = replicates); the test is Welch's
    on the replicate values, whatever the localities.

    **Moderated variances** (``moderated=True``). Each side's variance ``s^2`` on ``d = n_eff - 1``
    degrees of freedom is taken as ``sigma^2 chi^2_d / d``, and within one group and one module the
    true variances of the conditions' sides are drawn from a scaled inverse chi-square prior with
    ``d0`` degrees of freedom around a common variance (Smyth 2004, SAGMB 3:3, with a variance per
    side). ``d0`` is fitted by moments to how much ``log s^2`` spreads within those (group, module)
    sets beyond what sampling explains, pooled over all of them (limma's ``fitFDist`` on the
    within-set spread). Each side's prior is the set's other sides (leaving itself out):
    ``s0^2`` from their mean ``log s^2``, with weight ``min(d0, sum of their d)``. Its variance is
    replaced by the posterior mean ``(d0 s0^2 + d s^2) / (d0 + d)`` on ``d0 + d`` degrees of freedom,
    the Welch–Satterthwaite degrees of freedom use those, and they are capped at the set's total
    ``sum d`` (the two sides' priors share data; a pooled-variance t-test has that many). When the
    conditions' variances differ much more than sampling explains, ``d0`` is small and the test is
    close to plain Welch; when they do not, a 2-donor side borrows the variance its module shows in
    the cell type's other conditions. A side with no other side to borrow from is not moderated.
    Measured: with 6 donors against 2 and module variances differing tenfold, plain Welch's
    false-positive rate at 0.05 is 0.074, the moderated test's 0.052. Because ``d0`` is pooled over
    all (group, module) sets, a set whose conditions truly differ in variance (e.g. a module active,
    and variable between donors, in one condition only) is shrunk as much as the others, which can
    make its p-value too small: with 6 donors a side and no mean change, a donor SD 3 times the
    other condition's gave a false-positive rate of 0.052 (plain Welch 0.050), 6 times 0.068 (0.058).
    ``moderated=False`` tests each side on its own variance.

    Examples
    --------
    >>> import lava_sc as lv
    >>> lv.tl.modules(adata)
    >>> lv.tl.differential(adata, "condition", replicate="donor", within="cell_type")
    >>> lv.get.differential(adata, q_max=0.05)
    """
    check_adata(adata)
    key = check_key(key)
    min_cells = check_int("min_cells", min_cells, low=1)
    min_effect = check_float("min_effect", min_effect, low=0.0)
    moderated = check_bool("moderated", moderated)
    check_columns(adata, groupby, replicate, within)
    statistic = _statistic(statistic, replicate, min_cells)
    if statistic == "activity":
        names, act = _activity(adata, key)
    else:
        pairs = _module_pairs(adata, key)
        names = pairs.names
    cond_codes, levels = labels(adata, groupby)
    reference = reference_level(levels, reference, groupby)
    smoother = None
    if replicate is None:
        rep_codes = None
        smoother = smoother_of(adata, key)
        if smoother is None:
            size = (
                f"no localities under key {key!r} (adata.obsm[{Keys(key).obsm_localities!r}]), so each cell counts "
                "as an independent unit (n_eff = cells) and p-values are anti-conservative if the activity is smoothed"
            )
        else:
            size = (
                "a cell's activity is a mean over the localities covering it, so the effective size of each side "
                "(n_eff_condition / n_eff_reference) is what those localities allow, not the number of cells"
            )
        advice = "Pass `replicate=` (e.g. 'donor')" + (
            "." if min_effect > 0 else ", or `min_effect=` to test only effects above a size."
        )
        logg.warning(
            f"differential: `replicate=None`, so cells are the units, not independent replicates: {size}. Cells of "
            f"one donor share that donor's biology, so across donors p-values stay anti-conservative. {advice}"
        )
    else:
        rep_codes, rep_levels = labels(adata, replicate)
        check_nested(cond_codes, levels, rep_codes, rep_levels, groupby, replicate)
        if statistic == "activity":
            logg.warning(
                "differential: statistic='activity' averages smoothed cell activity, a mean over localities "
                "that pool many donors, so replicate means are not independent and p-values are "
                "anti-conservative. statistic='correlation' (the default) recomputes it per replicate."
            )
    if within is None:
        group_codes, groups = np.zeros(adata.n_obs, dtype=np.int64), ["all"]
    else:
        group_codes, groups = labels(adata, within)

    adata = writable(adata, copy)
    start = logg.info(f"testing differential LAVA module {statistic} ({groupby!r} vs {reference!r})")
    units = units_of(cond_codes, group_codes, rep_codes)
    units["smoother"] = smoother
    if statistic == "activity":
        units["values"] = mean_activity(act, units)
    else:
        units["values"] = _replicate_correlations(adata, key, pairs, units, min_cells)
    rows, borrowed = comparison_rows(
        units, groups, levels, reference, names, min_cells, replicate, min_effect, moderated
    )
    if borrowed is not None:
        logg.info(_prior_message(borrowed))
    table = result_table(rows, names, within, reference, statistic)
    store(adata, key, **{Keys.differential: table})
    store_params(
        adata,
        key,
        Keys.differential,
        dict(
            groupby=groupby,
            reference=reference,
            replicate=replicate,
            within=within,
            statistic=statistic,
            min_cells=min_cells,
            min_effect=min_effect,
            moderated=moderated,
        ),
    )
    log_added(
        f"{len(table)} tests ({int(np.isfinite(table['pvalue']).sum())} with a p-value)",
        start,
        [f"'{key}': '{Keys.differential}', module {statistic} per condition vs {reference!r} (adata.uns)"],
    )
    return adata if copy else None


def _prior_message(borrowed: np.ndarray) -> str:
    """What the variance moderation did, for the log."""
    if not borrowed.size or not (borrowed > 0).any():
        return "    variances not moderated: no side has a variance in another condition of its group to borrow from"
    return (
        "    variances moderated: each side borrowed a median of "
        f"{float(np.median(borrowed)):.3g} prior degrees of freedom from its module's other conditions in its group"
    )


def _statistic(statistic, replicate, min_cells: int) -> str:
    """The statistic to compare: the default depends on whether there are replicates."""
    if statistic is None:
        statistic = "activity" if replicate is None else "correlation"
    statistic = check_choice("statistic", statistic, STATISTICS)
    if statistic == "correlation" and replicate is None:
        raise ValueError(
            "statistic='correlation' recomputes each module's correlation among the cells of one replicate "
            "(e.g. one donor's cells of one cell type); with `replicate=None` the cells themselves are the "
            "units, and a single cell has no correlation. Pass `replicate=` (e.g. 'donor'), or "
            "statistic='activity' to test cells' smoothed activity (anti-conservative)."
        )
    if statistic == "correlation" and min_cells < 3:
        raise ValueError(
            f"statistic='correlation' needs at least 3 cells per replicate-group to correlate genes, got "
            f"min_cells={min_cells}; pass min_cells >= 3 (10 or more gives stable correlations)."
        )
    return statistic


def _module_pairs(adata: AnnData, key: str) -> ModulePairs:
    """The gene pairs and weights of the LAVA modules under ``key``."""
    slot = adata.uns.get(key)
    if not isinstance(slot, Mapping) or Keys.modules not in slot:
        raise KeyError(
            f"No LAVA modules (adata.uns[{key!r}][{Keys.modules!r}]) under key {key!r}; run "
            f"lava_sc.tl.modules(adata, key={key!r}) first (statistic='correlation' recomputes the modules' "
            "correlations per replicate), or pass statistic='activity' to test obsm activity only."
        )
    pairs = pairs_from_table(slot[Keys.modules], source=f"uns[{key!r}]")
    if not pairs.names:
        raise ValueError(
            f"LAVA found no modules under key {key!r}, so there is nothing to test; rerun lava_sc.tl.modules "
            "with a lower `min_support`/`min_genes` or a higher `resolution`."
        )
    missing = pd.Index(np.unique(np.r_[pairs.gene_a, pairs.gene_b])).difference(adata.var_names)
    if len(missing):
        raise KeyError(
            f"{len(missing)} gene(s) of the LAVA modules are not in adata.var_names (e.g. {missing[:5].tolist()}); "
            "statistic='correlation' needs the genes LAVA used: run it on that AnnData (cells may be subset, "
            "genes not), or pass statistic='activity'."
        )
    return pairs


def _recorded(adata: AnnData, key: str, name: str):
    """A setting of the run whose modules are tested, as recorded by tl.correlations (or tl.score, when the
    modules were scored); tl.correlations' default when neither recorded it (a ``None`` setting)."""
    for step in ("correlations", "score"):
        record = stored_params(adata, key, step)
        if name in record:
            return record[name]
    return CorrelationsSettings.tool_defaults()[name]


def _activity(adata: AnnData, key: str) -> tuple[list[str], np.ndarray]:
    """Module names and the cells x modules activity as a finite float64 array."""
    keys = Keys(key)
    if keys.obsm_activity not in adata.obsm:
        raise KeyError(
            f"No LAVA module activity (adata.obsm[{keys.obsm_activity!r}]) under key {key!r}; "
            f"run lava_sc.tl.modules(adata, key={key!r}) first."
        )
    values = adata.obsm[keys.obsm_activity]
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        values = values.to_numpy()
    else:
        values = values.toarray() if sp.issparse(values) else np.asarray(values)
        stored = adata.uns.get(key, {}).get(Keys.locality_activity)
        if isinstance(stored, pd.DataFrame) and stored.shape[1] == values.shape[1]:
            names = [str(c) for c in stored.columns]
        else:
            names = module_names(values.shape[1])
    if values.ndim != 2 or values.dtype.kind not in "biuf":
        raise TypeError(f"adata.obsm[{keys.obsm_activity!r}] must be a numeric cells x modules matrix.")
    if values.shape[1] == 0:
        raise ValueError(
            f"LAVA found no modules under key {key!r}, so there is nothing to test; rerun lava_sc.tl.modules "
            "with a lower `min_support`/`min_genes` or a higher `resolution`."
        )
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(
            f"adata.obsm[{keys.obsm_activity!r}] contains NaN or inf; rerun lava_sc.tl.modules(adata, key={key!r})."
        )
    return names, values


def _replicate_correlations(adata: AnnData, key: str, pairs: ModulePairs, units, min_cells: int) -> np.ndarray:
    """Module activity recomputed among each unit's own cells (units x modules; NaN for units too small)."""
    layer = _recorded(adata, key, "layer")
    min_detected = float(_recorded(adata, key, "min_detected"))
    partial_out = _recorded(adata, key, "partial_out")
    covariates = covariate_matrix(adata, partial_out, int(_recorded(adata, key, "n_partial_components")))
    used = pd.Index(np.unique(np.r_[pairs.gene_a, pairs.gene_b]))
    values = expression(adata, layer)
    idx = adata.var_names.get_indexer(used)
    matrix = gather_columns(values, idx) if is_dask(values) else gene_matrix(values, idx)
    large = np.flatnonzero(units["n_cells"] >= min_cells)
    out = np.full((len(units["n_cells"]), len(pairs.names)), np.nan)
    with progress(len(large), "replicate correlations") as bar:
        out[large] = module_set_activity(
            matrix,
            sp.csc_matrix(units["members"][large].T),
            used.get_indexer(pairs.gene_a),
            used.get_indexer(pairs.gene_b),
            pairs.module,
            pairs.weight,
            len(pairs.names),
            min_detected=min_detected,
            covariates=covariates,
            progress=bar.update,
        )
    return out
