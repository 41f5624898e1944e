"""Engine version: part of every `ruleset_version`, so a compiler change changes the hash."""
from importlib.metadata import version as _dist_version

import durable_rules_engine  # noqa: F401  (the C engine the adapter drives)

COMPILER_REVISION = "1"
ENGINE_VERSION = (f"yagu{_dist_version('yagu')}+c{COMPILER_REVISION}"
                  f"+durable_rules{_dist_version('durable-rules')}")
