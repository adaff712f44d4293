"""Real-browser tests: JupyterLab from .venv driven by Debian's chromium (`make browser-test`)."""
