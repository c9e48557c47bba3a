"""Every table of every package, for Alembic and for the test that checks models against migrations."""

from __future__ import annotations

import campaigns.late_pledges  # noqa: F401 - registers its tables
import campaigns.pledges.models  # noqa: F401 - registers its tables
import campaigns.talk.models  # noqa: F401 - registers its tables
import campaigns.transparency.models  # noqa: F401 - registers its tables
import fulfillment.models  # noqa: F401 - registers its tables
import payments.models  # noqa: F401 - registers its tables
import service.models  # noqa: F401 - registers its tables
from campaigns.models import Base

target_metadata = Base.metadata
