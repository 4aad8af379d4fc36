import pytest

from tests.faults.stack import PrivateRedis, Stack, collected_static  # noqa: F401 (a fixture)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stack(private_redis, tmp_path, collected_static):  # noqa: F811
    processes = Stack(private_redis.url, tmp_path, collected_static)
    yield processes
    processes.stop()
