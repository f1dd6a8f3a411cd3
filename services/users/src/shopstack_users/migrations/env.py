# Importing the models registers their tables on the metadata autogenerate compares with.
import shopstack_users.accounts.models
import shopstack_users.audit.models
import shopstack_users.console.models
import shopstack_users.tokens.models  # noqa: F401
from shopstack_common.migrations import run_env
from shopstack_users.models import Base

run_env(Base.metadata)
