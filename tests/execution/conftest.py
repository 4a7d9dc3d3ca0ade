import pytest

from trl_codefeedback.execution import Executor


@pytest.fixture(scope="session")
def executor():
    ex = Executor(workers=2)
    yield ex
    ex.close()
