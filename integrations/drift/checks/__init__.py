"""Every drift check, one module each; importing this package registers them all."""
from . import orders  # noqa: F401,E402
from . import inventory  # noqa: F401,E402
from . import catalogue  # noqa: F401,E402
from . import prices  # noqa: F401,E402
from . import tax  # noqa: F401,E402
from . import health  # noqa: F401,E402
