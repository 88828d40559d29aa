"""PDS (Personal Demographics Service) connector: verify NHS numbers and trace people, application-restricted.

See docs/connectors/pds.md.
"""

from connectors.pds.client import PdsClient
from connectors.pds.config import PdsConfig
from connectors.pds.results import (
    Demographics,
    NoMatch,
    NotFound,
    Restricted,
    Superseded,
    TooManyMatches,
    Traced,
    TraceResult,
    Verified,
    VerifyResult,
)

__all__ = [
    "Demographics",
    "NoMatch",
    "NotFound",
    "PdsClient",
    "PdsConfig",
    "Restricted",
    "Superseded",
    "TooManyMatches",
    "TraceResult",
    "Traced",
    "Verified",
    "VerifyResult",
]
