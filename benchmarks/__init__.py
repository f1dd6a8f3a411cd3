"""shopstack's benchmark baselines and the pieces every benchmark shares (``README.md``)."""
