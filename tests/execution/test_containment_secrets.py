"""Containment, secrets and network: no program reads the trainer's environment, signals it, or reaches loopback."""

import pytest
from containment_probe import MODES, needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", MODES)
def test_parent_environment_and_processes_unreachable(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["secrets"]["found"] == []  # /proc/<pid>/environ of every process; kill(trainer, 0)


@pytest.mark.parametrize("mode", MODES)
def test_no_loopback_connection(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["loopback"]["found"] == []
        assert r["loopback_accepted"] is False


@pytest.mark.parametrize("mode", MODES)
def test_no_socket_of_a_family_the_network_namespace_does_not_cover(mode):
    r = run_mode(mode)
    if not r["refused"]:
        # vsock (the hypervisor), packet, netlink, rds, tipc, alg, kcm, xdp: none can be created.
        assert r["programs"]["socket_families"]["found"] == [], r["programs"]["socket_families"]


@pytest.mark.parametrize("mode", MODES)
def test_no_new_namespaces_nor_io_uring_bpf_userfaultfd_perf(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["kernel_surfaces"]["found"] == [], r["programs"]["kernel_surfaces"]


@pytest.mark.parametrize("mode", MODES)
def test_no_call_reaches_the_trainer_process_by_pid(mode):
    r = run_mode(mode)
    if not r["refused"]:
        # prlimit / setpriority / sched_setaffinity / pidfd_open on the trainer (and its parent), and
        # renicing every process of the uid: refused, or the trainer is not visible at all.
        assert r["programs"]["host_processes"]["found"] == [], r["programs"]["host_processes"]


@pytest.mark.parametrize("mode", MODES)
def test_no_host_ipc_object_nor_unix_socket(mode):
    r = run_mode(mode)
    if not r["refused"]:
        # System V shared memory / message queues and POSIX queues outlive the program; a pathname and
        # an abstract UNIX socket the trainer listens on: none reachable.
        assert r["programs"]["host_ipc"]["found"] == [], r["programs"]["host_ipc"]
        assert r["unix_accepted"] == []


@pytest.mark.parametrize("mode", MODES)
def test_no_datagram_to_a_host_socket_nor_watching_host_folders(mode):
    r = run_mode(mode)
    if not r["refused"]:
        found = r["programs"]["landlock_gaps"]["found"]
        # a datagram to the trainer's pathname socket, an abstract name taken, inotify on a host folder
        assert not {"dgram", "inotify"} & set(found) and r["dgram_received"] is False, found
        # AIO contexts are a host-wide budget; a lease on a host file stalls its writers (all modes)
        assert not {"io_setup", "lease"} & set(found), found
        if r["isolation"]["mode"] == "landlock":  # (in a network namespace an abstract name is private)
            assert "bind" not in found and "setflags" not in found, found  # flags on the scratch folder would outlive the program
            assert "fallocate_keep_size" not in found, found  # blocks past RLIMIT_FSIZE, unseen by the quota
        if r["isolation"]["no_fork"]:  # no cgroup: memory RLIMIT_AS does not count is denied
            assert not {"memfd", "shmget", "sndbuf"} & set(found), found
