"""Candidate JVMs are sized to the work: one at start, more only when programs run at once."""

import shutil

import pytest

from trl_codefeedback.execution import Executor, Limits, Program
from trl_codefeedback.execution.feedback import Status

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK")

HELLO = "public class Main {\n    public static void main(String[] args) {\n        System.out.println(%d);\n    }\n}\n"
SLOW = ("public class Main {\n    public static void main(String[] args) throws Exception {\n"
        "        Thread.sleep(%d);\n    }\n}\n")


def test_jvms_are_started_on_demand_up_to_the_pool_size():
    with Executor(workers=4, limits=Limits(test_timeout_s=5.0), cache_size=0) as ex:
        for i in range(3):  # one program at a time: one JVM does
            [fb] = ex.run([Program(HELLO % i, None, language="java")])
            assert fb.status is Status.PASSED, fb
        assert len(ex._java.worker_pids()) == 1
        # Three programs that are running at the same moment: three JVMs.
        fbs = ex.run([Program(SLOW % (1500 + i), None, language="java") for i in range(3)])
        assert [fb.status for fb in fbs] == [Status.PASSED] * 3, fbs
        assert len(ex._java.worker_pids()) == 3
        assert ex._java.stats["worker_restarts"] == 0
