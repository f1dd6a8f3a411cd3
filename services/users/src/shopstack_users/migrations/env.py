from shopstack_common.migrations import run_env
from shopstack_users.models import Base

run_env(Base.metadata)
