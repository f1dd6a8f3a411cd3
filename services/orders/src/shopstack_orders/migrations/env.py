import shopstack_orders.catalog.models  # noqa: F401 - registers the tables on the metadata
from shopstack_common.migrations import run_env
from shopstack_orders.models import Base

run_env(Base.metadata)
