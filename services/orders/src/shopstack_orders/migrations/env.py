# Importing the models registers their tables on the metadata autogenerate compares with.
import shopstack_orders.catalog.models
import shopstack_orders.idempotency.models
import shopstack_orders.orders.models  # noqa: F401
from shopstack_common.migrations import run_env
from shopstack_orders.models import Base

run_env(Base.metadata)
