from lightbrain import __version__  # one version for both packages, kept in lightbrain/__init__.py  # noqa: F401
