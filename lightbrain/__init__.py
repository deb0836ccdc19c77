__version__ = "0.1.0"  # the one version of both packages (leximind imports it; pyproject.toml reads it)
