"""The web tests' servers and browser, for the framework integrations."""

from ..web.conftest import drain, page, serve  # noqa: F401 (fixtures)
