"""``python -m pipeline``: the same as the ``splitnas-pipeline`` console script."""

from pipeline.cli import app

app(prog_name="splitnas-pipeline")
