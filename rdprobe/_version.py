"""rdprobe's version, in one place: pyproject.toml, ``rdprobe --version`` and
``rdprobe.__version__`` read it from here."""

__version__ = "0.1.0"
