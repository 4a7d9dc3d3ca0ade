"""The Landlock mode's scratch folder: its quota counts what the files take on disk (sandbox/scratch.py)."""

import os

from trl_codefeedback.execution.sandbox import scratch


def test_hard_links_count_once_and_many_files_count(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 << 20))
    for i in range(100):  # 100 names for the same 2 MB: 2 MB on disk, not 200
        os.link(big, tmp_path / f"link{i}")
    assert not scratch.over_quota(str(tmp_path), 50 << 20)
    (tmp_path / "more.bin").write_bytes(os.urandom(60 << 20))
    assert scratch.over_quota(str(tmp_path), 50 << 20)


def test_empty_removes_everything_and_remove_only_takes_scratch_folders(tmp_path):
    folder = scratch.create(-1)
    try:
        for i in range(5):
            (tmp_path / "x").write_text("y")
            open(os.path.join(folder, f"f{i}"), "w").close()
        scratch.empty(folder)
        assert os.listdir(folder) == []
        scratch.remove(str(tmp_path))  # not one of ours: left alone
        assert tmp_path.exists()
    finally:
        scratch.remove(folder)
    assert not os.path.exists(folder)
