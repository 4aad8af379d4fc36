from tests.faults.conftest import private_redis, stack  # noqa: F401 (fixtures)
from tests.faults.stack import collected_static  # noqa: F401 (a fixture)
