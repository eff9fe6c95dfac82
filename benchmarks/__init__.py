"""lava_sc's benchmark harness (not part of the installed package). One entry point, from the repository
root: ``python -m benchmarks.run`` (``--help`` lists the parts and their options; results and how they
were measured: ``benchmarks/README.md``)."""
