# %% [markdown]
# # 07 · How tree-explainable are the binary codes of each layer?
#
# A lens of the same research group (Mouton & Davel, *Exploring layerwise decision making in
# DNNs*, arXiv 2202.00345): read each layer as a binary code, one on/off bit per ReLU, and ask
# how well a small decision tree over that code explains what the network decides. Applied to
# the BN and no-BN models: **are BatchNorm's binary codes more, or less, explainable by a small
# tree, layer by layer?**
#
# **The code.** An fc layer gives one bit per unit (`activation > 0`), as in notebook 04. A conv
# map is first max-pooled to `tree_code_pool` x `tree_code_pool` cells, so a bit says "this
# channel fires somewhere in this cell" (0: one bit per element, notebook 04's codes).
#
# **The trees.** Per model and layer, one `DecisionTreeClassifier` is grown on the codes of the
# measured training samples to `tree_max_depth`; the tree at depth d is its depth-d prefix.
# *Fidelity* is the test agreement of the tree with the network's own prediction, *accuracy* its
# agreement with the true label, both on held-out test images (the linear probe's). Per layer:
# fidelity and accuracy at the depth budget `tree_depth`, the depth at which fidelity first reaches
# `tree_fidelity_target`, the leaves and the number of distinct codes.
#
# **Statistics.** Welch's t over seeds, Hedges' g with a noncentral-t 95% interval, and Holm's
# correction over the layers of each measure, as everywhere else; the verdict is printed by
# `bnlib.report`, the same function that writes the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import claims, comparisons, lens_plots, measuring, params, plots, prose, stability

P = params.from_notebook(globals())
accuracy, curves, trees = measuring.measured(P, "accuracy", "trees", "tree_summary")  # their .csv files
print(prose.describe_exclusions(accuracy))  # left out of every statistic below
print(prose.describe_trees(trees, P))

# %%
hidden = P.hidden_layers()
layers = list(dict.fromkeys([hidden[0], hidden[len(hidden) // 2], hidden[-2], hidden[-1]]))
fig = lens_plots.trees_figure(curves, trees, layers, title=f"Decision trees over binary codes · {P.arch} on "
                         f"{prose.dataset_title(P)}")
plots.save_figure(fig, curves, P.figures_dir(), "trees")

# %% [markdown]
# ## What the numbers say
# Per measure and layer, BN minus no BN. For the depth to the target fidelity, lower is simpler.

# %%
comparison = comparisons.comparisons(trees)
print(claims.lens_verdict(5, comparison))
print(stability.stability_of(P.figures_dir(), claims=(5,)))  # from the CSVs just written
comparison[comparisons.SHOWN].round(4)
